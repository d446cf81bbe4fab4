"""The "student with no neural vocoder" baseline: the teacher's log-mel inverted by Griffin-Lim."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from kdtts.audio import AudioSpec, log_mel


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
    """Audio from an 80-band natural-log mel (kdtts.audio.log_mel): least-squares inverse mel filter bank
    to a linear magnitude spectrogram, then `n_iter` Griffin-Lim iterations (deterministic zero-phase
    start). Output is shifted so sample n lines up with the mel's input sample n, and cut/padded to `length`."""
    inverse_mel, griffin_lim = _transforms(config, n_iter)
    with torch.inference_mode():
        magnitude = inverse_mel(torch.exp(torch.as_tensor(mel, dtype=torch.float32))).clamp_min(0.0)
        audio = griffin_lim(magnitude).numpy()
    # log_mel frames are centred at t*hop + (n_fft/2 - pad) = t*hop + hop/2; GriffinLim's at t*hop
    shift = config.n_fft // 2 - (config.n_fft - config.hop_length) // 2
    audio = np.concatenate([np.zeros(shift, dtype=np.float32), audio])
    length = length or len(audio)
    audio = audio[:length] if len(audio) >= length else np.pad(audio, (0, length - len(audio)))
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def griffin_lim(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate, n_iter: int = 32) -> np.ndarray:
    """The baseline for one utterance: teacher audio -> log-mel -> Griffin-Lim audio of the same length."""
    config = AudioSpec(sample_rate=sample_rate)
    return griffin_lim_from_mel(log_mel(audio, config), len(audio), config, n_iter)
