"""The Distill tab: launch a short fine-tune in the browser, watch its progress and loss, cancel it.
Its API endpoints: /finetune (returns the owner key), /finetune_cancel (needs it), /finetune_status."""
from __future__ import annotations

import html
import shutil
import threading

import gradio as gr

from kdtts.distill.config import MODULES
from kdtts.distill.finetune_request import MAX_RECIPE_MINUTES, SCRATCH_DECODER
from kdtts.families import family_of
from kdtts.teachers.registry import DEFAULT_TEACHER
from kdtts.ui import plots, uploads
from kdtts.ui.errors import friendly
from kdtts.ui.finetune import MAX_USER_CHARS, FinetuneManager, FinetuneRequest
from kdtts.ui.limits import visitor
from kdtts.ui.service import Service
from kdtts.ui.teachers import chosen, switch_panels, teacher_selector
from kdtts.ui.temperature import slider as temperature_slider

PRESETS = ("fine-tune a student", "from scratch: a small decoder (hear noise turn into speech in ~2 minutes)",
           "the recipe's short form: front and adversarial decoder in a budget of minutes, with its model card")


def _changed(choices: list[str], seen: list[str] | None) -> tuple:
    """(seen, dropdown, dropdown) updates for a list of checkpoints: new choices when the list changed (each
    visitor's own selection stays as it is), else nothing."""
    if choices == seen:
        return seen, gr.skip(), gr.skip()
    return choices, gr.update(choices=choices), gr.update(choices=choices)


