"""What several commands and the teacher families' CLI hooks share: the `--teacher` flag, a run's config
flags and file, progress bars, the command line as run."""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable

from kdtts.cli.errors import fail
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


def add_run_arguments(p: argparse.ArgumentParser, cls: type) -> None:
    """--config, --out, --resume and one flag per field of `cls` (distill and adversarial)."""
    from kdtts.distill.config import add_arguments as add_config_arguments

    p.add_argument("--config", help=f"JSON file of {cls.__name__} keys; the flags below override it")
    p.add_argument("--out", required=True, help="run folder (checkpoints, curves, samples)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.safetensors")
    add_config_arguments(p.add_argument_group(f"run settings ({cls.__module__}.{cls.__name__})"), cls)


def read_config(cls: type, args: argparse.Namespace):
    """The run's config: the file, then the flags; a bad file or value is one line naming the file."""
    from kdtts.distill.config import from_file, overrides

    try:
        return from_file(cls, args.config, overrides(args, cls))
    except (OSError, ValueError, TypeError) as error:
        fail(f"bad config {args.config or ''}: {error}")


def progress(items: Iterable, desc: str, quiet: bool = False):
    """A progress bar on stderr for two or more utterances (none for one, a stream, or `quiet`)."""
    from tqdm import tqdm

    shown = isinstance(items, list) and len(items) >= 2 and not quiet
    return tqdm(items, desc=desc, unit="utt", disable=not shown, file=sys.stderr)
