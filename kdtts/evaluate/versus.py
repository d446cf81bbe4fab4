"""A system against the teacher, sentence by sentence: differences and ratios with paired 95 % intervals.

Reads the report's per-sentence rows (`report["sentences"]`: {"text", "teacher": {...}, system: {...}}), so the
evaluation report, the module ladder and the panel all compute these numbers one way.
"""
from __future__ import annotations

import numpy as np

from kdtts.evaluate import stats

DIFFERENCE_KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
RATIOS = {"f0_sd_ratio": "f0_sd_st", "f0_range_ratio": "f0_range_st"}
FIDELITY_INTERVAL_KEYS = ("mcd_db", "mcd_8k_db", "pesq_wb", "stoi", "f0_rmse_hz", "mel_distance")


def column(sentences: list[dict], system: str, key: str) -> np.ndarray:
    """Per-sentence values of one metric (NaN where a sentence lacks it)."""
    values = [(s.get(system) or {}).get(key) for s in sentences]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def has(sentences: list[dict], system: str, key: str) -> bool:
    return bool(sentences) and bool(np.isfinite(column(sentences, system, key)).any())


def _entry(iv: stats.Interval | None, statistic: str) -> dict | None:
    return None if iv is None else {"statistic": statistic, **iv.to_dict()}


def _pooled_difference(teacher_edits, edits, words, axis=-1):
    return stats.pooled_rate(edits, words, axis) - stats.pooled_rate(teacher_edits, words, axis)


def versus_teacher(sentences: list[dict], system: str, teacher: str = "teacher") -> dict[str, dict]:
    """{metric: {statistic, value, ci95, sentences}} of `system` against the teacher, paired over sentences:

    - dnsmos_*: mean(system - teacher); wer / cer: pooled rate of the system minus the teacher's (the same
      reference words, resampled together);
    - f0_sd_ratio / f0_range_ratio: mean over sentences of the system's F0 SD (5-95 % range) divided by the
      teacher's mean (a ratio of means; 1 = the teacher's spread);
    - loudness_diff_lu: mean(system - teacher) in LU (negative = quieter); loudness_worst_lu: max |difference|.
    Metrics either side lacks are left out.
    """
    t = lambda key: column(sentences, teacher, key)  # noqa: E731
    s = lambda key: column(sentences, system, key)  # noqa: E731
    out: dict[str, dict | None] = {}
    for key in DIFFERENCE_KEYS:
        if has(sentences, system, key) and has(sentences, teacher, key):
            out[key] = _entry(stats.interval(stats.mean_difference, t(key), s(key)), "difference")
    for key, edits, words in (("wer", "word_edits", "words"), ("cer", "char_edits", "chars")):
        if has(sentences, system, edits) and has(sentences, teacher, edits):
            out[key] = _entry(stats.interval(_pooled_difference, t(edits), s(edits), s(words)), "difference")
    for name, key in RATIOS.items():
        if has(sentences, system, key) and has(sentences, teacher, key):
            out[name] = _entry(stats.interval(stats.ratio_of_means, t(key), s(key)), "ratio")
    if has(sentences, system, "loudness_lufs") and has(sentences, teacher, "loudness_lufs"):
        ref, other = t("loudness_lufs"), s("loudness_lufs")
        out["loudness_diff_lu"] = _entry(stats.interval(stats.mean_difference, ref, other), "difference")
        out["loudness_worst_lu"] = _entry(stats.interval(stats.worst_abs_difference, ref, other, method="percentile"),
                                          "max abs difference")
    return {k: v for k, v in out.items() if v is not None}


def fidelity_intervals(sentences: list[dict], system: str) -> dict[str, list[float]]:
    """{metric: [low, high]}: 95 % bootstrap interval of the mean of each fidelity metric (against the teacher,
    so there is no teacher column to pair with)."""
    out = {}
    for key in FIDELITY_INTERVAL_KEYS:
        iv = stats.interval(stats.mean, column(sentences, system, key))
        if iv is not None:
            out[key] = [iv.low, iv.high]
    return out
