"""`evaluate`: the evaluation suite on held-out sentences (kdtts.evaluate.report); with a vocoder
`--teacher`, the student vocoder against it on the same mels (kdtts.evaluate.vocoder): the teacher's
family (kdtts.families) runs its own evaluator."""
from __future__ import annotations

import argparse

from kdtts.evaluate.goals import DEFAULT_TIER, TIERS
from kdtts.evaluate.schema import FAMILIES
from kdtts.families import family_of
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.description = "Writes report.json, report.md, metrics.png and rtf_modules.png into --out."
    p.add_argument("--text-file", help="one sentence per line (default: assets/heldout.txt)")
    p.add_argument("--student", help="a shipped tier (small, base) or a student checkpoint path (default: small if "
                                     "it exists; without one, only the teacher and Griffin-Lim are evaluated)")
    p.add_argument("--student-label", help="how the report names the student (e.g. 'untrained placeholder')")
    p.add_argument("--out", default="runs/evaluate", help="output folder (default: runs/evaluate)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--speed-sentences", type=int, default=5, help="sentences timed for RTF (default 5)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per setting; the median is reported")
    p.add_argument("--skip", default="", help=f"comma-separated metric families to skip: {','.join(FAMILIES)}")
    p.add_argument("--tier", choices=TIERS,
                   help=f"whose goals the report checks (default: --student's tier, else {DEFAULT_TIER}; "
                        "kdtts.evaluate.goals)")
    p.add_argument("--save-audio", action="store_true", help="also write every system's WAVs under OUT/audio")
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help=f"{DEFAULT_TEACHER}: the text-to-speech student; a vocoder teacher (hifigan): the student "
                        "vocoder against it on the same mels (writes vocoder_report.json/.md)")


def run(args: argparse.Namespace) -> None:
    family_of(args.teacher).evaluate(args)
