"""The Listen tab, a blind A/B test: random prompt, random sides, hidden names; audio cached on disk per
system. Its API endpoints: /next_pair, /vote, /results, /export_csv.

A pair is handed out with an opaque single-use token; the server alone knows which system is on
which side, so neither the page nor an API caller can see the names before voting.
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import time

import gradio as gr
import numpy as np
import soundfile as sf

from kdtts.audio import write_wav
from kdtts.engine import Mix
from kdtts.student.checkpoint import CheckpointError
from kdtts.ui import settings
from kdtts.ui.compare import SYNTH, SYNTH_LIMIT
from kdtts.ui.errors import friendly
from kdtts.ui.limits import RateLimiter, visitor
from kdtts.ui.service import NO_STUDENT, Service, file_key
from kdtts.ui.votes import Vote, VoteStore, markdown, summarise

log = logging.getLogger("kdtts.ui")
TEACHER = "teacher"


@dataclass(frozen=True)
class Pair:
    token: str
    prompt: int
    text: str
    system_a: str
    system_b: str
    wav_a: str
    wav_b: str


class Listening:
    def __init__(self, service: Service, store: VoteStore, prompts: list[str], max_tokens: int = 50_000) -> None:
        self.service, self.store, self.prompts = service, store, prompts
        self.cache_dir = service.data / "listen_cache"
        self._tokens: OrderedDict[str, Pair] = OrderedDict()
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._generate = threading.Lock()
        self._rng = random.SystemRandom()
        self.systems: dict[str, tuple[str, Path]] = {}  # label -> (student name or teacher, cache folder)
        self.systems[TEACHER] = (TEACHER, self.cache_dir / f"teacher-{service.teacher.model_path.stem}")
        if service.default_name is not None:
            key = file_key(service.default_path)
            self.systems[f"student:{service.default_name}:{key}"] = (service.default_name, self.cache_dir / f"student-{key}")

    @property
    def ready(self) -> bool:
        return len(self.systems) >= 2

    def audio(self, system: str, prompt: int) -> str:
        name, folder = self.systems[system]
        path = folder / f"{prompt:03d}.wav"
        if not path.exists():
            with self._generate:  # one generator at a time: concurrent listeners wait, the CPU is not oversubscribed
                if not path.exists():
                    side = "teacher" if name == TEACHER else "student"
                    engine = self.service.engine(None if name == TEACHER else name, need_student=side == "student")
                    synthesis = self.service.synthesize(engine, self.prompts[prompt], Mix.of(side))
                    tmp = folder / f".{prompt:03d}.{secrets.token_hex(4)}.wav"
                    write_wav(tmp, synthesis.audio, synthesis.sample_rate)
                    os.replace(tmp, path)
        return str(path)

    def served_copy(self, path: str) -> str:
        """A copy for one pair, in the served output folder: random +-1 LSB dither and 0-40 ms of extra
        silence at each end. Inaudible, but no copy matches another byte for byte or in length, so a
        script cannot tell the systems apart by hashing what /synthesize returns."""
        audio, rate = sf.read(path, dtype="int16")
        rng = np.random.default_rng(self._rng.getrandbits(64))
        pad = rng.integers(0, int(0.04 * rate) + 1, size=2)
        audio = np.concatenate([np.zeros(pad[0], np.int32), audio.astype(np.int32), np.zeros(pad[1], np.int32)])
        audio = np.clip(audio + rng.integers(-1, 2, size=audio.shape), -32768, 32767).astype(np.int16)
        out = self.service.out_dir / f"pair-{secrets.token_hex(8)}.wav"
        sf.write(str(out), audio, rate, subtype="PCM_16")
        return str(out)

    def next_pair(self) -> Pair:
        if not self.ready:
            raise CheckpointError("The blind test needs a student checkpoint; none is loaded yet.")
        prompt = self._rng.randrange(len(self.prompts))
        a, b = self._rng.sample(sorted(self.systems), 2)  # sides shuffled
        wav_a, wav_b = (self.served_copy(self.audio(system, prompt)) for system in (a, b))
        pair = Pair(secrets.token_urlsafe(12), prompt, self.prompts[prompt], a, b, wav_a, wav_b)
        with self._lock:
            self._tokens[pair.token] = pair
            while len(self._tokens) > self._max_tokens:
                self._tokens.popitem(last=False)
        return pair

    def vote(self, token: str, choice: str, mos_a: int | None, mos_b: int | None) -> tuple[int, Pair]:
        """Record a vote on a pair; return its id and the pair, whose systems may now be revealed."""
        with self._lock:
            pair = self._tokens.pop(token, None)
        if pair is None:
            raise ValueError("Unknown or already used pair token: fetch a new pair first.")
        vote = Vote(pair.prompt, pair.text, pair.system_a, pair.system_b, choice,
                    None if mos_a in (None, "", 0) else int(mos_a), None if mos_b in (None, "", 0) else int(mos_b))
        try:
            return self.store.add(vote), pair
        except ValueError:
            with self._lock:  # a bad rating: let the listener fix it and vote again
                self._tokens[token] = pair
            raise

    def prewarm(self) -> None:
        """Render every prompt for every system (background, lowest priority) so listeners never wait."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        for prompt in range(len(self.prompts)):
            for system in list(self.systems):
                try:
                    self.audio(system, prompt)
                except Exception:  # noqa: BLE001 - a bad prompt must not stop the others
                    log.exception("listening cache: %s #%d failed", system, prompt)


