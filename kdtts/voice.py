"""One shape for every voice: the three modules a text-to-speech model is cut into, and the one path
that runs any mix of them.

    text -> ids (kdtts.text) -> durations [N] -> latent z [C, T] -> audio [T * hop]

The Piper teacher (kdtts.teachers.piper), the PyTorch student (kdtts.student.model) and the ONNX
student (kdtts.student.onnx_student) all implement `Voice`; because each module takes the others'
outputs, the engine can run teacher durations with a student decoder, or any other mix.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from kdtts.audio import AudioSpec

Side = Literal["teacher", "student"]
"""Who runs a module, or a whole model: every family has a teacher side and a student side."""


@dataclass(frozen=True)
class Scales:
    """VITS sampling scales; with both noises at 0 the teacher is deterministic (its 'mean').

    The noise scales are the KD "temperature" here; `length` stretches durations for any voice."""

    noise: float = 0.667
    length: float = 1.0
    noise_w: float = 0.8

    def deterministic(self) -> Scales:
        return replace(self, noise=0.0, noise_w=0.0)

    def at_temperature(self, temperature: float) -> Scales:
        """Both noises times `temperature` (the KD temperature: 0 = the mean, 1 = these scales' sampling)."""
        return replace(self, noise=self.noise * temperature, noise_w=self.noise_w * temperature)

    def array(self) -> np.ndarray:
        return np.array([self.noise, self.length, self.noise_w], dtype=np.float32)


class Voice(Protocol):
    """A module-wise voice. Numpy in and out, one utterance at a time."""

    spec: AudioSpec

    def durations(self, ids: np.ndarray, scales: Scales) -> np.ndarray:
        """int64 [N] phoneme ids -> int64 [N] frames per id (>= 1 for a student)."""

    def latent(self, ids: np.ndarray, durations: np.ndarray, scales: Scales) -> np.ndarray:
        """ids [N] + durations [N] (anyone's) -> float32 z [C, sum(durations)]."""

    def decode(self, z: np.ndarray) -> np.ndarray:
        """z [C, T] (anyone's) -> float32 audio [T * hop]."""


@dataclass
class Spoken:
    """One utterance through the three modules, with the seconds each took."""

    ids: np.ndarray
    durations: np.ndarray
    z: np.ndarray
    audio: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def speak(ids: np.ndarray, scales: Scales, duration: Voice, latent: Voice, decoder: Voice,
          durations: np.ndarray | None = None) -> Spoken:
    """Run each module on the voice given for it, timing each; given `durations` skip the first."""
    spoken = speak_latent(ids, scales, duration, latent, durations)
    start = time.perf_counter()
    spoken.audio = decoder.decode(spoken.z)
    spoken.timings["decoder"] = time.perf_counter() - start
    return spoken


def speak_latent(ids: np.ndarray, scales: Scales, duration: Voice, latent: Voice,
                 durations: np.ndarray | None = None) -> Spoken:
    """The first two modules, timed (`audio` left empty): the part a streaming decoder starts from."""
    ids = np.asarray(ids, dtype=np.int64)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if durations is None:
        durations = duration.durations(ids, scales)
    timings["duration"] = time.perf_counter() - start
    start = time.perf_counter()
    z = latent.latent(ids, durations, scales)
    timings["front"] = time.perf_counter() - start
    return Spoken(ids, np.asarray(durations, dtype=np.int64), z, np.zeros(0, dtype=np.float32), timings)
