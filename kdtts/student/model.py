"""The whole student: three modules with the teacher's numpy interface (durations, latent, decode)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdtts.audio import AudioSpec
from kdtts.student.modules import DecoderStudent, DurationStudent, FrontStudent, StudentConfig
from kdtts.voice import Scales


class StudentTTS(nn.Module):
    """Duration + front + decoder students. As a `Voice` (numpy in and out) it runs on PyTorch; for
    speed, kdtts.student.onnx_student runs the same checkpoint on onnxruntime."""

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        self.duration = DurationStudent(self.config)
        self.front = FrontStudent(self.config)
        self.decoder = DecoderStudent(self.config)
        self.spec = AudioSpec(sample_rate=self.config.sample_rate, hop_length=self.config.hop_length)
        self.info: dict = {}
        self.path: Path | None = None
        self.eval()

    @property
    def receptive_field(self) -> int:
        """Frames of z either side that a frame's audio depends on (kdtts.streaming's window overlap)."""
        from kdtts.streaming import receptive_field

        return receptive_field(self.config)

    @property
    def hop_length(self) -> int:
        return self.spec.hop_length

    def count_parameters(self) -> dict[str, int]:
        parts = {name: sum(p.numel() for p in getattr(self, name).parameters())
                 for name in ("duration", "front", "decoder")}
        return {**parts, "total": sum(parts.values())}

    # -- the Voice interface: numpy, one utterance ---------------------------------------------
    @torch.inference_mode()
    def durations(self, ids: np.ndarray, scales: Scales) -> np.ndarray:
        ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
        log_d = self.duration(ids_t, torch.ones(1, 1, ids_t.shape[1]))
        return DurationStudent.to_frames(log_d, scales.length)[0].numpy()

    @torch.inference_mode()
    def latent(self, ids: np.ndarray, durations: np.ndarray, scales: Scales) -> np.ndarray:
        ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
        d = torch.as_tensor(np.asarray(durations, dtype=np.int64))[None]
        frames = int(d.sum())
        z = self.front(ids_t, d, torch.ones(1, 1, ids_t.shape[1]), torch.ones(1, 1, frames))
        return z[0].numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        audio = self.decoder(torch.as_tensor(np.asarray(z, dtype=np.float32))[None])
        return audio[0].clamp(-1.0, 1.0).numpy()
