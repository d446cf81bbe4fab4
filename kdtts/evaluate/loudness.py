"""Integrated loudness per utterance (ITU-R BS.1770-4, K-weighted, gated; pyloudnorm), in LUFS.

A student that is 2 LU quieter than its teacher sounds duller in an A/B comparison, whatever its spectrum.
"""
from __future__ import annotations

import math

import numpy as np

from kdtts.audio import AudioSpec
from kdtts.evaluate.optional import require

BLOCK_SECONDS = 0.4  # BS.1770's gating block: shorter clips have no integrated loudness


def integrated_loudness(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> float:
    """BS.1770 integrated loudness in LUFS; NaN for clips shorter than one 400 ms block or silent ones.
    Scaling the signal by g moves it by 20 log10(g) LU (0.5 -> -6.02 LU)."""
    pyloudnorm = require("pyloudnorm")
    x = np.asarray(audio, dtype=np.float64)
    if len(x) < BLOCK_SECONDS * sample_rate:
        return float("nan")
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return value if math.isfinite(value) else float("nan")
