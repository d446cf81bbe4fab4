"""The blind test's server side: which systems meet, their audio, per-pair copies, votes.

Systems: the teacher, the default student, the newest fine-tuned checkpoints, a module mix (the default
student's decoder on the teacher's durations and z), and Griffin-Lim on the teacher's mel as a low anchor; now and then a gold check (the teacher against a deliberately degraded
clip, P.808-style) screens inattentive raters. A pair is handed out with an opaque single-use token; the server alone
knows which system is on which side, so neither the page nor an API caller can see the names before
voting, and a vote counts only after both clips were played. Each visitor's prompts come without
replacement, and the same two systems never meet on the same prompt twice in a row.
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from kdtts.audio import LOUDNESS_TARGET, normalise_loudness, write_wav
from kdtts.engine import Mix
from kdtts.student.header import CheckpointError
from kdtts.ui import settings
from kdtts.ui.service import Service, file_key, lower_priority
from kdtts.ui.votes import GOLD, Vote, VoteStore

log = logging.getLogger("kdtts.ui")
TEACHER, GRIFFINLIM = "teacher", "griffinlim"
MIX = Mix("teacher", "teacher", "student")  # the arena's module mix: the student decoder on the teacher's z
MAX_FINETUNED = 3  # newest fine-tuned checkpoints that take part
LEVEL = f"{-LOUDNESS_TARGET:g}lufs"  # in the cache folders' names: clips made before loudness matching are not reused


@dataclass(frozen=True)
class Pair:
    token: str
    prompt: int
    text: str
    system_a: str
    system_b: str
    wav_a: str
    wav_b: str


@dataclass
class Visitor:
    """One listener's draw: prompts without replacement (reshuffled when used up), the last pairing."""

    order: list[int] = field(default_factory=list)
    last: tuple[int, frozenset] | None = None


