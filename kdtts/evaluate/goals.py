"""The student's goals per tier, checked against a report: each with its measured value and pass/fail.

Targets are the project's acceptance numbers for a shipped student (held-out sentences, teacher deterministic,
same run; issue 23 for the tiers). A goal whose metric was not measured (skipped, no student) is omitted.

- small (the default student, <= 1.5 M parameters): the teacher's prosody and loudness, DNSMOS close to the
  teacher's, intelligible, its length; fidelity with the teacher's durations is reported, not a goal.
- base (<= 5 M parameters): closer in DNSMOS and prosody, and faithful to the teacher with its durations.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TIER = "small"


@dataclass(frozen=True)
class Goal:
    name: str
    value: Callable[[dict], float | None]   # from the report
    passes: Callable[[float, dict], bool]   # (value, report) -> met?
    target: str


def _model(key: str, system: str = "student") -> Callable[[dict], float | None]:
    return lambda r: (r["models"].get(system) or {}).get(key)


def _pair(key: str) -> Callable[[dict], float | None]:
    return lambda r: (r.get("pairs", {}).get("student_vs_teacher") or {}).get(key)


def _speedup(name: str) -> Callable[[dict], float | None]:
    return lambda r: (r.get("speedup_student_over_teacher") or {}).get(name)


def _p808_gap(r: dict) -> float | None:
    teacher, student = _model("dnsmos_p808", "teacher")(r), _model("dnsmos_p808")(r)
    return None if teacher is None or student is None else teacher - student


def _at_least(target: float) -> Callable[[float, dict], bool]:
    return lambda v, r: v >= target


def _at_most(target: float) -> Callable[[float, dict], bool]:
    return lambda v, r: v <= target


EVERY_TIER = (
    Goal("WER", _model("wer"), lambda v, r: v <= (_model("wer", "teacher")(r) or 0) + 0.03, "<= teacher + 0.03"),
    Goal("total audio length / teacher's", _model("length_ratio"), lambda v, r: abs(v - 1) <= 0.02, "1 +- 0.02"),
    Goal("median per-sentence abs(length ratio - 1)", _model("length_ratio_median_deviation"), _at_most(0.03),
         "<= 0.03"),
    Goal("loudness - teacher's, mean over sentences (LU)", _model("loudness_diff_lu"), lambda v, r: abs(v) <= 0.5,
         "within +- 0.5"),
    Goal("loudness - teacher's, worst sentence (max abs, LU)", _model("loudness_worst_lu"), _at_most(1.5), "<= 1.5"),
)

def _close_to_teacher(p808_gap: float, f0_ratio: float) -> tuple[Goal, ...]:
    """DNSMOS P.808 within `p808_gap` of the teacher's and F0 spread at least `f0_ratio` of it."""
    return (Goal("DNSMOS P.808 gap to the teacher", _p808_gap, _at_most(p808_gap), f"<= {p808_gap:.2f}"),
            Goal("F0 SD / teacher's", _model("f0_sd_ratio"), _at_least(f0_ratio), f">= {f0_ratio:.2f}"),
            Goal("F0 5-95 % range / teacher's", _model("f0_range_ratio"), _at_least(f0_ratio), f">= {f0_ratio:.2f}"))


TIERS: dict[str, tuple[Goal, ...]] = {
    "small": (
        Goal("DNSMOS P.808, end to end", _model("dnsmos_p808"), _at_least(3.80), ">= 3.80"),
        Goal("DNSMOS OVRL, end to end", _model("dnsmos_ovrl"), _at_least(3.20), ">= 3.20"),
        *_close_to_teacher(0.10, 0.90),
        *EVERY_TIER,
        Goal("parameters", _model("parameters"), _at_most(1_500_000), "<= 1.5 M"),
        Goal("speed-up, 1 thread", _speedup("1thread"), _at_least(20), ">= 20x"),
        Goal("speed-up, default threads", _speedup("default"), _at_least(10), ">= 10x"),
    ),
    "base": (
        *_close_to_teacher(0.05, 0.95),
        Goal("PESQ-WB, teacher durations", _pair("pesq_wb"), _at_least(2.5), ">= 2.5"),
        Goal("STOI, teacher durations", _pair("stoi"), _at_least(0.93), ">= 0.93"),
        Goal("MCD 0-8 kHz, teacher durations (dB)", _pair("mcd_8k_db"), _at_most(4.5), "<= 4.5"),
        *EVERY_TIER,
        Goal("parameters", _model("parameters"), _at_most(5_000_000), "<= 5 M"),
        Goal("speed-up, 1 thread", _speedup("1thread"), _at_least(10), ">= 10x"),
    ),
}


VOCODER: tuple[Goal, ...] = tuple(
    Goal(key, lambda summary, key=key: summary.get(key), passes, target) for key, passes, target in (
        ("parameters", _at_most(1_000_000), "<= 1000000"), ("speedup_1thread", _at_least(50.0), ">= 50.0"),
        ("pesq_wb", _at_least(3.0), ">= 3.0"), ("stoi", _at_least(0.95), ">= 0.95"),
        ("p808_gap", _at_most(0.15), "<= 0.15")))
"""The student vocoder's goals (kdtts.evaluate.vocoder), read from its report's summary, named by its keys."""


def check_goals(report: dict, tier: str = DEFAULT_TIER) -> list[dict]:
    """[{goal, value, target, passed}] for every goal of `tier` the report has a number for."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose from {', '.join(TIERS)}")
    rows = []
    for goal in TIERS[tier]:
        value = goal.value(report)
        if value is not None:
            rows.append({"goal": goal.name, "value": value, "target": goal.target,
                         "passed": bool(goal.passes(value, report))})
    return rows
