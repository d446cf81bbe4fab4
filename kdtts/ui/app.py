"""The Gradio app, top to bottom like the story it tells: compare, distill, listen, how it works."""
from __future__ import annotations

import functools
import html
import logging
import os
import threading
import time

import gradio as gr

from kdtts.distill.corpus import read_heldout
from kdtts.distill.trainer import MODULES
from kdtts.student.checkpoint import CheckpointError
from kdtts.text import MAX_CHARS, TextError
from kdtts.ui import about, compare, plots, settings
from kdtts.ui.finetune import MAX_USER_CHARS, Busy, FinetuneManager, FinetuneRequest
from kdtts.ui.limits import RateLimiter, visitor
from kdtts.ui.listen import Listening
from kdtts.ui.service import NO_STUDENT, Service
from kdtts.ui.votes import VoteStore, markdown, summarise

log = logging.getLogger("kdtts.ui")
SYNTH = "synth"  # synthesis events: Gradio does not limit them; Service.slot allows two teacher and two
# student syntheses at once, separately, so a queue of teacher requests never delays the student's
SYNTH_LIMIT = None
SIDES = ("teacher", "student")
MAX_UPLOAD = "1mb"   # a fine-tune's text file; MAX_USER_CHARS is far smaller
MAX_THREADS = 200    # worker threads: requests waiting for a synthesis slot hold one each
CSS = ".kd-progress{height:14px;background:#eee;border-radius:7px;overflow:hidden}.kd-progress>div{height:100%;background:#ff7f0e}"


