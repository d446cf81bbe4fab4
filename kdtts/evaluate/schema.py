"""The evaluation report's schema: which systems, which pairs, which keys every model entry carries.

Its own module so that the report, its Markdown and its plots all read it without importing each other.
"""
from __future__ import annotations

from pathlib import Path

HELDOUT = Path(__file__).resolve().parents[2] / "assets" / "heldout.txt"
SYSTEMS = ("teacher", "student", "griffinlim")
PAIRS = {"student": "student_vs_teacher", "griffinlim": "griffinlim_vs_teacher"}
QUALITY_KEYS = ("wer", "cer", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
FIDELITY_KEYS = ("mcd_db", "mcd_8k_db", "pesq_wb", "stoi", "f0_rmse_hz", "mel_distance")
F0_DETAIL_KEYS = ("f0_gross_error", "vuv_error", "f0_fine_rmse_hz", "ffe")  # kdtts.evaluate.fidelity.f0_metrics
PROSODY_KEYS = ("f0_sd_st", "f0_range_st", "loudness_lufs")  # per utterance, own durations; means over sentences
VS_TEACHER_KEYS = ("f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "loudness_worst_lu")  # kdtts.evaluate.versus
SPEED_KEYS = ("rtf_1thread", "rtf_default", "parameters", "bytes", "peak_rss_mb")
REPORT_KEYS = QUALITY_KEYS + FIDELITY_KEYS + PROSODY_KEYS + VS_TEACHER_KEYS + SPEED_KEYS
"""Every model entry of report.json carries all of these (null where one does not apply or was skipped)."""
FAMILIES = ("wer", "dnsmos", "prosody", "loudness", "mcd", "pesq", "stoi", "f0", "mel", "speed", "memory")
"""The metric families `evaluate --skip` can leave out."""
NAMES = {"teacher": "teacher", "student": "student", "griffinlim": "Griffin-Lim"}
"""How tables and plots name each system."""
