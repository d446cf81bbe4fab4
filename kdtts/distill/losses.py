"""Distillation criteria, one per student module.

The decoder's teacher is a deterministic function of z, so distilling it is regression on the
waveform's spectra: multi-resolution STFT (spectral convergence + log magnitude) and log-mel L1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdtts.audio import AudioSpec, log_mel


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over three STFT resolutions."""

    def __init__(self, resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))) -> None:
        super().__init__()
        self.resolutions = resolutions
        for n_fft, _ in resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = predicted.new_zeros(())
        for n_fft, hop in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            p = torch.stft(predicted, n_fft, hop, window=window, return_complex=True).abs().clamp(min=1e-5)
            t = torch.stft(target, n_fft, hop, window=window, return_complex=True).abs().clamp(min=1e-5)
            convergence = torch.linalg.norm(t - p, dim=(-2, -1)) / torch.linalg.norm(t, dim=(-2, -1)).clamp(min=1e-5)
            loss = loss + convergence.mean() + F.l1_loss(torch.log(p), torch.log(t))
        return loss / len(self.resolutions)


class PhaseAwareLoss(nn.Module):
    """Base of the terms that see phase, which magnitude losses cannot: both signals' complex STFT at the
    student's own resolution. Meaningful only for sample-aligned targets (a deterministic teacher's output for
    the same input), where the right phase exists."""

    def __init__(self, n_fft: int = 1024, hop: int = 256) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectra(self, predicted: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True)
                     for x in (predicted, target))


class ComplexSTFTLoss(PhaseAwareLoss):
    """Mean |S_pred - S_target| over complex spectra, over the target's mean magnitude."""

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = self.spectra(predicted, target)
        return (p - t).abs().mean() / t.abs().mean().clamp(min=1e-5)


def wrapped_phase_errors(predicted: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Complex spectra [..., F, T] -> magnitude-weighted mean wrapped errors (each in [0, pi]) of the
    instantaneous phase, of its derivative along frequency (group delay) and along time (instantaneous
    frequency). Weighted by the target's magnitude: the phase of a bin with no energy is neither audible nor
    predictable. Unrelated signals score pi / 2 in instantaneous phase and about 1.1 in the other two (the
    window and the frames' overlap correlate neighbouring bins within each signal)."""
    weight = target.abs()

    def wrapped(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # angle(a conj(b)) is the phase difference already wrapped into [-pi, pi]
        return (torch.angle(a * b.conj() + 1e-9).abs() * w).sum() / w.sum().clamp(min=1e-5)

    def along(x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.narrow(dim, 1, x.shape[dim] - 1) * x.narrow(dim, 0, x.shape[dim] - 1).conj()

    def pair_weight(dim: int) -> torch.Tensor:
        return torch.sqrt(weight.narrow(dim, 1, weight.shape[dim] - 1) * weight.narrow(dim, 0, weight.shape[dim] - 1))

    return (wrapped(predicted, target, weight), wrapped(along(predicted, -2), along(target, -2), pair_weight(-2)),
            wrapped(along(predicted, -1), along(target, -1), pair_weight(-1)))


class AntiWrappingPhaseLoss(PhaseAwareLoss):
    """Phase error that ignores magnitude, after APNet (Ai & Ling, 2023): the mean of the three
    `wrapped_phase_errors`. Unlike the complex-spectrum term, it cannot lower its value by shrinking the
    magnitude where the phase is uncertain."""

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(wrapped_phase_errors(*self.spectra(predicted, target))) / 3


class WaveformCriterion(nn.Module):
    """Decoder criterion: MR-STFT + weighted log-mel L1 (the mel term is what listeners track best), and
    optionally the phase-aware complex-spectrum term and the anti-wrapping phase term."""

    def __init__(self, mel_weight: float = 1.0, mel: AudioSpec = AudioSpec(), phase_weight: float = 0.0,
                 wrapped_phase_weight: float = 0.0) -> None:
        super().__init__()
        self.stft = MultiResolutionSTFTLoss()
        self.mel_weight, self.phase_weight, self.wrapped_phase_weight = mel_weight, phase_weight, wrapped_phase_weight
        self.mel = mel
        self.phase = ComplexSTFTLoss(mel.n_fft, mel.hop_length)
        self.wrapped_phase = AntiWrappingPhaseLoss(mel.n_fft, mel.hop_length)

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mel = F.l1_loss(log_mel(predicted, self.mel), log_mel(target, self.mel))
        loss = self.stft(predicted, target) + self.mel_weight * mel
        if self.phase_weight:
            loss = loss + self.phase_weight * self.phase(predicted, target)
        if self.wrapped_phase_weight:
            loss = loss + self.wrapped_phase_weight * self.wrapped_phase(predicted, target)
        return loss


def masked_l1(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over valid positions only; mask broadcasts over channels."""
    mask = mask.expand_as(predicted)
    return (torch.abs(predicted - target) * mask).sum() / mask.sum().clamp(min=1)


def variance_match_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between the predicted and the target latent's standard deviation over time, per utterance and channel,
    of the values and of their frame-to-frame differences (masked).

    An L1- or L2-trained front predicts the conditional mean of z, whose spread over a sentence is smaller than
    the teacher's: the channels that vary most (where the teacher keeps its prosody) shrink most, to x0.5-0.8
    in the v4 front. This is the classic over-smoothing of statistical parametric synthesis, and its classic cure
    is to match the global variance (Toda & Tokuda, 2007) as a training term rather than as a post-filter.
    Matching the differences' spread too keeps the contour's movement, not only its range."""
    def spread(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        n = m.sum(-1).clamp(min=2)
        mean = (x * m).sum(-1) / n
        return torch.sqrt((((x - mean[..., None]) ** 2) * m).sum(-1) / (n - 1) + 1e-6)

    mask = mask.float()
    delta_mask = mask[..., 1:] * mask[..., :-1]
    values = torch.abs(spread(predicted, mask) - spread(target, mask)).mean()
    deltas = torch.abs(spread(predicted.diff(dim=-1), delta_mask) - spread(target.diff(dim=-1), delta_mask)).mean()
    return values + deltas


def duration_loss(log_predicted: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor,
                  total_weight: float = 10.0) -> torch.Tensor:
    """Log-domain MSE per phoneme plus the squared log-ratio of each sequence's total length.

    Log-MSE alone (where a frame too many matters more for short phonemes than long ones) predicts
    E[log d], whose exponential is the geometric mean: below the mean whenever the teacher's
    durations vary for the same context, so a student trained on it alone speaks fast. The total term
    compares sums in the linear domain, which pins the speaking rate to the teacher's. The two terms
    pull a common log-offset b toward 0 and toward the bias c with weights 1 and w, so the optimum is
    b = w c / (1 + w): w = 10 removes about 90 % of the bias while the per-phoneme term keeps the shape.
    """
    target = torch.log(durations.float().clamp(min=1))
    mask = mask.squeeze(1)
    per_phoneme = (((log_predicted - target) ** 2) * mask).sum() / mask.sum().clamp(min=1)
    valid = mask.sum(dim=1) > 0
    predicted_total = (torch.exp(log_predicted) * mask).sum(dim=1)[valid]
    target_total = (durations.float() * mask).sum(dim=1)[valid]
    total = ((torch.log(predicted_total.clamp(min=1e-3)) - torch.log(target_total.clamp(min=1))) ** 2).mean()
    return per_phoneme + total_weight * total
