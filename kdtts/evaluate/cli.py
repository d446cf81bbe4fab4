"""`python -m kdtts evaluate`: the evaluation suite on held-out sentences (registered by kdtts.cli)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from kdtts.evaluate.goals import DEFAULT_TIER, TIERS
from kdtts.evaluate.schema import FAMILIES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="teacher vs student vs Griffin-Lim: quality, fidelity, WER, speed, size",
                       description="Writes report.json, report.md, metrics.png and rtf_modules.png into --out.")
    p.add_argument("--text-file", help="one sentence per line (default: assets/heldout.txt)")
    p.add_argument("--student", help="student checkpoint (default: assets/student.safetensors if it exists; "
                                     "without one, only the teacher and Griffin-Lim are evaluated)")
    p.add_argument("--student-label", help="how the report names the student (e.g. 'untrained placeholder')")
    p.add_argument("--out", default="runs/evaluate", help="output folder (default: runs/evaluate)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--speed-sentences", type=int, default=5, help="sentences timed for RTF (default 5)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per setting; the median is reported")
    p.add_argument("--skip", default="", help=f"comma-separated metric families to skip: {','.join(FAMILIES)}")
    p.add_argument("--tier", choices=TIERS, default=DEFAULT_TIER,
                   help=f"whose goals the report checks (default {DEFAULT_TIER}; kdtts.evaluate.goals)")
    p.add_argument("--save-audio", action="store_true", help="also write every system's WAVs under OUT/audio")
    p.add_argument("--teacher", default="piper-joe",
                   help="piper-joe: the text-to-speech student; a vocoder teacher (hifigan): the student vocoder "
                        "against it on the same mels (writes vocoder_report.json/.md)")
    p.set_defaults(func=cmd_evaluate)
    return p


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.teacher != "piper-joe":
        from kdtts.cli_vocoder import evaluate_vocoded

        return evaluate_vocoded(args)
    from kdtts.evaluate.report import HELDOUT, EvalConfig, evaluate
    from kdtts.student.checkpoint import SHIPPED_STUDENT, CheckpointError

    skip = tuple(s.strip() for s in args.skip.split(",") if s.strip())
    unknown = set(skip) - set(FAMILIES)
    if unknown:
        _fail(f"--skip: unknown metric families {sorted(unknown)}; choose from {','.join(FAMILIES)}")
    student = Path(args.student) if args.student else (SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else None)
    if args.student and not student.exists():
        _fail(f"no student checkpoint at {student}")
    text_file = Path(args.text_file) if args.text_file else HELDOUT
    if not text_file.exists():
        _fail(f"no text file at {text_file}")
    config = EvalConfig(text_file=text_file, student=student, student_label=args.student_label, out=Path(args.out),
                        limit=args.limit, voice=Path(args.voice) if args.voice else None,
                        speed_sentences=args.speed_sentences, repeats=args.repeats, skip=skip,
                        save_audio=args.save_audio, tier=args.tier,
                        command="python -m kdtts " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    try:
        report = evaluate(config)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        _fail(str(error))
    summary = {s: {k: m.get(k) for k in ("wer", "dnsmos_ovrl", "dnsmos_p808", "mcd_db", "pesq_wb",
                                             "f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "rtf_1thread")}
               for s, m in report["models"].items()}
    print(json.dumps({"out": str(config.out), "models": summary}, indent=1))


def _fail(message: str) -> None:
    print(f"kdtts: error: {message}", file=sys.stderr)
    raise SystemExit(2)
