"""Intrusive quality against the teacher's audio: PESQ wide-band and STOI (pairs of equal length)."""
from __future__ import annotations

import numpy as np

from kdtts.audio import AudioSpec, resample
from kdtts.evaluate.optional import require

PESQ_RATE = 16000


def equal_length(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut both to the shorter length (a student run with the teacher's durations is already equal)."""
    n = min(len(reference), len(degraded))
    return np.asarray(reference[:n], dtype=np.float64), np.asarray(degraded[:n], dtype=np.float64)


def pesq_wb(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> float:
    """PESQ wide-band (ITU-T P.862.2) MOS-LQO of `degraded` against `reference`, both resampled to 16 kHz.

    Scale about 1.0 (bad) to 4.64 (identical). NaN when PESQ finds no speech in the reference.
    """
    pesq = require("pesq")
    ref, deg = equal_length(resample(np.asarray(reference, np.float32), sample_rate, PESQ_RATE),
                            resample(np.asarray(degraded, np.float32), sample_rate, PESQ_RATE))
    try:
        return float(pesq.pesq(PESQ_RATE, ref, deg, "wb"))
    except pesq.PesqError:  # e.g. NoUtterancesError: nothing PESQ recognises as speech
        return float("nan")


def stoi(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), 0-1, 1 for identical audio.

    Correlation of 1/3-octave band envelopes over 384 ms windows (pystoi resamples to 10 kHz and removes
    silent frames of the reference itself).
    """
    pystoi = require("pystoi")
    ref, deg = equal_length(reference, degraded)
    return float(pystoi.stoi(ref, deg, sample_rate, extended=False))
