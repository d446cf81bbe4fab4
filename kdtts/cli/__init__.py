"""`kdtts` / `python -m kdtts`: synth, info, distill, adversarial, compose, export, evaluate.

One module per command (kdtts/cli/<command>.py with `add_arguments` and `run`); only the command being
run is imported, so `--help` and `synth --model student` start without torch. Every domain error
ends the same way: one line on stderr and exit code 2 (kdtts.cli.errors).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from kdtts import __version__
from kdtts.cli.errors import run_reporting_errors

# name -> one line of help: the table `--help` prints without importing any command
COMMANDS: dict[str, str] = {
    "synth": "text to WAV with the teacher or the student",
    "info": "parameters, size and paths of teacher and student (JSON)",
    "distill": "distil a student from the teacher (a student vocoder with --teacher hifigan)",
    "adversarial": "refine a student's decoder with discriminators (GAN stage)",
    "compose": "one student from the modules of several checkpoints",
    "export": "export a student to ONNX and check it against PyTorch",
    "evaluate": "teacher vs student vs Griffin-Lim: quality, fidelity, WER, speed, size",
}


def _prog() -> str:
    return "kdtts" if Path(sys.argv[0]).name == "kdtts" else "python -m kdtts"


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Every command is listed; only the one named in `argv` gets its arguments (and its imports)."""
    parser = argparse.ArgumentParser(prog=_prog(), description="kdtts: knowledge distillation for text-to-speech "
                                     "(every command and flag: docs/cli.md)")
    parser.add_argument("--version", action="version", version=f"kdtts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, helptext in COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext)
        if name == chosen:
            module = importlib.import_module(f"kdtts.cli.{name}")
            module.add_arguments(p, argv)
            p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not logging.getLogger().handlers:  # progress notes to stderr
        logging.basicConfig(level=logging.INFO, format="kdtts: %(message)s", stream=sys.stderr)
    args = build_parser(argv).parse_args(argv)
    run_reporting_errors(args.func, args)