class Listening:
    def __init__(self, service: Service, store: VoteStore, prompts: list[str], max_tokens: int = 50_000) -> None:
        self.service, self.store, self.prompts = service, store, prompts
        service.blind.add(u for prompt in prompts for u in service.teacher.phonemizer(prompt))
        service.storage.sweepers.append(self.sweep)
        self.cache_dir = service.data / "listen_cache"
        self._tokens: OrderedDict[str, Pair] = OrderedDict()
        self._played: dict[str, set[str]] = {}
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._generate = threading.Lock()
        self._rng = random.SystemRandom()
        self.gold_rate = settings.gold_rate()  # share of pairs that are a gold check

    def systems(self) -> dict[str, tuple[str, Path]]:
        """label -> (teacher, griffinlim or a student checkpoint's name; its cache folder)."""
        stem = f"{self.service.teacher.model_path.stem}-{LEVEL}"
        found = {TEACHER: (TEACHER, self.cache_dir / f"teacher-{stem}"),
                 GRIFFINLIM: (GRIFFINLIM, self.cache_dir / f"griffinlim-{stem}")}
        students = list(self.service.checkpoints().items())
        default = students[:1] if self.service.default_name is not None else []
        for name, path in default + [s for s in students if s not in default][:MAX_FINETUNED]:
            key = file_key(path)
            found[f"student:{name}:{key}"] = (name, self.cache_dir / f"student-{key}-{LEVEL}")
        for name, path in default:  # where the default student's loss lies: its decoder alone, on the teacher's z
            key = file_key(path)
            found[f"mix:{name}:{key}"] = (f"mix:{name}", self.cache_dir / f"mix-{key}-{LEVEL}")
        return found

    @property
    def ready(self) -> bool:
        return self.service.has_student

    def _gold_folder(self) -> Path:
        return self.cache_dir / f"gold-{self.service.teacher.model_path.stem}-{LEVEL}"

    def sweep(self, aggressive: bool = False) -> int:
        """Delete the cached clips of systems that no longer take part (evicted checkpoints, old levels)."""
        from kdtts.ui.storage import remove

        current = {folder for _, folder in self.systems().values()} | {self._gold_folder()}
        return sum(remove(folder) for folder in self.cache_dir.glob("*") if folder not in current)

    def audio(self, system: str, prompt: int) -> str:
        """A system's clip of a prompt, loudness-matched (LOUDNESS_TARGET), rendered once and cached."""
        name, folder = (GOLD, self._gold_folder()) if system == GOLD else self.systems()[system]
        path = folder / f"{prompt:03d}.wav"
        if not path.exists():
            with self._generate:  # one generator at a time: concurrent listeners wait, the CPU is not oversubscribed
                if not path.exists():
                    rate = self.service.teacher.spec.sample_rate
                    audio = normalise_loudness(self._render(name, self.prompts[prompt]), rate)
                    tmp = folder / f".{prompt:03d}.{secrets.token_hex(4)}.wav"
                    write_wav(tmp, audio, rate)
                    os.replace(tmp, path)
        return str(path)

    def _render(self, name: str, text: str) -> np.ndarray:
        if name == GOLD:  # the teacher low-passed to telephone band and buried in noise: obviously bad
            import torch
            import torchaudio.functional as AF

            teacher = self._synthesize(self.service.engine(), text, Mix.of("teacher")).audio
            muffled = AF.lowpass_biquad(torch.from_numpy(teacher), self.service.teacher.spec.sample_rate, 1000.0).numpy()
            noise = np.random.default_rng(0).standard_normal(len(muffled)).astype(np.float32)
            return 0.5 * muffled + 0.5 * noise * float(np.sqrt(np.mean(muffled ** 2)))
        if name == GRIFFINLIM:
            from kdtts.evaluate.griffinlim import griffin_lim

            teacher = self._synthesize(self.service.engine(), text, Mix.of("teacher"))
            return griffin_lim(teacher.audio, teacher.sample_rate)
        if name.startswith("mix:"):
            engine = self.service.engine(name.split(":", 1)[1], need_student=True)
            return self._synthesize(engine, text, MIX).audio
        side = "teacher" if name == TEACHER else "student"
        engine = self.service.engine(None if name == TEACHER else name, need_student=side == "student")
        return self._synthesize(engine, text, Mix.of(side)).audio

    @staticmethod
    def _synthesize(engine, text: str, mix: Mix):
        """Without the Service's synthesis slots: `_generate` already renders one clip at a time, and the
        prewarm thread runs at the lowest CPU priority, so holding a slot there would make the visitors'
        requests wait on a thread that gets no CPU while they run (a priority inversion)."""
        return engine.synthesize(text, mix)

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

    def _draw(self, visitor: Visitor) -> tuple[int, str, str]:
        if not visitor.order:
            visitor.order = self._rng.sample(range(len(self.prompts)), len(self.prompts))
        prompt = visitor.order.pop()
        if self._rng.random() < self.gold_rate:
            return (prompt, *self._rng.sample([TEACHER, GOLD], 2))
        systems = sorted(self.systems())
        for _ in range(20):
            a, b = self._rng.sample(systems, 2)  # sides shuffled
            if visitor.last != (prompt, frozenset((a, b))):
                break
        visitor.last = (prompt, frozenset((a, b)))
        return prompt, a, b

    def next_pair(self, visitor: Visitor | None = None) -> Pair:
        if not self.ready:
            raise CheckpointError("The blind test needs a student checkpoint; none is loaded yet.")
        prompt, a, b = self._draw(visitor or Visitor())
        wav_a, wav_b = (self.served_copy(self.audio(system, prompt)) for system in (a, b))
        pair = Pair(secrets.token_urlsafe(12), prompt, self.prompts[prompt], a, b, wav_a, wav_b)
        with self._lock:
            self._tokens[pair.token] = pair
            self._played[pair.token] = set()
            while len(self._tokens) > self._max_tokens:
                self._played.pop(self._tokens.popitem(last=False)[0], None)
        return pair

    def played(self, token: str, side: str) -> None:
        """A listener played side "A" or "B" of a pair (the player reports it, or an API caller does)."""
        if side not in ("A", "B"):
            raise ValueError("side must be 'A' or 'B'")
        with self._lock:
            if token in self._played:
                self._played[token].add(side)

    def vote(self, token: str, choice: str, mos_a: int | None, mos_b: int | None,
             session: str | None = None, rater: str | None = None, signed_in: bool = False) -> tuple[int, Pair]:
        """Record a vote on a pair; return its id and the pair, whose systems may now be revealed."""
        with self._lock:
            if token in self._tokens and self._played.get(token) != {"A", "B"}:
                raise ValueError("Play both clips before voting.")
            pair = self._tokens.pop(token, None)
            played = self._played.pop(token, None)
        if pair is None:
            raise ValueError("Unknown or already used pair token: fetch a new pair first.")
        vote = Vote(pair.prompt, pair.text, pair.system_a, pair.system_b, choice,
                    None if mos_a in (None, "", 0) else int(mos_a), None if mos_b in (None, "", 0) else int(mos_b),
                    (session or "").strip()[:40] or None, rater, signed_in)
        try:
            return self.store.add(vote), pair
        except ValueError:
            with self._lock:  # a bad rating: let the listener fix it and vote again
                self._tokens[token], self._played[token] = pair, played or set()
            raise

    def prewarm(self) -> None:
        """Render every prompt for every system (background, lowest priority) so listeners never wait."""
        lower_priority(19)
        for prompt in range(len(self.prompts)):
            for system in list(self.systems()):
                try:
                    self.audio(system, prompt)
                except Exception:  # a bad prompt must not stop the others
                    log.exception("listening cache: %s #%d failed", system, prompt)
