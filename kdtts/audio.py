"""Audio utilities: log-mel spectrograms aligned with the teacher's latent frames, WAV I/O, resampling, loudness.

torch and torchaudio are imported where they are used: AudioSpec and WAV writing are on the command
line's start-up path, which must not pay for them."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    import torch
    import torchaudio


@dataclass(frozen=True)
class AudioSpec:
    """A voice's audio: sample rate, frame hop (mel frame t lines up with latent frame t) and the mel
    settings every comparison uses. The defaults are the default teacher's; any other voice's spec
    comes from its own config (`PiperTeacher.spec`) and flows to the student, the cache and the losses."""

    sample_rate: int = 22050
    hop_length: int = 256
    n_fft: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    floor: float = 1e-5  # log floor: silence cannot dominate distances


@lru_cache(maxsize=8)
def _mel_transform(config: AudioSpec) -> torchaudio.transforms.MelSpectrogram:
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        n_mels=config.n_mels, f_min=config.f_min, f_max=config.f_max, power=1.0,
        center=False, norm="slaney", mel_scale="slaney")


def log_mel(audio: torch.Tensor | np.ndarray, config: AudioSpec = AudioSpec()) -> torch.Tensor:
    """Natural-log mel magnitudes [..., n_mels, frames]; frames = len(audio) // hop exactly."""
    import torch

    wav = torch.as_tensor(np.asarray(audio) if not torch.is_tensor(audio) else audio, dtype=torch.float32)
    pad = (config.n_fft - config.hop_length) // 2
    wav = wav.unsqueeze(0) if wav.dim() == 1 else wav
    if wav.shape[-1] < config.hop_length:  # not one whole frame
        mel = wav.new_full((*wav.shape[:-1], config.n_mels, 0), np.log(config.floor))
        return mel.squeeze(0) if torch.as_tensor(audio).dim() == 1 else mel
    # reflect needs pad < length; clips of a few frames fall back to zero padding
    wav = torch.nn.functional.pad(wav, (pad, pad), mode="reflect" if wav.shape[-1] > pad else "constant")
    transform = _mel_transform(config).to(wav.device)
    mel = transform(wav)
    mel = torch.log(torch.clamp(mel, min=config.floor))
    return mel.squeeze(0) if torch.as_tensor(audio).dim() == 1 else mel


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM WAV; float input in [-1, 1] is clipped, not wrapped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


LOUDNESS_TARGET = -23.0
"""Integrated loudness (ITU-R BS.1770, LUFS) clips are matched to before two are compared (EBU R 128's level)."""


def normalise_loudness(audio: np.ndarray, sample_rate: int, target: float = LOUDNESS_TARGET) -> np.ndarray:
    """`audio` scaled to `target` LUFS (silence is returned as it is). A level difference alone biases a
    listener's preference, so clips are matched before they meet in a blind test."""
    level = integrated_loudness(audio, sample_rate)
    if not np.isfinite(level):
        return np.asarray(audio, dtype=np.float32)
    return (np.asarray(audio, dtype=np.float32) * 10 ** ((target - level) / 20)).astype(np.float32)


def pcm16(audio: np.ndarray, sample_rate: int) -> bytes:
    """Headerless 16-bit little-endian PCM (Piper's `--output-raw`), converted exactly as write_wav's samples."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), sample_rate, format="RAW",
             subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


def read_wav(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 audio, resampled to `sample_rate` when given."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sample_rate and rate != sample_rate:
        audio, rate = resample(audio, rate, sample_rate), sample_rate
    return audio, rate


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if orig_rate == new_rate:
        return np.asarray(audio, dtype=np.float32)
    import torch
    import torchaudio

    wav = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    return torchaudio.functional.resample(wav, orig_rate, new_rate).numpy()


LOUDNESS_BLOCK_SECONDS = 0.4  # BS.1770's gating block: shorter clips have no integrated loudness


def integrated_loudness(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> float:
    """ITU-R BS.1770-4 integrated loudness (K-weighted, gated; pyloudnorm) in LUFS; NaN for clips shorter than
    one 400 ms block or silent ones. Scaling the signal by g moves it by 20 log10(g) LU (0.5 -> -6.02 LU)."""
    import pyloudnorm

    x = np.asarray(audio, dtype=np.float64)
    if len(x) < LOUDNESS_BLOCK_SECONDS * sample_rate:
        return float("nan")
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return value if math.isfinite(value) else float("nan")