def _shown(system: str) -> str:
    """A system's name for people: 'teacher' or 'student (checkpoint name)'."""
    return system if system == TEACHER else f"student ({system.split(':')[1]})"


class ListenTab:
    def __init__(self, service: Service, prompts: list[str]) -> None:
        self.service = service
        self.votes = VoteStore(service.data / "votes.sqlite")
        self.listening = Listening(service, self.votes, prompts)
        self.vote_limit = RateLimiter(settings.votes_per_minute(), 60, "votes")

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
        vote_id, pair = self.listening.vote(token, choice, mos_a, mos_b)
        return (f"Thanks! Vote #{vote_id} recorded. A was **{_shown(pair.system_a)}**, "
                f"B was **{_shown(pair.system_b)}**. A new pair is loading.")

    def do_results(self):
        return markdown(summarise(self.votes.rows()))

    def do_export(self):
        return str(self.votes.csv(self.service.out_dir / f"votes-{time.strftime('%Y%m%d-%H%M%S')}.csv"))

    def build(self, demo: gr.Blocks) -> None:
        gr.Markdown("**Blind test.** Two recordings of the same sentence: one from the teacher, one from the "
                    "student, in random order. Which do you prefer? Then rate each from 1 (bad) to 5 (excellent).")
        if not self.listening.ready:
            gr.Markdown(f"⚠️ {NO_STUDENT}")
        token = gr.Textbox(visible=False, label="pair token")
        prompt_md = gr.Markdown(label="prompt")
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
        vote_msg = gr.Markdown(label="vote result")
        pair = [token, prompt_md, audio_a, audio_b]
        synth = {"concurrency_id": SYNTH, "concurrency_limit": SYNTH_LIMIT}
        new_pair.click(friendly(self.do_next_pair), None, pair, api_name="next_pair", **synth)
        vote_btn.click(friendly(self.do_vote), [token, choice, mos_a, mos_b], vote_msg, api_name="vote",
                       concurrency_id="votes", concurrency_limit=8).success(
            friendly(self.do_next_pair), None, pair, api_visibility="private", **synth).then(
            lambda: (None, None, None), None, [choice, mos_a, mos_b], api_visibility="private", queue=False)
        with gr.Accordion("Results", open=False):
            results_md = gr.Markdown(label="results")
            with gr.Row():
                refresh = gr.Button("Refresh results")
                export = gr.Button("Export CSV")
            csv_file = gr.File(label="votes.csv", interactive=False)
        refresh.click(self.do_results, None, results_md, api_name="results", concurrency_id="votes")
        export.click(self.do_export, None, csv_file, api_name="export_csv", concurrency_id="votes")
        if self.listening.ready:
            demo.load(friendly(self.do_next_pair), None, pair, api_visibility="private")
        demo.load(self.do_results, None, results_md, api_visibility="private")
