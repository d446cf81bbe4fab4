"""Is student B better than student A? The evaluation panel (kdtts.evaluate.panel) on two reports.

Both reports come from `python -m kdtts evaluate` on the same sentences; this prints every panel metric (fidelity
with the teacher's durations, prosody and loudness against the teacher, WER, DNSMOS P.808) with the candidate's
minus the reference's, its paired 95 % bootstrap interval, and the ship / do-not-ship verdict.

    python benchmarks/paired.py benchmarks/results/report.json runs/eval_new/report.json

(argument order: reference first, candidate second; `python -m kdtts.evaluate.panel CANDIDATE INCUMBENT` is the
same rule). Two student vocoders' `vocoder_report.json` (`evaluate --teacher hifigan`) compare on the metrics they
have (PESQ-WB, STOI, DNSMOS P.808).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.evaluate.panel import main as panel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="report.json of the reference student (e.g. the shipped one)")
    parser.add_argument("b", help="report.json of the candidate")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    args = parser.parse_args()
    return panel([args.b, args.a] + (["--json"] if args.json else []))


if __name__ == "__main__":
    raise SystemExit(main())
