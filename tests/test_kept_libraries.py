"""Kept libraries replaced kdtts's hand-written numerics (issue 24): each agrees with the formula it replaced,
inlined here once, on small fixtures."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio

from kdtts.evaluate import asr, dnsmos, fidelity, stats
from kdtts.evaluate.griffinlim import griffin_lim_from_mel


def old_freqt(c: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """kdtts's SPTK freqt recursion (Oppenheim & Johnson 1972), as it was."""
    g = np.zeros(order + 1)
    for i in range(len(c) - 1, -1, -1):
        d = g.copy()
        g[0] = c[i] + alpha * d[0]
        g[1] = (1 - alpha * alpha) * d[0] + alpha * d[1]
        for j in range(2, order + 1):
            g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])
    return g


def old_sp2mc(power: np.ndarray, order: int, alpha: float) -> np.ndarray:
    c = np.fft.irfft(np.log(power))[: len(power)]
    c[0] /= 2
    c[-1] /= 2
    return old_freqt(c, order, alpha)


def test_pysptk_mel_cepstrum_agrees_with_the_hand_written_one():
    rate = 22050
    t = np.arange(rate // 2) / rate
    vowel = sum(0.3 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 9))
    vowel = vowel + 0.003 * np.random.default_rng(0).standard_normal(len(t))
    envelope = fidelity.world_envelope(vowel, rate)[::10]
    new = fidelity.mel_cepstrum(vowel, rate)[::10]
    old = np.stack([old_sp2mc(frame, 24, 0.455) for frame in envelope])
    np.testing.assert_allclose(new, old, atol=1e-9)


def test_all_pass_alpha_of_other_rates_agrees_with_the_hand_written_fit():
    def old_alpha(sample_rate: int) -> float:  # least-squares fit of the all-pass phase to the mel scale
        n = 1000
        mel = np.log1p((sample_rate / 2.0) / n * np.arange(n) / 1000.0)
        omega = np.pi / n * np.arange(n)
        alphas = np.arange(0.0, 1.0, 0.001)[:, None]
        warped = np.arctan2((1 - alphas ** 2) * np.sin(omega), (1 + alphas ** 2) * np.cos(omega) - 2 * alphas)
        return float(np.round(alphas[np.argmin(((warped / warped[:, -1:] - mel / mel[-1]) ** 2).mean(1)), 0], 3))

    for rate in (11025, 32000, 96000):
        assert fidelity.all_pass_alpha(rate) == pytest.approx(old_alpha(rate), abs=1e-9)


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
def test_dnsmos_mel_filters_are_torchaudios_slaney_bank_where_the_grids_coincide():
    """torchaudio's melscale_fbanks puts FFT bins on linspace(0, sr/2, n_freqs); librosa (what DNSMOS's P.808
    model was trained on) at k * sr / n_fft. For DNSMOS's odd n_fft = 321 they differ (bins 49.84 Hz apart, not
    50), which moves P.808 by +0.09 to +0.17 on teacher sentences, so kdtts keeps librosa's bank; on an even
    n_fft the two grids coincide and so do the banks."""
    ours = dnsmos._mel_filters(16000, 320)
    theirs = torchaudio.functional.melscale_fbanks(161, 0.0, 8000.0, 120, 16000, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(ours, theirs.numpy().T, atol=1e-6)


def old_edit_distance(ref: list, hyp: list) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def test_jiwer_error_counts_agree_with_the_hand_written_levenshtein():
    rng = np.random.default_rng(0)
    vocabulary = "the cat sat on a mat it is raining again".split()
    for _ in range(50):
        ref = " ".join(rng.choice(vocabulary, rng.integers(1, 12)))
        hyp = " ".join(rng.choice(vocabulary, rng.integers(0, 12)))
        words, chars = asr.error_counts(ref, hyp, "word"), asr.error_counts(ref, hyp, "char")
        assert words == (old_edit_distance(ref.split(), hyp.split()), len(ref.split()))
        assert chars == (old_edit_distance(list(ref), list(hyp)), len(ref))


def test_scipy_wilson_interval_agrees_with_the_hand_written_one():
    from kdtts.ui.votes import wilson

    def old_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
        p, denom = k / n, 1 + z * z / n
        centre, half = (p + z * z / (2 * n)) / denom, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return max(0.0, centre - half), min(1.0, centre + half)

    for n in (1, 2, 7, 40, 263):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            assert wilson(k, n) == pytest.approx(old_wilson(k, n), abs=1e-9)


def test_scipy_paired_bootstrap_agrees_with_the_hand_written_percentile_one():
    """The old benchmarks/paired.py: resample sentences, mean difference, 2.5 / 97.5 percentiles."""
    rng = np.random.default_rng(3)
    a = rng.normal(3.9, 0.2, 40)
    b = a + rng.normal(0.03, 0.05, 40)
    d = b - a
    means = d[np.random.default_rng(0).integers(0, len(d), (5000, len(d)))].mean(1)
    old_low, old_high = np.percentile(means, [2.5, 97.5])
    new = stats.interval(stats.mean_difference, a, b)
    assert new.value == pytest.approx(d.mean())
    width = old_high - old_low
    assert new.low == pytest.approx(old_low, abs=0.1 * width) and new.high == pytest.approx(old_high, abs=0.1 * width)


def test_the_tacotron_vocoder_is_the_one_griffin_lim():
    """The Tacotron teacher's Griffin-Lim is the evaluation's; against the old copy (random phase start, no
    alignment shift) it is the same signal 128 samples (half a hop) later, deterministic."""
    from kdtts.audio import log_mel
    from kdtts.teachers.tacotron import GriffinLimVocoder
    from tests.conftest import sine

    tone = sine(1.0, freq=300.0) + 0.3 * sine(1.0, freq=620.0)
    mel = log_mel(tone)[None]
    new = GriffinLimVocoder(n_iter=16)(mel)[0][0].numpy()
    np.testing.assert_array_equal(new, griffin_lim_from_mel(mel, mel.shape[-1] * 256, n_iter=16)[0])
    inverse = torchaudio.transforms.InverseMelScale(n_stft=513, n_mels=80, sample_rate=22050, f_min=0.0,
                                                    f_max=8000.0, mel_scale="slaney", norm="slaney")
    old_gl = torchaudio.transforms.GriffinLim(n_fft=1024, hop_length=256, power=1.0, n_iter=16, rand_init=False)
    padded = torch.nn.functional.pad(mel, (0, 1), value=float(np.log(1e-5)))
    old = old_gl(inverse(torch.exp(padded)))[..., : mel.shape[-1] * 256][0].numpy()
    interior = slice(2048, len(new) - 2048)
    assert np.corrcoef(new[interior], np.roll(old, 128)[interior])[0, 1] > 0.999
