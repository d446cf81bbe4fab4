"""Is student B really better than student A? Paired differences between two evaluation reports.

Both reports come from `python -m kdtts evaluate` on the same sentences (the teacher is deterministic, so only
the student differs). For each per-sentence metric this prints B's mean minus A's, a 95 % bootstrap interval of
that mean difference, and in how many sentences B is better: a DNSMOS difference of 0.02 on 40 sentences can be
noise, a goal line is not.

    python benchmarks/paired.py benchmarks/results/report.json runs/eval_new/report.json

Two student vocoders' `vocoder_report.json` (`evaluate --teacher hifigan`) compare the same way.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

HIGHER_IS_BETTER = {"dnsmos_ovrl": True, "dnsmos_p808": True, "pesq_wb": True, "stoi": True,
                    "mcd_8k_db": False, "f0_rmse_hz": False}


def student_rows(report: dict) -> list[tuple[str, dict]]:
    """(sentence, the student's metrics) per sentence, from a TTS report or a vocoder report."""
    if isinstance(report.get("sentences"), list):
        return [(s["text"], s["student"]) for s in report["sentences"]]
    return [(r["text"], {"pesq_wb": r["pesq_wb"], "stoi": r["stoi"], "dnsmos_p808": r["student_p808"],
                         "dnsmos_ovrl": r["student_ovrl"]}) for r in report["rows"]]


def paired(a: dict, b: dict, resamples: int = 5000, seed: int = 0) -> dict[str, dict[str, float]]:
    rows_a, rows_b = student_rows(a), student_rows(b)
    if [t for t, _ in rows_a] != [t for t, _ in rows_b]:
        raise SystemExit("the two reports scored different sentences; compare runs on the same held-out set")
    rng, out = np.random.default_rng(seed), {}
    for key, higher in HIGHER_IS_BETTER.items():
        x = np.array([m.get(key, np.nan) for _, m in rows_a], dtype=float)
        y = np.array([m.get(key, np.nan) for _, m in rows_b], dtype=float)
        d = (y - x)[np.isfinite(y - x)]
        if not len(d):
            continue
        means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(1)
        low, high = np.percentile(means, [2.5, 97.5])
        out[key] = {"a": round(float(np.nanmean(x)), 4), "b": round(float(np.nanmean(y)), 4),
                    "difference": round(float(d.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)],
                    "b_better_in": int((d > 0).sum() if higher else (d < 0).sum()), "sentences": len(d)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="report.json of the reference student (e.g. the shipped one)")
    parser.add_argument("b", help="report.json of the candidate")
    args = parser.parse_args()
    with open(args.a) as fa, open(args.b) as fb:
        print(json.dumps(paired(json.load(fa), json.load(fb)), indent=1))


if __name__ == "__main__":
    main()
