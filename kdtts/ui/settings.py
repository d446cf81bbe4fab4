"""Where the app keeps its files and which student it shows, from the environment.

* `KDTTS_DATA_DIR`: votes, fine-tuned checkpoints, caches. Default: `/data` when it exists and is
  writable (Hugging Face Spaces persistent storage), else `./kdtts_data`.
* `KDTTS_STUDENT`: the default student: a shipped tier (`small`, `base`) or a checkpoint path; default `small`
  (`assets/student.safetensors`). The other shipped tier is offered beside it.
* `KDTTS_THREADS`: CPU threads for inference (default: the libraries' own choice).
* `KDTTS_LISTEN_PROMPTS`: use only the first N held-out prompts in the blind test (default: all).
* `KDTTS_VOTES_PER_MINUTE`: blind-test votes one visitor may cast per minute (default 6).
* `KDTTS_JOBS_PER_HOUR`: fine-tunes one visitor may start per hour (default 4).
* `KDTTS_MAX_CHECKPOINTS`: fine-tuned checkpoints kept; the oldest is deleted beyond (default 12).
* `KDTTS_GOLD_RATE`: share of blind-test pairs that are gold checks (default 0.125).
* `KDTTS_MAX_DATA_MB`: bytes the data directory may hold; a write past it is refused (default 2048).
* `KDTTS_TRUSTED_PROXIES`: proxies in front of the app whose `X-Forwarded-For` hop is believed
  (default 1 on a Hugging Face Space, `SPACE_ID` set; else 0: the socket's peer address).
* `KDTTS_SECRET`: the per-deployment secret that salts rater ids (default: made once, kept in
  `<data>/secret.key`, readable by the owner only).
* `GRADIO_SERVER_PORT`: the port (default 7860).
* `GRADIO_SERVER_NAME`: the address the server binds. Default: 127.0.0.1 (on a laptop the app is not
  open to the local network), or 0.0.0.0 on a Hugging Face Space (`SPACE_ID` set: its proxy must reach it).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from kdtts.student.header import CheckpointError
from kdtts.student.header import student_path as resolve_student


class SettingsError(RuntimeError):
    """A setting the app cannot start with; the message says what to change."""


def data_dir() -> Path:
    """The data directory, created and checked writable (before any model is loaded)."""
    env = os.environ.get("KDTTS_DATA_DIR")
    if env:
        path = Path(env)
    elif Path("/data").is_dir() and os.access("/data", os.W_OK):
        path = Path("/data/kdtts")
    else:
        path = Path("kdtts_data")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise SettingsError(f"The data directory {path.resolve()} is not writable ({error.strerror}). Votes and "
                            "fine-tuned checkpoints live there: set KDTTS_DATA_DIR to a writable folder.") from None
    return path.resolve()


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def votes_per_minute() -> int:
    return _int_env("KDTTS_VOTES_PER_MINUTE", 6)


def jobs_per_hour() -> int:
    return _int_env("KDTTS_JOBS_PER_HOUR", 4)


def max_checkpoints() -> int:
    return _int_env("KDTTS_MAX_CHECKPOINTS", 12)


def student_path() -> Path | None:
    """The student to show, or None when there is none yet (the app then runs teacher-only)."""
    try:
        path = resolve_student(os.environ.get("KDTTS_STUDENT") or None)
    except CheckpointError as error:  # a tier this checkout lacks
        raise SettingsError(f"KDTTS_STUDENT: {error}") from None
    return path if path.exists() else None


def threads() -> int | None:
    value = os.environ.get("KDTTS_THREADS")
    return int(value) if value else None


def port() -> int:
    return int(os.environ.get("GRADIO_SERVER_PORT", "7860"))


def server_name() -> str:
    name = os.environ.get("GRADIO_SERVER_NAME")
    if name:
        return name
    return "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"


def listen_prompts(prompts: list[str]) -> list[str]:
    value = os.environ.get("KDTTS_LISTEN_PROMPTS")
    return prompts[: int(value)] if value else prompts


def gold_rate() -> float:
    value = os.environ.get("KDTTS_GOLD_RATE")
    return float(value) if value else 0.125


def max_data_bytes() -> int:
    return _int_env("KDTTS_MAX_DATA_MB", 2048) * 2**20


def on_space() -> bool:
    """Running on a Hugging Face Space (its runtime sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


def trusted_proxies() -> int:
    """How many proxies in front of the app append a trusted X-Forwarded-For hop."""
    return _int_env("KDTTS_TRUSTED_PROXIES", 1 if on_space() else 0)


def secret(data: Path) -> bytes:
    """The per-deployment secret: KDTTS_SECRET, else one made once and kept in the data directory (0600)."""
    env = os.environ.get("KDTTS_SECRET")
    if env:
        return env.encode()
    path = Path(data) / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path.read_bytes()
