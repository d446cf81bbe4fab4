"""The decoder's adversarial stage and the duration bias fix, on toy data (no teacher needed)."""
from __future__ import annotations

import math

import torch

from kdtts.distill.adversarial import AdversarialConfig, adversarial_step
from kdtts.distill.discriminators import Discriminators, discriminator_loss
from kdtts.distill.losses import WaveformCriterion, duration_loss
from kdtts.student.modules import DecoderStudent, StudentConfig


def _fit_per_symbol_durations(total_weight: float) -> float:
    """Fit one log-duration per symbol to noisy lognormal targets; return predicted/target total length."""
    torch.manual_seed(0)
    symbols, sigma = 8, 0.6
    base = torch.linspace(1.0, 2.5, symbols)                       # log-frames per symbol
    ids = torch.randint(0, symbols, (64, 40))
    durations = torch.exp(base[ids] + sigma * torch.randn(ids.shape)).round().clamp(min=1).long()
    mask = torch.ones(64, 1, 40)
    log_d = torch.zeros(symbols, requires_grad=True)
    optimizer = torch.optim.Adam([log_d], lr=0.05)
    for _ in range(400):
        loss = duration_loss(log_d[ids], durations, mask, total_weight=total_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(torch.exp(log_d.detach())[ids].sum() / durations.sum())


def test_log_mse_alone_speaks_fast_and_the_total_term_fixes_it():
    biased = _fit_per_symbol_durations(total_weight=0.0)
    fixed = _fit_per_symbol_durations(total_weight=10.0)
    assert biased < 0.9                      # geometric mean: about exp(-sigma^2 / 2) = 0.84
    assert abs(fixed - 1.0) < 0.03           # within 3 % of the teacher's total length


def test_gan_step_lowers_the_discriminator_loss_and_keeps_shapes():
    torch.manual_seed(0)
    cfg = StudentConfig(decoder_channels=32, decoder_layers=1)
    decoder, discriminators = DecoderStudent(cfg), Discriminators()
    opt_g = torch.optim.AdamW(decoder.parameters(), 1e-4)
    opt_d = torch.optim.AdamW(discriminators.parameters(), 2e-4)
    z = torch.randn(2, 192, 16)
    t = torch.arange(16 * 256) / 22050
    audio = 0.3 * torch.sin(2 * math.pi * 140 * t).repeat(2, 1)   # a voiced "teacher" tone

    def d_loss() -> float:
        with torch.no_grad():
            return float(discriminator_loss(discriminators(audio), discriminators(decoder(z))))

    before = d_loss()
    for _ in range(15):
        parts = adversarial_step(decoder, discriminators, opt_g, opt_d, WaveformCriterion(), z, audio,
                                 AdversarialConfig())
    assert d_loss() < before
    assert set(parts) == {"d", "g_adv", "g_fm", "g_rec"} and all(math.isfinite(v) for v in parts.values())
    assert decoder(z).shape == audio.shape
    for score, features in discriminators(audio):
        assert score.shape[0] == 2 and all(f.shape[0] == 2 for f in features)
