"""The whole student: three modules with the teacher's numpy interface (durations, latent, decode)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kdtts.student.modules import DecoderStudent, DurationStudent, FrontStudent, StudentConfig


@dataclass
class StudentOutput:
    ids: np.ndarray
    durations: np.ndarray
    z: np.ndarray
    audio: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


class StudentTTS(nn.Module):
    """Duration + front + decoder students. Inference methods take and return numpy, like the teacher."""

    kind = "student"

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        self.duration = DurationStudent(self.config)
        self.front = FrontStudent(self.config)
        self.decoder = DecoderStudent(self.config)
        self.sample_rate = self.config.sample_rate
        self.hop_length = self.config.hop_length
        self.runtime = None  # an OnnxStudent once kdtts.student.export.accelerate() has run
        self.eval()

    def count_parameters(self) -> dict[str, int]:
        parts = {name: sum(p.numel() for p in getattr(self, name).parameters())
                 for name in ("duration", "front", "decoder")}
        return {**parts, "total": sum(parts.values())}

    # -- numpy interface, one utterance ----------------------------------------------------------
    @torch.inference_mode()
    def durations(self, ids: np.ndarray, length_scale: float = 1.0) -> np.ndarray:
        if self.runtime is not None:
            return self.runtime.durations(ids, length_scale)
        ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
        log_d = self.duration(ids_t, torch.ones(1, 1, ids_t.shape[1]))
        return DurationStudent.to_frames(log_d, length_scale)[0].numpy()

    @torch.inference_mode()
    def latent(self, ids: np.ndarray, durations: np.ndarray) -> np.ndarray:
        if self.runtime is not None:
            return self.runtime.latent(ids, durations)
        ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
        d = torch.as_tensor(np.asarray(durations, dtype=np.int64))[None]
        frames = int(d.sum())
        z = self.front(ids_t, d, torch.ones(1, 1, ids_t.shape[1]), torch.ones(1, 1, frames))
        return z[0].numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        if self.runtime is not None:
            return self.runtime.decode(z)
        audio = self.decoder(torch.as_tensor(np.asarray(z, dtype=np.float32))[None])
        return audio[0].clamp(-1.0, 1.0).numpy()

    def run_ids(self, ids: np.ndarray, length_scale: float = 1.0) -> StudentOutput:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        durations = self.durations(ids, length_scale)
        timings["duration"] = time.perf_counter() - start
        start = time.perf_counter()
        z = self.latent(ids, durations)
        timings["latent"] = time.perf_counter() - start
        start = time.perf_counter()
        audio = self.decode(z)
        timings["decoder"] = time.perf_counter() - start
        return StudentOutput(np.asarray(ids), durations, z, audio, timings)
