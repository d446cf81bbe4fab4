"""Griffin-Lim from an 80-band log-mel, kdtts's one implementation: the "student with no neural vocoder"
baseline of the evaluation and the Tacotron 2 teacher's weight-free vocoder."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from kdtts.audio import AudioSpec, log_mel

MIN_FRAMES = 5
"""GriffinLim's STFT reflect-pads n_fft / 2 samples: shorter mels are padded with silent frames first."""


@lru_cache(maxsize=4)
def _transforms(config: AudioSpec, n_iter: int):
    inverse_mel = torchaudio.transforms.InverseMelScale(
        n_stft=config.n_fft // 2 + 1, n_mels=config.n_mels, sample_rate=config.sample_rate,
        f_min=config.f_min, f_max=config.f_max, norm="slaney", mel_scale="slaney")
    griffin_lim = torchaudio.transforms.GriffinLim(
        n_fft=config.n_fft, hop_length=config.hop_length, power=1.0, n_iter=n_iter, rand_init=False)
    return inverse_mel, griffin_lim


def griffin_lim_from_mel(mel: torch.Tensor | np.ndarray, length: int | None = None,
                         config: AudioSpec = AudioSpec(), n_iter: int = 32) -> np.ndarray:
    """Audio [..., samples] from natural-log mels [..., n_mels, frames] (kdtts.audio.log_mel): least-squares
    inverse mel filter bank to a linear magnitude spectrogram, then `n_iter` Griffin-Lim iterations
    (deterministic zero-phase start). Output is shifted so sample n lines up with the mel's input sample n, and
    cut/padded to `length` (default: what the frames give)."""
    inverse_mel, griffin_lim = _transforms(config, n_iter)
    mel = torch.as_tensor(mel, dtype=torch.float32)
    if mel.shape[-1] < MIN_FRAMES:
        mel = torch.nn.functional.pad(mel, (0, MIN_FRAMES - mel.shape[-1]), value=float(np.log(config.floor)))
    with torch.inference_mode():
        magnitude = inverse_mel(torch.exp(mel)).clamp_min(0.0)
        audio = griffin_lim(magnitude).numpy()
    # log_mel frames are centred at t*hop + (n_fft/2 - pad) = t*hop + hop/2; GriffinLim's at t*hop
    shift = config.n_fft // 2 - (config.n_fft - config.hop_length) // 2
    audio = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(shift, 0)])
    length = length or audio.shape[-1]
    end = max(length - audio.shape[-1], 0)
    audio = np.pad(audio[..., :length], [(0, 0)] * (audio.ndim - 1) + [(0, end)])
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def griffin_lim(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate, n_iter: int = 32) -> np.ndarray:
    """The baseline for one utterance: teacher audio -> log-mel -> Griffin-Lim audio of the same length."""
    config = AudioSpec(sample_rate=sample_rate)
    return griffin_lim_from_mel(log_mel(audio, config), len(audio), config, n_iter)
