"""The student's goals, checked against a report: each with its measured value and pass/fail.

Targets are the project's acceptance numbers for a shipped student (held-out sentences, teacher
deterministic, same run). A goal whose metric was not measured (skipped, no student) is omitted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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


GOALS = (
    Goal("DNSMOS P.808, end to end", _model("dnsmos_p808"), lambda v, r: v >= 3.80, ">= 3.80"),
    Goal("DNSMOS OVRL, end to end", _model("dnsmos_ovrl"), lambda v, r: v >= 3.20, ">= 3.20"),
    Goal("PESQ-WB, teacher durations", _pair("pesq_wb"), lambda v, r: v >= 2.5, ">= 2.5"),
    Goal("STOI, teacher durations", _pair("stoi"), lambda v, r: v >= 0.93, ">= 0.93"),
    Goal("MCD 0-8 kHz, teacher durations (dB)", _pair("mcd_8k_db"), lambda v, r: v <= 4.5, "<= 4.5"),
    Goal("F0 RMSE, teacher durations (Hz)", _pair("f0_rmse_hz"), lambda v, r: v <= 15, "<= 15"),
    Goal("total audio length / teacher's", _model("length_ratio"), lambda v, r: abs(v - 1) <= 0.02, "1 +- 0.02"),
    Goal("median per-sentence abs(length ratio - 1)", _model("length_ratio_median_deviation"),
         lambda v, r: v <= 0.03, "<= 0.03"),
    Goal("parameters", _model("parameters"), lambda v, r: v <= 1_500_000, "<= 1.5 M"),
    Goal("speed-up, 1 thread", _speedup("1thread"), lambda v, r: v >= 15, ">= 15x"),
    Goal("speed-up, default threads", _speedup("default"), lambda v, r: v >= 10, ">= 10x"),
    Goal("WER", _model("wer"), lambda v, r: v <= (_model("wer", "teacher")(r) or 0) + 0.03, "<= teacher + 0.03"),
)


def check_goals(report: dict) -> list[dict]:
    """[{goal, value, target, passed}] for every goal the report has a number for."""
    rows = []
    for goal in GOALS:
        value = goal.value(report)
        if value is not None:
            rows.append({"goal": goal.name, "value": value, "target": goal.target,
                         "passed": bool(goal.passes(value, report))})
    return rows
