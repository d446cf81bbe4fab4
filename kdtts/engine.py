"""Text to speech through any mix of teacher and student modules.

Each module (duration, front, decoder) is taken from the teacher or the student, so a learner can
hear where quality is lost: e.g. student front + teacher decoder. The teacher's front accepts the
student's durations (the graph is cut at the durations), and either decoder accepts either z.
"""
from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdtts.streaming import Windows, speak_stream
from kdtts.student.header import CheckpointError, student_path
from kdtts.student.onnx_student import load_fast
from kdtts.teachers.piper import PiperTeacher
from kdtts.text import Utterance
from kdtts.voice import Scales, Side, Spoken, Voice, speak

STAGES = ("text", "duration", "front", "decoder")


@dataclass(frozen=True)
class Mix:
    """Which model runs each module."""

    duration: Side = "teacher"
    front: Side = "teacher"
    decoder: Side = "teacher"

    @classmethod
    def of(cls, model: Side) -> Mix:
        return cls(model, model, model)

    def label(self) -> str:
        sides = {self.duration, self.front, self.decoder}
        if len(sides) == 1:
            return sides.pop()
        return f"duration={self.duration}, front={self.front}, decoder={self.decoder}"


@dataclass
class Synthesis:
    """A whole text's audio, with everything the app plots."""

    audio: np.ndarray
    sample_rate: int
    ids: np.ndarray
    phonemes: list[str]
    durations: np.ndarray
    z: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    sentences: int = 1

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def compute_seconds(self) -> float:
        return sum(self.timings.values())

    @property
    def rtf(self) -> float:
        return self.compute_seconds / max(self.seconds, 1e-9)

    @classmethod
    def of(cls, chunks: Iterable[Chunk], sample_rate: int) -> Synthesis:
        """The whole text from its stream (`Engine.stream`): the same audio `Engine.synthesize` makes."""
        timings = {stage: 0.0 for stage in STAGES}
        sentences: list[tuple[Utterance, Spoken]] = []
        for chunk in chunks:
            timings["text"] += chunk.text_seconds
            if chunk.spoken is not None:
                sentences.append((chunk.utterance, chunk.spoken))
                for k, v in chunk.spoken.timings.items():
                    timings[k] += v
        return cls(audio=np.concatenate([s.audio for _, s in sentences]).astype(np.float32), sample_rate=sample_rate,
                   ids=np.concatenate([s.ids for _, s in sentences]),
                   phonemes=[ph for u, _ in sentences for ph in u.phonemes],
                   durations=np.concatenate([s.durations for _, s in sentences]),
                   z=np.concatenate([s.z for _, s in sentences], axis=1), timings=timings, sentences=len(sentences))


@dataclass
class Chunk:
    """Audio as it is made: the next samples of the text, with the sentence they belong to. A
    sentence's last chunk also carries the sentence whole (`spoken`: ids, durations, z, audio, timings)."""

    audio: np.ndarray
    sentence: int
    utterance: Utterance
    spoken: Spoken | None = None
    text_seconds: float = 0.0  # phonemising this sentence (on its first chunk)


class Engine:
    """The teacher and (optionally) a student, with the text front end they share."""

    def __init__(self, teacher: PiperTeacher, student: Voice | None = None) -> None:
        self.teacher = teacher
        self.student = student
        self.sample_rate = teacher.spec.sample_rate

    @classmethod
    def load(cls, voice: str | Path | None = None, student: str | Path | None = None,
             threads: int | None = None, require_student: bool = False) -> Engine:
        """Default teacher + shipped student (on onnxruntime); the student is optional unless `require_student`."""
        teacher = PiperTeacher.load(voice, threads=threads)
        path = student_path(student)
        model = load_fast(path, threads) if (require_student or student or path.exists()) else None
        if threads and "torch" in sys.modules:  # a PyTorch student (ONNX export failed) or the caller's own
            sys.modules["torch"].set_num_threads(threads)
        return cls(teacher, model)

    def voice(self, side: Side) -> Voice:
        if side == "student":
            if self.student is None:
                raise CheckpointError("No student checkpoint is loaded; train one with `python -m kdtts distill`.")
            return self.student
        return self.teacher

    def run_ids(self, ids: np.ndarray, mix: Mix, scales: Scales | None = None,
                durations: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """One sentence: (durations, z, audio, timings). Given `durations` replace the duration module."""
        spoken = speak(ids, scales or self.teacher.default_scales, self.voice(mix.duration), self.voice(mix.front),
                       self.voice(mix.decoder), durations)
        return spoken.durations, spoken.z, spoken.audio, spoken.timings

    def stream(self, text: str, mix: Mix = Mix(), scales: Scales | None = None,
               windows: Windows | None = None) -> Iterator[Chunk]:
        """`synthesize` as it is made: each sentence is phonemised when its turn comes, and the student's
        decoder is run window by window (kdtts.streaming), so the first chunk comes after the first
        sentence's durations, z and first window; the teacher's come a sentence at a time. The chunks'
        audio, joined, is `synthesize`'s. TextError for bad input, before any audio."""
        scales = scales or self.teacher.default_scales
        voices = self.voice(mix.duration), self.voice(mix.front), self.voice(mix.decoder)
        utterances = self.teacher.phonemizer.stream(text)
        for k in itertools.count():
            start = time.perf_counter()
            utterance = next(utterances, None)
            if utterance is None:
                return
            text_seconds = time.perf_counter() - start
            ids = np.asarray(utterance.ids, dtype=np.int64)
            for piece in speak_stream(ids, scales, *voices, windows=windows or Windows()):
                yield Chunk(piece.audio, k, utterance, piece.spoken, text_seconds)
                text_seconds = 0.0

    def synthesize(self, text: str, mix: Mix = Mix(), scales: Scales | None = None) -> Synthesis:
        """Text (validated; TextError for bad input) to audio, sentence by sentence."""
        start = time.perf_counter()
        utterances = self.teacher.phonemizer(text)
        timings = {stage: 0.0 for stage in STAGES}
        timings["text"] = time.perf_counter() - start
        parts = []
        for utterance in utterances:
            ids = np.asarray(utterance.ids, dtype=np.int64)
            durations, z, audio, t = self.run_ids(ids, mix, scales)
            for k, v in t.items():
                timings[k] += v
            parts.append((ids, durations, z, audio, utterance.phonemes))
        return Synthesis(
            audio=np.concatenate([p[3] for p in parts]).astype(np.float32),
            sample_rate=self.sample_rate,
            ids=np.concatenate([p[0] for p in parts]),
            phonemes=[ph for p in parts for ph in p[4]],
            durations=np.concatenate([p[1] for p in parts]),
            z=np.concatenate([p[2] for p in parts], axis=1),
            timings=timings,
            sentences=len(parts),
        )
