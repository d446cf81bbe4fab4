"""The Gradio app, top to bottom like the story it tells: compare, distill, listen, how it works.

Each tab is a module that owns its layout and handlers (compare, distill, listen, about); this file
puts them on one page, starts the background work and launches the server."""
from __future__ import annotations

import logging
import os
import threading
import time

import gradio as gr

from kdtts.distill.corpus import read_heldout
from kdtts.ui import about, settings
from kdtts.ui.compare import EXAMPLES, CompareTab
from kdtts.ui.distill import DistillTab
from kdtts.ui.listen import ListenTab
from kdtts.ui.service import CLEAN_EVERY_S, NO_STUDENT, OUTPUT_MAX_AGE_S, Service, lower_priority
from kdtts.ui.teachers import CSS as TEACHER_CSS

log = logging.getLogger("kdtts.ui")
MAX_UPLOAD = "20mb"  # a fine-tune's recordings (zip or microphone takes); text files are read only to MAX_USER_CHARS
MAX_THREADS = 200    # worker threads: requests waiting for a synthesis slot hold one each
CSS = (".kd-progress{height:14px;background:#eee;border-radius:7px;overflow:hidden}"
       ".kd-progress>div{height:100%;background:#ff7f0e}"
       "#timing-table table{display:block;overflow-x:auto;white-space:nowrap}"  # scrolls on a phone, never wraps
       # a long text's mels keep their width (one time scale for every length) and scroll sideways
       "#mel-plot button,#vocoder-mel-plot button{overflow-x:auto;display:block!important;text-align:left}"
       "#mel-plot .image-frame,#vocoder-mel-plot .image-frame{display:inline-block}"
       "#mel-plot img,#vocoder-mel-plot img{max-width:none!important;width:auto!important;object-fit:none!important}"
       "@media (max-width:600px){[role=tab]{padding-left:8px!important;padding-right:8px!important}}"
       + TEACHER_CSS)


class App:
    def __init__(self, service: Service) -> None:
        self.service = service
        heldout = read_heldout()
        self.compare = CompareTab(service, heldout[0])
        self.distill = DistillTab(service)
        # the blind test's prompts are never the Compare tab's examples (synthesising one is refused)
        self.listen = ListenTab(service, settings.listen_prompts(heldout[EXAMPLES:]))

    def prewarm(self) -> None:
        """Background: the models' sessions first (at normal priority: the first visitor may be waiting on
        them), then at the lowest priority blind-test audio and the teacher's reading of the built-in text."""
        started = time.perf_counter()
        self.service.warm_up()
        log.info("models warm in %.1f s", time.perf_counter() - started)
        lower_priority(19)
        if self.service.has_student:
            self.compare.example()
        if self.listen.listening.ready:
            self.listen.listening.prewarm()
        if os.environ.get("KDTTS_PREWARM_FINETUNE", "1") != "0":
            try:
                self.distill.jobs.prewarm()
            except Exception:
                log.exception("fine-tune cache prewarm failed")
        log.info("prewarm finished in %.1f s", time.perf_counter() - started)

    def build(self) -> gr.Blocks:
        s = self.service
        choices = list(s.checkpoints())
        # Gradio's copies of served files expire with the files themselves (OUTPUT_MAX_AGE_S)
        expire = (CLEAN_EVERY_S, OUTPUT_MAX_AGE_S - CLEAN_EVERY_S)
        with gr.Blocks(title="kdtts: knowledge distillation for TTS", delete_cache=expire) as demo:
            gr.Markdown("# kdtts: a big teacher voice, distilled into a tiny, fast student\n"
                        f"Teacher: Piper **{s.teacher.model_path.stem}** ({s.teacher.parameters / 1e6:.1f} M parameters). "
                        + (f"Student: **{s.default_name}**: " + about.headline() if s.has_student else f"⚠️ {NO_STUDENT}"))
            with gr.Tabs(overflow_behavior="wrap"):  # on a phone every tab stays visible (no "..." menu)
                self._tabs(choices, demo)
            if s.has_student:  # the first ten seconds: a finished example, before anyone clicks
                demo.load(self.compare.example, None, self.compare.outputs, api_visibility="private")
        demo.queue(default_concurrency_limit=2, max_size=None)
        return demo

    def _tabs(self, choices: list[str], demo: gr.Blocks) -> None:
        with gr.Tab("Compare", id="compare"):
            self.compare.build(choices)
        with gr.Tab("Distill", id="distill"):
            self.distill.build(choices, self.compare.student, self.compare.vocoders.student, demo)
        with gr.Tab("Listen", id="listen"):
            self.listen.build(demo)
        with gr.Tab("How it works", id="about"):
            about.build(self.service)


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
    demo, app = build(service)  # serving first; the models warm up in the background (App.prewarm)
    log.info("app built in %.1f s; data directory %s", time.perf_counter() - start, service.data)
    threading.Thread(target=app.prewarm, name="prewarm", daemon=True).start()
    threading.Thread(target=service.clean_outputs_forever, name="clean-outputs", daemon=True).start()
    # uvicorn rewrites a loopback peer's address from its X-Forwarded-For by default; whom to believe is
    # kdtts.ui.limits.visitor's decision alone (the socket's peer, or a configured number of trusted hops)
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    # served: only the output folder; the data directory (votes, runs, caches, checkpoints) never
    demo.launch(server_name=settings.server_name(), server_port=settings.port(), allowed_paths=[str(service.out_dir)],
                blocked_paths=[str(service.data)], max_file_size=MAX_UPLOAD, max_threads=MAX_THREADS,
                theme=gr.themes.Soft(), css=CSS, show_error=True)
