"""95 % intervals over sentences (scipy.stats.bootstrap): a difference of 0.02 on 40 sentences can be noise.

Every interval in the evaluation report and the panel comes from `interval`: the sentences are resampled with
replacement, the same sentences for every array (paired), and the statistic is recomputed on each resample.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

RESAMPLES = 4000
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A statistic over sentences and its 95 % bootstrap interval (low == high == value when it cannot vary)."""

    value: float
    low: float
    high: float
    sentences: int

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.low, self.high], "sentences": self.sentences}


def _finite_rows(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return tuple(a[keep] for a in arrays)


def interval(statistic: Callable[..., np.ndarray], *arrays: np.ndarray, method: str = "BCa") -> Interval | None:
    """`statistic(*arrays, axis=-1)` with its paired bootstrap interval; sentences where any array is NaN are
    dropped; None when fewer than two remain.

    BCa (scipy's default) where it is defined; where the bootstrap distribution is degenerate (e.g. identical
    systems: every resample gives the same value) BCa is undefined and the percentile interval is used.
    """
    arrays = _finite_rows(arrays)
    n = len(arrays[0])
    if n < 2:
        return None
    value = float(statistic(*arrays, axis=-1))
    for how in dict.fromkeys((method, "percentile")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(arrays, statistic, paired=True, vectorized=True, n_resamples=RESAMPLES,
                                     method=how, rng=np.random.default_rng(SEED))
        low, high = (float(v) for v in result.confidence_interval)
        if np.isfinite(low) and np.isfinite(high):
            return Interval(value, low, high, n)
    return Interval(value, value, value, n)


def mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_difference(reference, other, axis=-1):
    """mean(other - reference): the paired difference."""
    return np.mean(other - reference, axis=axis)


def ratio_of_means(reference, other, axis=-1):
    """mean(other) / mean(reference): e.g. a student's F0 spread as a share of the teacher's."""
    return np.mean(other, axis=axis) / np.mean(reference, axis=axis)


def worst_abs_difference(reference, other, axis=-1):
    """max |other - reference|: the worst sentence."""
    return np.max(np.abs(other - reference), axis=axis)


def pooled_rate(edits, total, axis=-1):
    """sum(edits) / sum(total): a corpus error rate (WER) over the resampled sentences."""
    return np.sum(edits, axis=axis) / np.maximum(np.sum(total, axis=axis), 1)
