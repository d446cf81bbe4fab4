"""Where the app keeps its files and which student it shows, from the environment.

* `KDTTS_DATA_DIR`: votes, fine-tuned checkpoints, caches. Default: `/data` when it exists and is
  writable (Hugging Face Spaces persistent storage), else `./kdtts_data`.
* `KDTTS_STUDENT`: the student checkpoint to show; default the shipped `assets/student.safetensors`.
* `KDTTS_THREADS`: CPU threads for inference (default: the libraries' own choice).
* `KDTTS_LISTEN_PROMPTS`: use only the first N held-out prompts in the blind test (default: all).
* `GRADIO_SERVER_PORT`: the port (default 7860).
"""
from __future__ import annotations

import os
from pathlib import Path

from kdtts.student.checkpoint import SHIPPED_STUDENT


def data_dir() -> Path:
    env = os.environ.get("KDTTS_DATA_DIR")
    if env:
        path = Path(env)
    elif Path("/data").is_dir() and os.access("/data", os.W_OK):
        path = Path("/data/kdtts")
    else:
        path = Path("kdtts_data")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def student_path() -> Path | None:
    """The student to show, or None when there is none yet (the app then runs teacher-only)."""
    env = os.environ.get("KDTTS_STUDENT")
    path = Path(env) if env else SHIPPED_STUDENT
    return path if path.exists() else None


def threads() -> int | None:
    value = os.environ.get("KDTTS_THREADS")
    return int(value) if value else None


def port() -> int:
    return int(os.environ.get("GRADIO_SERVER_PORT", "7860"))


def listen_prompts(prompts: list[str]) -> list[str]:
    value = os.environ.get("KDTTS_LISTEN_PROMPTS")
    return prompts[: int(value)] if value else prompts
