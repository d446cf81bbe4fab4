"""Small discriminators for the decoder's adversarial stage (HiFi-GAN / Vocos family, scaled down).

Regression on spectra alone leaves a student decoder's harmonics blurred; a discriminator that looks
at the waveform per period (pitch structure) and at spectrograms per resolution (harmonic detail)
penalises exactly that blur. Both return, per sub-discriminator, a score map and the feature maps
that feature matching compares.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Features = list[torch.Tensor]


def _scores(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
    """Leaky-ReLU conv stack, then the score map; every layer's output is a feature for matching."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Audio folded into [T / p, p] columns: 2-D convs along time see one phase of period p."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else (1, 1)
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), stride, padding=(2, 0))))
            c_in = c
        self.layers = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, Features]:
        """audio [B, samples] -> (scores [B, n], features)."""
        x = audio.unsqueeze(1)
        pad = (-x.shape[-1]) % self.period
        x = F.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        return _scores(self.layers, self.post, x.view(x.shape[0], 1, -1, self.period))


class SpectrogramDiscriminator(nn.Module):
    """Log-magnitude STFT at one resolution -> 2-D convs over (frequency, time)."""

    def __init__(self, n_fft: int, channels: int = 16, layers: int = 4) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # every conv but the last two halves the frequency axis: these convs are most of a GAN step's
        # CPU time, and 16 channels at half resolution cost about an eighth of Vocos' 32 at full
        convs = [weight_norm(nn.Conv2d(1, channels, (3, 9), stride=(1, 2), padding=(1, 4)))]
        convs += [weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)))
                  for _ in range(layers - 2)]
        convs.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, Features]:
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        return _scores(self.convs, self.post, torch.log(spec.clamp(min=1e-5)).transpose(1, 2).unsqueeze(1))


class Discriminators(nn.Module):
    """Multi-period (2, 3, 5, 7, 11) + multi-resolution spectrogram (512, 1024, 2048) discriminators."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11),
                 resolutions: tuple[int, ...] = (512, 1024, 2048)) -> None:
        super().__init__()
        self.parts = nn.ModuleList([PeriodDiscriminator(p) for p in periods] +
                                   [SpectrogramDiscriminator(n) for n in resolutions])

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, Features]]:
        return [part(audio) for part in self.parts]


def discriminator_loss(real: list[tuple[torch.Tensor, Features]], fake: list[tuple[torch.Tensor, Features]]
                       ) -> torch.Tensor:
    """Least-squares GAN: real scores toward 1, generated toward 0."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for (r, _), (f, _) in zip(real, fake))


def generator_loss(fake: list[tuple[torch.Tensor, Features]]) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f, _ in fake)


def feature_matching_loss(real: list[tuple[torch.Tensor, Features]], fake: list[tuple[torch.Tensor, Features]]
                          ) -> torch.Tensor:
    """L1 between the discriminators' inner features for the teacher's and the student's audio."""
    return sum(F.l1_loss(f, r.detach()) for (_, rf), (_, ff) in zip(real, fake) for r, f in zip(rf, ff))
