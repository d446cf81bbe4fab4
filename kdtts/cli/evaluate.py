"""`evaluate`: the evaluation suite on held-out sentences (kdtts.evaluate.report); with a vocoder
`--teacher`, the student vocoder against it on the same mels (kdtts.evaluate.vocoder)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kdtts.cli.common import command_line, vocoder_pair
from kdtts.cli.errors import fail
from kdtts.evaluate.goals import DEFAULT_TIER, TIERS
from kdtts.evaluate.schema import FAMILIES
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.description = "Writes report.json, report.md, metrics.png and rtf_modules.png into --out."
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
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help=f"{DEFAULT_TEACHER}: the text-to-speech student; a vocoder teacher (hifigan): the student "
                        "vocoder against it on the same mels (writes vocoder_report.json/.md)")


def run(args: argparse.Namespace) -> None:
    if args.teacher != DEFAULT_TEACHER:
        return _vocoder(args)
    from kdtts.evaluate.report import HELDOUT, EvalConfig, evaluate
    from kdtts.student.header import SHIPPED_STUDENT

    skip = tuple(s.strip() for s in args.skip.split(",") if s.strip())
    unknown = set(skip) - set(FAMILIES)
    if unknown:
        fail(f"--skip: unknown metric families {sorted(unknown)}; choose from {','.join(FAMILIES)}")
    student = Path(args.student) if args.student else (SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else None)
    if args.student and not student.exists():
        fail(f"no student checkpoint at {student}")
    text_file = Path(args.text_file) if args.text_file else HELDOUT
    if not text_file.exists():
        fail(f"no text file at {text_file}")
    config = EvalConfig(text_file=text_file, student=student, student_label=args.student_label, out=Path(args.out),
                        limit=args.limit, voice=Path(args.voice) if args.voice else None,
                        speed_sentences=args.speed_sentences, repeats=args.repeats, skip=skip,
                        save_audio=args.save_audio, tier=args.tier, command=command_line())
    report = evaluate(config)
    summary = {s: {k: m.get(k) for k in ("wer", "dnsmos_ovrl", "dnsmos_p808", "mcd_db", "pesq_wb",
                                         "f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "rtf_1thread")}
               for s, m in report["models"].items()}
    print(json.dumps({"out": str(config.out), "models": summary}, indent=1))


def _vocoder(args: argparse.Namespace) -> None:
    from kdtts.distill.corpus import read_heldout
    from kdtts.evaluate.vocoder import evaluate_vocoder

    started = time.perf_counter()
    pair = vocoder_pair(args)
    texts = read_heldout(Path(args.text_file)) if args.text_file else read_heldout()
    report = evaluate_vocoder(pair, texts[:args.limit], Path(args.out), args.speed_sentences, args.repeats,
                              command_line())
    print(json.dumps({"out": args.out, "summary": report["summary"],
                      "seconds": round(time.perf_counter() - started, 1)}, indent=1))
