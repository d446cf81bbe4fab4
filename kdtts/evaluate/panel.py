"""The decision rule: does a candidate student replace the incumbent? Judged on a panel, not on one predictor.

Both reports come from `python -m kdtts evaluate` on the same sentences (the teacher is deterministic, so only
the student differs). Every panel metric is computed for each report from its per-sentence rows, and the
candidate's minus the incumbent's is bootstrapped over sentences (the same resampled sentences for both):

    fidelity, with the teacher's durations   log-mel distance, PESQ-WB, STOI
    prosody, own durations                   F0 SD and 5-95 % range as ratios to the teacher (min(r, 1/r))
    loudness, own durations                  |mean difference to the teacher|, worst sentence's |difference|
    intelligibility                          WER (pooled)
    a no-reference predictor                 DNSMOS P.808

Verdict: ship only if no panel metric is worse beyond its 95 % interval and at least one is better beyond it,
and never when DNSMOS rises while a fidelity or prosody metric falls. A change smaller than the metric's
`negligible` (the smallest difference a listener or the metric's own precision could tell) is "same" whatever
its interval: a pure gain moves PESQ by 1e-4 through float rounding, with an interval almost as narrow (DNSMOS was over-fitted once: a student
picked by it alone flattened the teacher's prosody). A panel metric either report lacks makes it "incomplete".

    python -m kdtts.evaluate.panel CANDIDATE/report.json INCUMBENT/report.json [--json]

Exit status 0: ship; 1: do not ship (or incomplete); 2: the reports could not be read or compared.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdtts.evaluate import stats
from kdtts.evaluate.versus import column

SYSTEM = "student"
GUARDED_GROUPS = ("fidelity", "prosody")  # may not fall while DNSMOS rises


def _closeness(ratio):
    """min(r, 1/r): 1 for the teacher's spread, lower for too flat or too wide."""
    return np.minimum(ratio, 1.0 / ratio)


@dataclass(frozen=True)
class PanelMetric:
    key: str
    label: str
    group: str
    fields: tuple[tuple[str, str], ...]   # (system, per-sentence key) read from a report's sentence rows
    value: Callable[..., np.ndarray]      # the fields' arrays (axis=-1) -> the metric for one report
    higher_is_better: bool
    negligible: float                     # a smaller difference is "same" (and never trips the DNSMOS guard)
    method: str = "BCa"


PANEL = (
    PanelMetric("mel_distance", "log-mel distance, teacher durations", "fidelity",
                ((SYSTEM, "mel_distance"),), stats.mean, False, 0.002),
    PanelMetric("pesq_wb", "PESQ-WB, teacher durations", "fidelity", ((SYSTEM, "pesq_wb"),), stats.mean, True, 0.005),
    PanelMetric("stoi", "STOI, teacher durations", "fidelity", ((SYSTEM, "stoi"),), stats.mean, True, 0.001),
    PanelMetric("f0_sd_ratio", "F0 SD / teacher's, min(r, 1/r)", "prosody",
                (("teacher", "f0_sd_st"), (SYSTEM, "f0_sd_st")),
                lambda t, s, axis=-1: _closeness(stats.ratio_of_means(t, s, axis)), True, 0.005),
    PanelMetric("f0_range_ratio", "F0 5-95 % range / teacher's, min(r, 1/r)", "prosody",
                (("teacher", "f0_range_st"), (SYSTEM, "f0_range_st")),
                lambda t, s, axis=-1: _closeness(stats.ratio_of_means(t, s, axis)), True, 0.005),
    PanelMetric("loudness_mean_lu", "|mean loudness - teacher's| (LU)", "loudness",
                (("teacher", "loudness_lufs"), (SYSTEM, "loudness_lufs")),
                lambda t, s, axis=-1: np.abs(stats.mean_difference(t, s, axis)), False, 0.1),
    PanelMetric("loudness_worst_lu", "worst sentence |loudness - teacher's| (LU)", "loudness",
                (("teacher", "loudness_lufs"), (SYSTEM, "loudness_lufs")), stats.worst_abs_difference, False,
                0.1, "percentile"),
    PanelMetric("wer", "WER (pooled)", "intelligibility", ((SYSTEM, "word_edits"), (SYSTEM, "words")),
                stats.pooled_rate, False, 0.005),
    PanelMetric("dnsmos_p808", "DNSMOS P.808", "dnsmos", ((SYSTEM, "dnsmos_p808"),), stats.mean, True, 0.01),
)


def sentence_rows(report: dict) -> list[dict]:
    """A report's per-sentence rows {"text", "teacher": {...}, "student": {...}}; a vocoder report
    (`evaluate --teacher hifigan`) is read into the same shape (PESQ, STOI, DNSMOS only)."""
    if isinstance(report.get("sentences"), list):
        return report["sentences"]
    return [{"text": r["text"], "teacher": {"dnsmos_p808": r["teacher_p808"]},
             SYSTEM: {"pesq_wb": r["pesq_wb"], "stoi": r["stoi"], "dnsmos_p808": r["student_p808"]}}
            for r in report["rows"]]


