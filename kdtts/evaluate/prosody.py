"""Prosody per utterance: how far the pitch moves, in semitones, so that a flattened student shows.

F0 comes from `fidelity.f0_track` (WORLD DIO + StoneMask, 5 ms frames, 60-500 Hz); only voiced frames count.
Semitones are relative to 100 Hz: st = 12 log2(f0 / 100 Hz), so a spread is independent of the voice's register.
"""
from __future__ import annotations

import numpy as np

from kdtts.audio import AudioSpec
from kdtts.evaluate.fidelity import f0_track

REFERENCE_HZ = 100.0
RANGE_PERCENTILES = (5.0, 95.0)


def semitones(f0_hz: np.ndarray) -> np.ndarray:
    """12 log2(f0 / 100 Hz) of voiced (f0 > 0) values."""
    f0 = np.asarray(f0_hz, dtype=np.float64)
    return 12.0 * np.log2(f0[f0 > 0] / REFERENCE_HZ)


def prosody(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> dict[str, float]:
    """f0_sd_st: standard deviation of F0 over voiced frames; f0_range_st: its 5-95 % percentile range; both
    in semitones (NaN with fewer than two voiced frames)."""
    st = semitones(f0_track(audio, sample_rate))
    if len(st) < 2:
        return {"f0_sd_st": float("nan"), "f0_range_st": float("nan")}
    low, high = np.percentile(st, RANGE_PERCENTILES)
    return {"f0_sd_st": float(np.std(st)), "f0_range_st": float(high - low)}
