"""Fidelity to the teacher: mel-cepstral distortion (dB) and F0 RMSE (Hz)."""
from __future__ import annotations

import math

import numpy as np
import scipy.fft

from kdtts.audio import MelConfig, log_mel
from kdtts.evaluate.optional import require

MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)
"""dB per unit of Euclidean distance between natural-log mel-cepstra (the usual MCD constant)."""


def mel_cepstrum(audio: np.ndarray, sample_rate: int = 22050, order: int = 24,
                 silence_db: float = 40.0) -> np.ndarray:
    """Mel-cepstra c1..c_order [frames, order] of the speech frames of `audio`.

    80-band natural-log mel magnitudes (kdtts.audio.log_mel, hop 256 at 22.05 kHz, floor 1e-5) -> DCT-II
    scaled by 1/n_mels, i.e. c_m ~ (2/pi) * integral of log|X(w_mel)| cos(m w_mel), the scaling of a
    mel-cepstrum. c0 (loudness) is dropped. Frames whose energy is more than `silence_db` below the
    utterance's loudest frame are dropped, so silence (and padding) cannot dominate the distance.
    """
    mel = log_mel(np.asarray(audio, dtype=np.float32), MelConfig(sample_rate=sample_rate)).numpy().T
    if len(mel) == 0:
        return np.zeros((0, order))
    ceps = scipy.fft.dct(mel, type=2, axis=1) / mel.shape[1]
    energy_db = 20.0 / math.log(10.0) * ceps[:, 0]  # c0 = mean log magnitude over the bands
    keep = energy_db >= energy_db.max() - silence_db
    return ceps[keep, 1:order + 1]


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost monotonic alignment (steps (1,0), (0,1), (1,1)) through a [N, M] cost matrix."""
    n, m = cost.shape
    acc = np.empty((n, m))
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        # best of (i-1, j) and (i-1, j-1), then the horizontal run within row i as a min-plus scan
        diag = np.concatenate(([np.inf], acc[i - 1, :-1]))
        tmp = cost[i] + np.minimum(acc[i - 1], diag)
        csum = np.cumsum(cost[i])
        acc[i] = csum + np.minimum.accumulate(tmp - csum)
    i, j, path = n - 1, m - 1, [(n - 1, m - 1)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            step = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
            i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
        path.append((i, j))
    return path[::-1]


def mcd_db(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = 22050, order: int = 24) -> float:
    """Mel-cepstral distortion in dB between two utterances, DTW-aligned; 0 for identical audio.

    MCD = (10 / ln 10) * sqrt(2 * sum_{m=1..order} (c_m - c'_m)^2), averaged over the frames of the
    DTW path between the speech frames of both (see `mel_cepstrum`: c1..c24 from an 80-band log-mel
    up to 8 kHz, silence below -40 dB of the loudest frame removed). Lower is better; a few dB is a
    close copy. Values are comparable between kdtts runs; MCD from other toolkits (SPTK mcep, other
    orders or bands) differs by a constant factor, so compare ratios, not literature numbers.
    """
    a = mel_cepstrum(reference, sample_rate, order)
    b = mel_cepstrum(degraded, sample_rate, order)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    path = dtw_path(cost)
    return float(MCD_CONSTANT * np.mean([cost[i, j] for i, j in path]))


def f0_track(audio: np.ndarray, sample_rate: int = 22050, frame_ms: float = 5.0,
             f0_floor: float = 60.0, f0_ceil: float = 500.0) -> np.ndarray:
    """F0 in Hz every `frame_ms` (0 where unvoiced): WORLD DIO refined by StoneMask (pyworld)."""
    pyworld = require("pyworld")
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, times = pyworld.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_ms)
    return pyworld.stonemask(x, f0, times, sample_rate)


def f0_metrics(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = 22050) -> dict[str, float]:
    """`f0_rmse_hz`, `f0_gross_error` and `vuv_error` of a time-aligned pair, tracking each signal's F0 once.

    f0_rmse_hz: root-mean-square F0 difference in Hz over the 5 ms frames both signals call voiced
    (NaN when there is none); RMSE in Hz is dominated by octave errors, so f0_gross_error gives the
    fraction (0-1) of those frames more than 20 % off. vuv_error: fraction (0-1) of frames where exactly
    one of the two is voiced.
    The longer signal is cut to the shorter.
    """
    a, b = f0_track(reference, sample_rate), f0_track(degraded, sample_rate)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    both = (a > 0) & (b > 0)
    rmse = float(np.sqrt(np.mean((a[both] - b[both]) ** 2))) if both.any() else float("nan")
    gross = float(np.mean(np.abs(a[both] - b[both]) > 0.2 * a[both])) if both.any() else float("nan")
    vuv = float(np.mean((a > 0) != (b > 0))) if n else float("nan")
    return {"f0_rmse_hz": rmse, "f0_gross_error": gross, "vuv_error": vuv}


def f0_rmse_hz(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = 22050) -> float:
    """Root-mean-square F0 difference in Hz over the 5 ms frames that both signals call voiced.

    The pair must be time-aligned (the student run with the teacher's durations); the longer signal is
    cut to the shorter. F0 from WORLD DIO + StoneMask, 60-500 Hz. 0 for identical audio; NaN when no
    frame is voiced in both.
    """
    return f0_metrics(reference, degraded, sample_rate)["f0_rmse_hz"]
