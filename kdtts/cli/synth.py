"""`synth`: text to WAV, one per line of a text file, ending with one JSON line of totals; the teacher's
family (kdtts.families) speaks the validated jobs.

The student path (the default teacher's text front end + the exported student on onnxruntime) imports
neither torch nor onnx once the student's export and the teacher's sub-graphs are cached."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from kdtts.cli.common import add_teacher
from kdtts.cli.errors import fail
from kdtts.families import family_of
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.add_argument("--model", choices=["teacher", "student"], default="teacher")
    add_teacher(p)
    p.add_argument("--text")
    p.add_argument("--out", help="WAV file for --text")
    p.add_argument("--text-file", help="one utterance per non-empty line; '-' reads stdin, speaking each line "
                                       "as it arrives")
    p.add_argument("--out-dir", help="folder for 000.wav, 001.wav ... from --text-file")
    p.add_argument("--durations", choices=["student", "teacher"], default="student",
                   help="--model student: whose durations to use; 'teacher' makes the output sample-aligned "
                        "with the teacher's (for aligned listening and PESQ/STOI)")
    p.add_argument("--deterministic", action="store_true", help="teacher noise scales 0 (repeatable output)")
    p.add_argument("--output-raw", action="store_true",
                   help="write 16-bit mono PCM to stdout as it is made (Piper's convention: "
                        "`| aplay -r 22050 -f S16_LE -c 1`); the summary goes to stderr")
    p.add_argument("--threads", type=int, help="torch and onnxruntime intra-op threads")
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--student", help="a shipped tier (small, base) or a student checkpoint path (default: small)")


Job = tuple[str, "Path | None", str]


def jobs(args: argparse.Namespace) -> Iterable[Job]:
    """(text, output path, where the text came from) per utterance, every text validated first; from
    `--text-file -`, each stdin line as it arrives (a bad line is skipped with a note on stderr)."""
    from kdtts.text import TextError, validate

    if (args.text is None) == (args.text_file is None):
        fail("give exactly one of --text or --text-file")
    if args.text is not None and not (args.out or args.output_raw):
        fail("--text needs --out FILE.wav (or --output-raw)")
    if args.text_file is not None and not (args.out_dir or args.output_raw):
        fail("--text-file needs --out-dir DIR (or --output-raw)")
    if args.text_file == "-":
        return _stdin_jobs(args)
    if args.text is not None:
        found = [(args.text, Path(args.out) if args.out else None, "--text")]
    else:
        try:
            raw = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read --text-file {args.text_file}: {error}")
        lines = [(k, line.strip()) for k, line in enumerate(raw.splitlines(), 1) if line.strip()]
        if not lines:
            fail(f"{args.text_file} has no non-empty lines to speak")
        found = [(line, Path(args.out_dir) / f"{i:03d}.wav" if args.out_dir else None, f"{args.text_file} line {k}")
                 for i, (k, line) in enumerate(lines)]
    for text, _, source in found:  # fail fast, before any model is loaded
        try:
            validate(text)
        except TextError as error:
            fail(f"{source}: {error}")
    return found


def _stdin_jobs(args: argparse.Namespace) -> Iterator[Job]:
    from kdtts.text import TextError, validate

    spoken = 0
    for k, line in enumerate(iter(sys.stdin.readline, ""), 1):  # readline: no read-ahead, each line when it comes
        if not line.strip():
            continue
        try:
            validate(line)
        except TextError as error:
            print(f"kdtts: stdin line {k} skipped: {error}", file=sys.stderr)
            continue
        yield line.strip(), Path(args.out_dir) / f"{spoken:03d}.wav" if args.out_dir else None, f"stdin line {k}"
        spoken += 1


def run(args: argparse.Namespace) -> None:
    family = family_of(args.teacher)
    if args.output_raw and not family.streams:
        fail(f"--output-raw streams the {DEFAULT_TEACHER} teacher and its student; "
             f"write WAVs for --teacher {args.teacher}")
    todo = jobs(args)
    family.synth(args, todo)