def compare_metric(metric: PanelMetric, candidate: list[dict], incumbent: list[dict]) -> dict:
    """The metric for both, the candidate minus the incumbent with its paired interval, and better / worse /
    same (beyond the interval, in the metric's own direction) or "not measured"."""
    arrays = [column(rows, system, key) for rows in (candidate, incumbent) for system, key in metric.fields]
    n = len(metric.fields)
    if not all(np.isfinite(a).any() for a in arrays):
        return {"label": metric.label, "group": metric.group, "verdict": "not measured"}

    def difference(*xs, axis=-1):
        return metric.value(*xs[:n], axis=axis) - metric.value(*xs[n:], axis=axis)

    iv = stats.interval(difference, *arrays, method=metric.method)
    if iv is None:
        return {"label": metric.label, "group": metric.group, "verdict": "not measured"}
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    cand = float(metric.value(*[a[keep] for a in arrays[:n]]))
    inc = float(metric.value(*[a[keep] for a in arrays[n:]]))
    sign = 1.0 if metric.higher_is_better else -1.0
    lo_gain, hi_gain = sorted((sign * iv.low, sign * iv.high))
    matters = abs(iv.value) >= metric.negligible
    better, worse = lo_gain > 0 and matters, hi_gain < 0 and matters
    return {"label": metric.label, "group": metric.group, "higher_is_better": metric.higher_is_better,
            "candidate": cand, "incumbent": inc, "difference": iv.value, "ci95": [iv.low, iv.high],
            "sentences": iv.sentences, "gain": sign * iv.value, "negligible": metric.negligible,
            "verdict": "better" if better else "worse" if worse else "same"}


def decide(candidate: dict, incumbent: dict, panel: tuple[PanelMetric, ...] = PANEL) -> dict:
    """{"metrics": {key: comparison}, "ship": bool, "verdict": str, "reasons": [...]} for two reports."""
    cand, inc = sentence_rows(candidate), sentence_rows(incumbent)
    if [r["text"] for r in cand] != [r["text"] for r in inc]:
        raise ValueError("the two reports scored different sentences; compare runs on the same held-out set")
    metrics = {m.key: compare_metric(m, cand, inc) for m in panel}
    measured = {k: m for k, m in metrics.items() if m["verdict"] != "not measured"}
    worse = [k for k, m in measured.items() if m["verdict"] == "worse"]
    better = [k for k, m in measured.items() if m["verdict"] == "better"]
    dnsmos_up = any(m["gain"] >= m["negligible"] for m in measured.values() if m["group"] == "dnsmos")
    falling = [k for k, m in measured.items() if m["group"] in GUARDED_GROUPS and m["gain"] <= -m["negligible"]]
    reasons = []
    if worse:
        reasons.append("worse beyond its interval: " + ", ".join(worse))
    if dnsmos_up and falling:
        reasons.append("DNSMOS rises while fidelity / prosody falls: " + ", ".join(falling))
    if not better:
        reasons.append("no panel metric is better beyond its interval")
    missing = [k for k in metrics if k not in measured]
    if missing:
        reasons.append("not measured in both reports: " + ", ".join(missing))
    ship = not reasons
    verdict = ("ship: better in " + ", ".join(better)) if ship else (
        "incomplete" if missing and not worse and not (dnsmos_up and falling) else "do not ship")
    return {"metrics": metrics, "ship": ship, "verdict": verdict, "reasons": reasons,
            "sentences": len(cand)}


def format_decision(decision: dict) -> str:
    """The panel as a table a person reads, then the verdict and its reasons."""
    lines = [f"panel over {decision['sentences']} sentences (candidate - incumbent, paired bootstrap 95 %)", "",
             f"{'metric':46s} {'candidate':>10s} {'incumbent':>10s} {'difference':>11s}  {'95 % interval':>22s}  verdict"]
    for m in decision["metrics"].values():
        if m["verdict"] == "not measured":
            lines.append(f"{m['label']:46s} {'':>10s} {'':>10s} {'':>11s}  {'':>22s}  not measured")
            continue
        low, high = m["ci95"]
        lines.append(f"{m['label']:46s} {m['candidate']:10.4f} {m['incumbent']:10.4f} {m['difference']:+11.4f}  "
                     f"{f'[{low:+.4f}, {high:+.4f}]':>22s}  {m['verdict']}")
    lines += ["", f"verdict: {decision['verdict']}"] + [f"  - {r}" for r in decision["reasons"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdtts.evaluate.panel", description=__doc__.split("\n\n")[0])
    parser.add_argument("candidate", help="report.json of the candidate student")
    parser.add_argument("incumbent", help="report.json of the student it would replace (e.g. the shipped one)")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    args = parser.parse_args(argv)
    try:
        reports = [json.loads(Path(p).read_text(encoding="utf-8")) for p in (args.candidate, args.incumbent)]
        decision = decide(*reports)
    except (OSError, ValueError, KeyError) as error:
        print(f"kdtts panel: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(decision, indent=1) if args.json else format_decision(decision))
    return 0 if decision["ship"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
