"""The student vocoder: log-mel -> waveform, the decoder student's ConvNeXt + inverse-STFT design with a
mel input (80 channels) instead of z (192). Distilled from HiFi-GAN V1 (kdtts.teachers.hifigan).

Like HiFi-GAN it reads `kdtts.audio.log_mel` frames, so it can stand in for HiFi-GAN on any mel: the
Piper teacher's audio re-analysed, or a Tacotron 2 output.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdtts.audio import AudioSpec
from kdtts.student.modules import DecoderStudent, StudentConfig


@dataclass
class VocoderConfig:
    """Architecture; stored in every vocoder checkpoint's JSON so a file rebuilds its own model."""

    n_mels: int = AudioSpec.n_mels
    sample_rate: int = AudioSpec.sample_rate   # set from the vocoder teacher's AudioSpec when distilling
    hop_length: int = AudioSpec.hop_length
    n_fft: int = 1024
    decoder_channels: int = 128
    decoder_layers: int = 6
    decoder_mult: int = 3
    decoder_repeats: int = 1

    def decoder_config(self) -> StudentConfig:
        return StudentConfig(z_channels=self.n_mels, sample_rate=self.sample_rate, hop_length=self.hop_length,
                             n_fft=self.n_fft, decoder_channels=self.decoder_channels,
                             decoder_layers=self.decoder_layers, decoder_mult=self.decoder_mult,
                             decoder_repeats=self.decoder_repeats)


class VocoderStudent(nn.Module):
    """One module, `decoder`, so the decoder's trainers (regression and adversarial) train it unchanged."""

    kind = "vocoder"

    def __init__(self, config: VocoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or VocoderConfig()
        self.decoder = DecoderStudent(self.config.decoder_config())
        self.spec = AudioSpec(sample_rate=self.config.sample_rate, hop_length=self.config.hop_length,
                              n_fft=self.config.n_fft, n_mels=self.config.n_mels)
        self.info: dict = {}
        self.path: Path | None = None
        self.last_seconds = 0.0
        self.eval()

    @property
    def hop_length(self) -> int:
        return self.spec.hop_length

    def count_parameters(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.decoder.parameters())
        return {"decoder": total, "total": total}

    def init_from_decoder(self, decoder: DecoderStudent) -> int:
        """Copy every tensor of a TTS decoder student whose shape fits (all but the input conv): its body
        already turns frame-rate features into this voice's waveform. Returns how many were copied."""
        own = self.decoder.state_dict()
        fitting = {k: v for k, v in decoder.state_dict().items() if k in own and own[k].shape == v.shape}
        self.decoder.load_state_dict({**own, **fitting})
        return len(fitting)

    @torch.inference_mode()
    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """Natural-log mel [80, T] -> float32 audio [T * hop]."""
        start = time.perf_counter()
        audio = self.decoder(torch.as_tensor(np.asarray(mel, dtype=np.float32))[None])[0].clamp(-1.0, 1.0).numpy()
        self.last_seconds = time.perf_counter() - start
        return audio