class DistillTab:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.jobs = FinetuneManager(service)
        self._loss_png: tuple[tuple, str | None] = ((), None)
        self._loss_lock = threading.Lock()
        self._sample_key: tuple | None = None
        self._sample_path: str | None = None

    def do_finetune(self, name="", steps=200, lr=3e-4, alpha=1.0, temperature=0.0, modules=None,
                    source="built-in set", text="", upload=None, base=None, sentences=64, recordings=None,
                    take_1=None, take_2=None, take_3=None, preset=PRESETS[0], teacher=DEFAULT_TEACHER,
                    vocoder_base=None, minutes=5, request: gr.Request = None):
        """Start a job; returns (message, owner key). The key is needed to cancel, so only its starter can.
        Recordings (a zip, or takes from the microphone) enable α < 1. The third preset runs the recipe's
        short form (configs/recipe_finetune.json) in `minutes` instead of `steps` of one regression."""
        user_text = ""
        if source != "built-in set":
            user_text = (text or "")
            if upload:
                with open(upload, encoding="utf-8", errors="replace") as f:
                    user_text += "\n" + f.read(MAX_USER_CHARS + 1)  # never more than the quota into memory
            if not user_text.strip():
                raise ValueError("Paste or upload some text, or choose the built-in set.")
        owner = visitor(request)
        folder = None
        if recordings or any((take_1, take_2, take_3)):
            self.jobs.admissible(owner)  # the quota and the budget before the upload is written
            budget = self.service.storage
            folder = str(uploads.from_zip(recordings, self.service.data, budget) if recordings
                         else uploads.from_takes([take_1, take_2, take_3], self.service.data, budget=budget))
        try:  # a refused start leaves nothing behind
            family = family_of(chosen(teacher))
            scratch = preset == PRESETS[1] and family.scratch
            recipe = "finetune" if preset == PRESETS[2] and family.name == "tts" else None
            base = {"tts": base, "vocoder": vocoder_base}.get(family.name, base)  # each family's start-from list
            job_request = FinetuneRequest(name=name or "", steps=int(steps), lr=float(lr), alpha=float(alpha),
                                          temperature=float(temperature), modules=tuple(modules or MODULES),
                                          text=user_text, base=None if scratch else (base or None),
                                          sentences=int(sentences), recordings=folder,
                                          student=SCRATCH_DECODER if scratch else None,
                                          sample_every=max(1, int(steps) // 6) if scratch else None,
                                          teacher=teacher, recipe=recipe, minutes=float(minutes or 5))
            job = self.jobs.start(job_request, owner)
        except BaseException:
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if job.status == "queued":
            return f"Fine-tune {job.id} is waiting behind the running one: {job.message}.", job.secret
        if recipe:
            return (f"Started fine-tune {job.id}: the {recipe} recipe in {job_request.minutes:g} minutes.",
                    job.secret)
        return f"Started fine-tune {job.id}: {job_request.steps} steps.", job.secret

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
            if key and key[:2] == (job.id, job.stage) and (0 <= n - key[2] < 5 and job.running or n == key[2]):
                return path
            path = plots.losses(list(job.rows), self.service.out_dir, f"fine-tune {job.id} {job.stage}".strip())
            self._loss_png = ((job.id, job.stage, n), path)
            return path

    def poll(self, seen_checkpoints, owner_key="", seen_vocoders=None):
        state = self.jobs.state()
        fraction = state["step"] / max(1, state.get("steps") or 1)
        colour = {"failed": "#d62728", "cancelled": "#7f7f7f", "done": "#2ca02c"}.get(state["status"], "#ff7f0e")
        busy = "🔒 **busy** – one job at a time; " if state["running"] else ""
        status = (f"{busy}**{state['status']}** {html.escape(state['message'] or '')} "
                  f"({state.get('seconds', 0)} s)" if state["status"] != "idle" else state["message"])
        place = self.jobs.position(owner_key)
        if place:
            status += f"  \n⏳ **Your fine-tune waits: position {place} of {state['waiting']}.**"
        elif state.get("waiting"):
            status += f"  \n{state['waiting']} more waiting."
        bar = (f"<div class='kd-progress'><div style='width:{100 * fraction:.0f}%;background:{colour}'></div></div>"
               if state["status"] != "idle" else "")
        sample, heard = self.latest_sample()
        card = state.get("card")
        card = gr.update(value=card, visible=True) if card and state["status"] == "done" else gr.update(visible=False)
        return (status, bar, self.loss_png(), card, *_changed(list(self.service.checkpoints()), seen_checkpoints), sample,
                heard, *_changed(list(self.service.vocoder_checkpoints()), seen_vocoders))

    def latest_sample(self):
        """The job's newest listening sample, copied into the served folder once; skip when unchanged."""
        job = self.jobs.job
        if job is None or not job.samples:
            return gr.skip(), gr.skip()
        step, path = job.samples[-1]
        with self._loss_lock:
            if self._sample_key != (job.id, step):
                served = self.service.out_dir / f"sample-{job.id}-{step}.wav"
                if path.exists():
                    shutil.copyfile(path, served)
                self._sample_key, self._sample_path = (job.id, step), str(served)
        what = ("the student's decoder on the teacher's z" if list(job.request.modules) == ["decoder"]
                else "the student reading a held-out sentence")
        return self._sample_path, f"**Listening sample at step {step}** ({what})"

    def refresh(self):
        """On page load: the checkpoints that exist now (fine-tunes finished since the server started)."""
        return *_changed(list(self.service.checkpoints()), None), *_changed(list(self.service.vocoder_checkpoints()), None)

    def build(self, choices: list[str], compare_student: gr.Dropdown, compare_vocoder: gr.Dropdown,
              demo: gr.Blocks) -> None:
        gr.Markdown("Fine-tune the student on the teacher's outputs, right here (CPU). One job at a time; "
                    "the result is a new checkpoint under the data directory, selectable in the Compare tab. "
                    "The shipped checkpoint is never overwritten.")
        teacher, _ = teacher_selector("distill")
        preset = gr.Radio(list(PRESETS), value=PRESETS[0], label="what to run")
        vocoders = list(self.service.vocoder_checkpoints())
        with gr.Row():
            with gr.Column():
                name = gr.Textbox("", label="Checkpoint name", placeholder="my-finetune")
                steps = gr.Number(200, precision=0, minimum=1, maximum=1000, label="steps")
                minutes = gr.Number(5, minimum=2, maximum=MAX_RECIPE_MINUTES, visible=False, elem_id="ft-minutes",
                                    label="the recipe's budget (minutes, teacher and evaluation included)")
                lr = gr.Number(3e-4, label="learning rate")
                with gr.Group() as tts_only:  # the text-to-speech student's settings
                    alpha, temperature, modules, base = self._build_tts_settings(choices)
                vocoder_base = gr.Dropdown(vocoders, value=vocoders[0] if vocoders else None, visible=False,
                                           label="start from (a student vocoder; empty: the shipped student's "
                                                 "decoder body)", allow_custom_value=True, elem_id="ft-vocoder-base")
            with gr.Column():
                source = gr.Radio(["built-in set", "my text"], value="built-in set", label="text")
                sentences = gr.Number(64, precision=0, minimum=16, maximum=200, label="built-in set: sentences")
                text = gr.Textbox("", label="my text (one sentence per line)", lines=5)
                upload = gr.File(label="…or upload a .txt file", file_types=[".txt"], type="filepath")
                recordings_panel, recordings, takes = self._build_recordings()
                with gr.Row():
                    start = gr.Button("Start fine-tune", variant="primary", elem_id="ft-start")
                    cancel = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
        message, key, status, bar, loss, heard, sample = self._build_progress()
        card = gr.Markdown(visible=False, elem_id="ft-card", label="the finished run's model card")
        state = gr.JSON(visible=False, label="job state")
        start.click(friendly(self.do_finetune), [name, steps, lr, alpha, temperature, modules, source, text, upload,
                                                 base, sentences, recordings, *takes, preset, teacher, vocoder_base,
                                                 minutes],
                    [message, key], api_name="finetune", concurrency_id="jobs")
        cancel.click(friendly(self.do_cancel), key, message, api_name="finetune_cancel", concurrency_id="jobs")
        gr.Button(visible=False).click(self.do_status, None, state, api_name="finetune_status", concurrency_limit=None)
        for source_of_y in (recordings, *takes):  # α means something only with recordings
            source_of_y.change(lambda *y: gr.update(interactive=any(y), value=1.0 if not any(y) else 0.5),
                               [recordings, *takes], alpha, api_visibility="private", queue=False)
        preset.change(lambda p: ((gr.update(value=["decoder"]), 300, 2e-3, None) if p == PRESETS[1] else
                                 (gr.update(value=list(MODULES)), 200, 3e-4, gr.skip())),
                      preset, [modules, steps, lr, base], api_visibility="private", queue=False)
        preset.change(lambda p: tuple(gr.update(visible=(p == PRESETS[2]) == recipe_field)
                                      for recipe_field in (True, False, False, False)),
                      preset, [minutes, steps, lr, modules], api_visibility="private", queue=False)
        switch_panels(teacher, {"tts": [preset, tts_only, recordings_panel], "vocoder": [vocoder_base]})
        seen, seen_vocoders = gr.State(choices), gr.State(vocoders)
        lists = [seen, compare_student, base, seen_vocoders, compare_vocoder, vocoder_base]
        gr.Timer(1.0).tick(self.poll, [seen, key, seen_vocoders], [status, bar, loss, card, *lists[:3], sample, heard,
                                                                   *lists[3:]],
                           api_visibility="private", show_progress="hidden", concurrency_limit=None)
        demo.load(self.refresh, None, lists, api_visibility="private")

    @staticmethod
    def _build_tts_settings(choices: list[str]) -> tuple:
        alpha = gr.Slider(0.0, 1.0, 1.0, step=0.05, interactive=False, label="α (weight of the teacher term)",
                          info="α < 1 mixes in a loss against recordings of real speech (below). With none, "
                               "only the teacher term exists and α is 1.", elem_id="ft-alpha")
        temperature = temperature_slider("ft-temperature")
        modules = gr.CheckboxGroup(list(MODULES), value=list(MODULES), label="modules to train")
        base = gr.Dropdown(choices, value=choices[0] if choices else None,
                           label="start from (empty: a fresh student)", allow_custom_value=True)
        return alpha, temperature, modules, base

    @staticmethod
    def _build_progress() -> tuple:
        message = gr.Markdown(label="message")
        key = gr.Textbox("", label="owner key (only this page can cancel its job)", interactive=False, max_lines=1,
                         elem_id="ft-key")
        status = gr.Markdown(elem_id="ft-status", label="status")
        bar = gr.HTML(label="progress")
        with gr.Row():
            loss = gr.Image(label="Loss curve", type="filepath", interactive=False)
            with gr.Column():
                heard = gr.Markdown(label="sample note")
                sample = gr.Audio(label="latest listening sample", type="filepath", interactive=False,
                                  elem_id="ft-sample")
        return message, key, status, bar, loss, heard, sample

    def _build_recordings(self) -> tuple[gr.Accordion, gr.File, list[gr.Audio]]:
        with gr.Accordion("Recordings (ground truth y, for α < 1): your voice, or a dataset", open=False) as panel:
            gr.Markdown("Read each sentence into the microphone (listen back, and record again if you like), "
                        "**or** upload a zip of an LJSpeech-style dataset (`metadata.csv` with `id|text` lines "
                        "and `wavs/<id>.wav`). The teacher reads the same text and each recording is aligned to it, "
                        "so the loss can compare the student with both.")
            takes = [gr.Audio(sources=["microphone"], type="filepath", label=f"read: “{prompt}”",
                              elem_id=f"take-{i + 1}") for i, prompt in enumerate(uploads.PROMPTS)]
            recordings = gr.File(label="…or a dataset (.zip)", file_types=[".zip"], type="filepath",
                                 elem_id="ft-recordings")
        return panel, recordings, takes
