"""What several commands share: the `--teacher` flag, the vocoder pair, the command line as run."""
from __future__ import annotations

import argparse
import shlex
import sys

from kdtts.teachers.registry import DEFAULT_TEACHER, TEACHERS


def add_teacher(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", default=DEFAULT_TEACHER, choices=list(TEACHERS),
                   help=f"which teacher (default {DEFAULT_TEACHER}; `info` lists them with their availability); "
                        "a vocoder teacher reads the Piper teacher's mel, and its student is the student vocoder")


def chosen_teacher(argv: list[str]) -> str:
    """--teacher alone, read before a command's flags are built: it decides which config distill's flags are."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--teacher", default=DEFAULT_TEACHER)
    return p.parse_known_args(argv)[0].teacher


def command_line() -> str:
    """The command as the user ran it, for a report to say how it was made."""
    return "python -m kdtts " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def vocoder_pair(args: argparse.Namespace):
    """The vocoder teacher and the student vocoder on one mel (kdtts.vocoding.VocoderPair)."""
    from kdtts.vocoding import VocoderPair

    return VocoderPair.load(args.teacher, args.student, args.voice, getattr(args, "threads", None))
