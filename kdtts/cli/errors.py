"""The command line's one error path: a domain error becomes one line on stderr and exit code 2.

Domain errors are the ones whose message tells the user what to fix: bad text (TextError), a bad dataset
(DatasetError), a checkpoint kdtts refuses (CheckpointError), a bad config or flag value (ValueError),
a missing or unreadable file (OSError), and the teachers' and evaluators' own errors. Anything else is a
bug and keeps its traceback; so does every error with KDTTS_DEBUG=1.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_USER_ERROR = 2
# domain errors that are not ValueError/OSError, by module: looked up only in modules already imported
# (an error class whose module was never imported cannot have been raised), so this list imports nothing
_DOMAIN_RUNTIME_ERRORS = (
    ("kdtts.teachers.piper_graph", "TeacherGraphError"),
    ("kdtts.teachers.hifigan", "VocoderUnavailableError"),
    ("kdtts.teachers.tacotron", "TeacherUnavailableError"),
    ("kdtts.evaluate.optional", "MissingEvaluator"),
)


class CliError(Exception):
    """A usage error found by a command itself (e.g. two flags that exclude each other)."""


def fail(message: str) -> None:
    """Stop the command with `message` as its one error line."""
    raise CliError(message)


def user_errors() -> tuple[type[BaseException], ...]:
    found = [getattr(sys.modules[module], name) for module, name in _DOMAIN_RUNTIME_ERRORS if module in sys.modules]
    return (CliError, ValueError, OSError, *found)


def one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def run_reporting_errors(func: Callable[..., object], *args: object) -> None:
    try:
        func(*args)
    except KeyboardInterrupt:
        print("kdtts: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        if os.environ.get("KDTTS_DEBUG") or not isinstance(error, user_errors()):
            raise
        print(f"kdtts: error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