def friendly(fn):
    """User mistakes (bad text, no student, a busy job) come back as a readable message, not a stack trace."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TextError, CheckpointError, Busy, ValueError) as error:
            raise gr.Error(str(error), print_exception=False) from error
    return wrapper


class App:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.prompts = settings.listen_prompts(read_heldout())
        self.votes = VoteStore(service.data / "votes.sqlite")
        self.listening = Listening(service, self.votes, self.prompts)
        self.jobs = FinetuneManager(service)
        self.vote_limit = RateLimiter(settings.votes_per_minute(), 60, "votes")
        self._loss_png: tuple[tuple, str | None] = ((), None)
        self._loss_lock = threading.Lock()

    # -- compare -------------------------------------------------------------------------------------
    def student_choices(self) -> list[str]:
        return list(self.service.checkpoints())

    def do_compare(self, text, student=None, noise=0.667, length=1.0, noise_w=0.8, deterministic=True):
        scales = compare.scales_from(noise, length, noise_w, deterministic)
        result = compare.compare(self.service, text, student, scales)
        if result.student_wav is None:
            gr.Warning(NO_STUDENT)
        return (result.teacher_wav, result.student_wav, result.mel_png, result.durations_png, result.timings_png,
                result.table, result.timings)

    def do_synthesize(self, text, model="student", student=None, noise=0.667, length=1.0, noise_w=0.8, deterministic=True):
        return compare.synthesize(self.service, text, model, student, compare.scales_from(noise, length, noise_w, deterministic))

    def do_mix(self, text, duration="student", latent="student", decoder="teacher", student=None,
               noise=0.667, length=1.0, noise_w=0.8, deterministic=True):
        return compare.mix(self.service, text, duration, latent, decoder, student,
                           compare.scales_from(noise, length, noise_w, deterministic))

    # -- listen --------------------------------------------------------------------------------------
    def do_next_pair(self):
        pair = self.listening.next_pair()
        return pair.token, f"### “{pair.text}”", pair.wav_a, pair.wav_b

    def do_vote(self, token, choice, mos_a=None, mos_b=None, request: gr.Request = None):
        self.vote_limit.hit(visitor(request))
        choice = {"no preference": "none", "a": "A", "b": "B"}.get(str(choice).strip().lower(), choice)
        if not token:
            raise ValueError("Load a pair first.")
        if choice not in ("A", "B", "none"):
            raise ValueError("Pick A, B or no preference.")
        vote_id = self.listening.vote(token, choice, mos_a, mos_b)
        return f"Thanks! Vote #{vote_id} recorded; here is the next pair."

    def do_results(self):
        return markdown(summarise(self.votes.rows()))

    def do_export(self):
        return str(self.votes.csv(self.service.out_dir / f"votes-{time.strftime('%Y%m%d-%H%M%S')}.csv"))

    # -- distill -------------------------------------------------------------------------------------
    def do_finetune(self, name="", steps=200, lr=3e-4, alpha=1.0, temperature=0.0, modules=None, source="built-in set",
                    text="", upload=None, base=None, sentences=64, request: gr.Request = None):
        """Start a job; returns (message, owner key). The key is needed to cancel, so only its starter can."""
        user_text = ""
        if source != "built-in set":
            user_text = (text or "")
            if upload:
                with open(upload, encoding="utf-8", errors="replace") as f:
                    user_text += "\n" + f.read(MAX_USER_CHARS + 1)  # never more than the quota into memory
            if not user_text.strip():
                raise ValueError("Paste or upload some text, or choose the built-in set.")
        request_ = FinetuneRequest(name=name or "", steps=int(steps), lr=float(lr), alpha=float(alpha),
                                   temperature=float(temperature), modules=tuple(modules or MODULES), text=user_text,
                                   base=base or None, sentences=int(sentences))
        job = self.jobs.start(request_, visitor(request))
        return f"Started fine-tune {job.id}: {request_.steps} steps.", job.secret

    def do_cancel(self, owner_key=""):
        return "Cancelling…" if self.jobs.cancel(owner_key) else "No fine-tune is running."

    def do_status(self):
        return self.jobs.state()

    def loss_png(self) -> str | None:
        job = self.jobs.job
        if job is None or not job.rows:
            return None
        n = len(job.rows)
        with self._loss_lock:  # shared by every open page; redrawn every 5 steps at most
            key, path = self._loss_png
            if key and key[0] == job.id and (n - key[1] < 5 and job.running or n == key[1]):
                return path
            path = plots.losses(list(job.rows), self.service.out_dir, f"fine-tune {job.id}")
            self._loss_png = ((job.id, n), path)
            return path

    def poll(self, seen_checkpoints):
        state = self.jobs.state()
        steps = max(1, state.get("steps") or 1)
        fraction = state["step"] / steps
        colour = {"failed": "#d62728", "cancelled": "#7f7f7f", "done": "#2ca02c"}.get(state["status"], "#ff7f0e")
        busy = "🔒 **busy** – one job at a time; " if state["running"] else ""
        status = (f"{busy}**{state['status']}** {html.escape(state['message'] or '')} "
                  f"({state.get('seconds', 0)} s)" if state["status"] != "idle" else state["message"])
        bar = (f"<div class='kd-progress'><div style='width:{100 * fraction:.0f}%;background:{colour}'></div></div>"
               if state["status"] != "idle" else "")
        choices = self.student_choices()
        if choices != seen_checkpoints:
            update = gr.update(choices=choices, value=choices[0] if choices else None)
            return status, bar, self.loss_png(), choices, update, gr.update(choices=choices)
        return status, bar, self.loss_png(), seen_checkpoints, gr.skip(), gr.skip()

    def prewarm(self) -> None:
        """Background, lowest priority: blind-test audio first, then the teacher's reading of the built-in text."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        if self.listening.ready:
            self.listening.prewarm()
        if os.environ.get("KDTTS_PREWARM_FINETUNE", "1") != "0":
            try:
                self.jobs.prewarm()
            except Exception:  # noqa: BLE001
                log.exception("fine-tune cache prewarm failed")

    # -- layout --------------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        s = self.service
        d = s.teacher.default_scales
        choices = self.student_choices()
        with gr.Blocks(title="kdtts: knowledge distillation for TTS", delete_cache=(600, 3600)) as demo:
            gr.Markdown("# kdtts: a big teacher voice, distilled into a tiny, fast student\n"
                        f"Teacher: Piper **{s.teacher.model_path.stem}** ({s.teacher.parameters / 1e6:.1f} M parameters). "
                        + (f"Student: **{s.default_name}**." if s.has_student else f"⚠️ {NO_STUDENT}"))
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=3):
                        text = gr.Textbox(label=f"Text (up to {MAX_CHARS} characters)", lines=2, value=self.prompts[0],
                                          elem_id="text")
                        gr.Examples([[p] for p in read_heldout()[:6]], inputs=[text], label="Examples (held-out sentences)")
                    with gr.Column(scale=2):
                        student = gr.Dropdown(choices, value=choices[0] if choices else None, label="Student checkpoint",
                                              allow_custom_value=True)  # fine-tunes appear after start-up
                        with gr.Accordion("Teacher sampling scales (the KD 'temperature')", open=False):
                            noise = gr.Slider(0.0, 1.5, d.noise, step=0.01, label="noise scale")
                            length = gr.Slider(0.5, 2.0, d.length, step=0.05, label="length scale (both models)")
                            noise_w = gr.Slider(0.0, 1.5, d.noise_w, step=0.01, label="noise_w (duration noise)")
                            deterministic = gr.Checkbox(True, label="deterministic teacher (noise = noise_w = 0: its mean)")
                        go = gr.Button("Synthesise teacher and student", variant="primary", elem_id="compare-btn")
                with gr.Row():
                    teacher_audio = gr.Audio(label="Teacher", type="filepath", interactive=False, elem_id="teacher-audio")
                    student_audio = gr.Audio(label="Student", type="filepath", interactive=False, elem_id="student-audio")
                table = gr.Markdown(elem_id="timing-table")
                mel = gr.Image(label="Mel spectrograms", show_label=False, type="filepath", interactive=False,
                               elem_id="mel-plot")
                durations = gr.Image(label="Per-phoneme durations", show_label=False, type="filepath",
                                     interactive=False, elem_id="dur-plot")
                timings = gr.Image(label="Time per module", show_label=False, type="filepath", interactive=False,
                                   elem_id="time-plot", height=260)
                numbers = gr.JSON(label="Timings (JSON)", visible=False)
                scale_inputs = [noise, length, noise_w, deterministic]
                go.click(friendly(self.do_compare), [text, student, *scale_inputs],
                         [teacher_audio, student_audio, mel, durations, timings, table, numbers],
                         api_name="compare", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
                text.submit(friendly(self.do_compare), [text, student, *scale_inputs],
                            [teacher_audio, student_audio, mel, durations, timings, table, numbers],
                            api_visibility="private", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)

                gr.Markdown("### Mix and match: choose who runs each module, and hear where quality is lost")
                with gr.Row():
                    mix_d = gr.Radio(SIDES, value="student", label="duration")
                    mix_l = gr.Radio(SIDES, value="student", label="latent (front)")
                    mix_dec = gr.Radio(SIDES, value="teacher", label="decoder")
                    mix_btn = gr.Button("Hear the mix")
                with gr.Row():
                    mix_audio = gr.Audio(label="Mix", type="filepath", interactive=False)
                    mix_info = gr.Markdown()
                mix_btn.click(friendly(self.do_mix), [text, mix_d, mix_l, mix_dec, student, *scale_inputs],
                              [mix_audio, mix_info], api_name="mix", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
                # API only: one model end to end
                model = gr.Radio(SIDES, value="student", visible=False)
                one = gr.Audio(type="filepath", visible=False)
                gr.Button(visible=False).click(friendly(self.do_synthesize), [text, model, student, *scale_inputs], one,
                                               api_name="synthesize", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)

            with gr.Tab("Distill", id="distill"):
                gr.Markdown("Fine-tune the student on the teacher's outputs, right here (CPU). One job at a time; "
                            "the result is a new checkpoint under the data directory, selectable in the Compare tab. "
                            "The shipped checkpoint is never overwritten.")
                with gr.Row():
                    with gr.Column():
                        ft_name = gr.Textbox("", label="Checkpoint name", placeholder="my-finetune")
                        ft_steps = gr.Slider(1, 1000, 200, step=1, label="steps")
                        ft_lr = gr.Number(3e-4, label="learning rate")
                        ft_alpha = gr.Slider(0.0, 1.0, 1.0, step=0.05,
                                             label="α (weight of the teacher term; without recordings only the teacher term exists)")
                        ft_temp = gr.Slider(0.0, 1.0, 0.0, step=0.05, label="temperature (teacher noise: 0 = its mean)")
                        ft_modules = gr.CheckboxGroup(list(MODULES), value=list(MODULES), label="modules to train")
                        ft_base = gr.Dropdown(choices, value=choices[0] if choices else None,
                                              label="start from (none: a fresh student)", allow_custom_value=True)
                    with gr.Column():
                        ft_source = gr.Radio(["built-in set", "my text"], value="built-in set", label="text")
                        ft_sentences = gr.Slider(16, 200, 64, step=8, label="built-in set: sentences")
                        ft_text = gr.Textbox("", label="my text (one sentence per line)", lines=5)
                        ft_file = gr.File(label="…or upload a .txt file", file_types=[".txt"], type="filepath")
                        with gr.Row():
                            ft_start = gr.Button("Start fine-tune", variant="primary", elem_id="ft-start")
                            ft_cancel = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
                ft_msg = gr.Markdown()
                ft_key = gr.Textbox("", label="owner key (only this page can cancel its job)", interactive=False,
                                    max_lines=1, elem_id="ft-key")
                ft_status = gr.Markdown(elem_id="ft-status")
                ft_bar = gr.HTML()
                ft_loss = gr.Image(label="Loss curve", type="filepath", interactive=False)
                ft_json = gr.JSON(visible=False)
                ft_start.click(friendly(self.do_finetune),
                               [ft_name, ft_steps, ft_lr, ft_alpha, ft_temp, ft_modules, ft_source, ft_text, ft_file,
                                ft_base, ft_sentences], [ft_msg, ft_key], api_name="finetune", concurrency_id="jobs")
                ft_cancel.click(friendly(self.do_cancel), ft_key, ft_msg, api_name="finetune_cancel", concurrency_id="jobs")
                gr.Button(visible=False).click(self.do_status, None, ft_json, api_name="finetune_status",
                                               concurrency_limit=None)
                seen = gr.State(choices)
                timer = gr.Timer(1.0)
                timer.tick(self.poll, seen, [ft_status, ft_bar, ft_loss, seen, student, ft_base],
                           api_visibility="private", show_progress="hidden", concurrency_limit=None)

            with gr.Tab("Listen", id="listen"):
                gr.Markdown("**Blind test.** Two recordings of the same sentence: one from the teacher, one from the "
                            "student, in random order. Which do you prefer? Then rate each from 1 (bad) to 5 (excellent).")
                if not self.listening.ready:
                    gr.Markdown(f"⚠️ {NO_STUDENT}")
                token = gr.Textbox(visible=False)
                prompt_md = gr.Markdown()
                with gr.Row():
                    with gr.Column():
                        audio_a = gr.Audio(label="A", type="filepath", interactive=False)
                        mos_a = gr.Radio([1, 2, 3, 4, 5], label="rating of A (1–5)")
                    with gr.Column():
                        audio_b = gr.Audio(label="B", type="filepath", interactive=False)
                        mos_b = gr.Radio([1, 2, 3, 4, 5], label="rating of B (1–5)")
                choice = gr.Radio(["A", "B", "no preference"], label="which do you prefer?")
                with gr.Row():
                    vote_btn = gr.Button("Submit vote", variant="primary")
                    new_pair = gr.Button("New pair")
                vote_msg = gr.Markdown()
                pair_outputs = [token, prompt_md, audio_a, audio_b]
                new_pair.click(friendly(self.do_next_pair), None, pair_outputs, api_name="next_pair", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
                vote_btn.click(friendly(self.do_vote), [token, choice, mos_a, mos_b], vote_msg, api_name="vote",
                               concurrency_id="votes", concurrency_limit=8).success(
                    friendly(self.do_next_pair), None, pair_outputs, api_visibility="private", concurrency_id=SYNTH,
                    concurrency_limit=SYNTH_LIMIT).then(
                    lambda: (None, None, None), None, [choice, mos_a, mos_b], api_visibility="private", queue=False)
                with gr.Accordion("Results", open=False):
                    results_md = gr.Markdown()
                    with gr.Row():
                        refresh = gr.Button("Refresh results")
                        export = gr.Button("Export CSV")
                    csv_file = gr.File(label="votes.csv", interactive=False)
                refresh.click(self.do_results, None, results_md, api_name="results", concurrency_id="votes")
                export.click(self.do_export, None, csv_file, api_name="export_csv", concurrency_id="votes")

            with gr.Tab("How it works", id="about"):
                gr.Markdown(about.INTRO, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                           {"left": "$", "right": "$", "display": False}])
                gr.Image(plots.diagram(s.out_dir), label="Module-wise distillation", interactive=False,
                         buttons=[])
                gr.Markdown(about.benchmark_table())

            if self.listening.ready:
                demo.load(friendly(self.do_next_pair), None, pair_outputs, api_visibility="private")
            demo.load(self.do_results, None, results_md, api_visibility="private")
        demo.queue(default_concurrency_limit=2, max_size=None)
        return demo


def build(service: Service | None = None) -> tuple[gr.Blocks, App]:
    app = App(service or Service.load())
    return app.build(), app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    start = time.perf_counter()
    try:
        service = Service.load()
    except settings.SettingsError as error:
        raise SystemExit(f"kdtts: error: {error}") from None
    service.warm_up()
    demo, app = build(service)
    log.info("models loaded and warm in %.1f s; data directory %s", time.perf_counter() - start, service.data)
    threading.Thread(target=app.prewarm, name="prewarm", daemon=True).start()
    def clean_outputs() -> None:
        while True:
            time.sleep(300)
            service.clean_outputs()

    threading.Thread(target=clean_outputs, name="clean-outputs", daemon=True).start()
    # served: only the output folder; the data directory (votes, runs, caches, checkpoints) never
    demo.launch(server_name="0.0.0.0", server_port=settings.port(), allowed_paths=[str(service.out_dir)],
                blocked_paths=[str(service.data)], max_file_size=MAX_UPLOAD, max_threads=MAX_THREADS,
                theme=gr.themes.Soft(), css=CSS, show_error=True)
