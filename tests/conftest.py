"""Shared fixtures: the real teacher is loaded once per test session (about 3 s)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def teacher():
    from kdtts.teachers import PiperTeacher

    return PiperTeacher.load(threads=1)


@pytest.fixture(scope="session")
def det_scales(teacher):
    return teacher.default_scales.deterministic()


@pytest.fixture(scope="session")
def random_student_path(tmp_path_factory) -> Path:
    """An untrained student checkpoint: for behaviour that does not depend on training."""
    from kdtts.student.checkpoint import save_student
    from kdtts.student.model import StudentTTS

    torch.manual_seed(0)
    return save_student(StudentTTS(), tmp_path_factory.mktemp("student") / "random.safetensors", {"steps": 0})


@pytest.fixture(scope="session")
def engine(teacher, random_student_path):
    """Teacher + the shipped student when it exists, else an untrained one."""
    from kdtts.engine import Engine
    from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student

    return Engine(teacher, load_student(SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else random_student_path))


def sine(seconds: float = 1.0, rate: int = 22050, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def synthetic_cache(path: Path, utterances: int = 24, ids: int = 12, frames_per_id: int = 2, hop: int = 256) -> Path:
    """Utterances of one length, so each process's masked mean weighs its half of a batch exactly as the
    whole batch's mean does."""
    import json

    from kdtts.distill.data import write_utt

    rng = np.random.default_rng(0)
    (path / "utts").mkdir(parents=True)
    from kdtts.teachers.piper import default_voice

    (path / "teacher.json").write_text(json.dumps({"sample_rate": 22050, "hop_length": hop, "temperature": 0.0,
                                                   "voice": str(default_voice())}))  # for listening samples
    frames = ids * frames_per_id
    with (path / "manifest.jsonl").open("w") as manifest:
        for k in range(utterances):
            row = write_utt(path, f"sentence {k}", rng.integers(3, 100, ids), np.full(ids, frames_per_id),
                            rng.normal(size=(192, frames)).astype(np.float32),
                            (0.3 * np.sin(np.arange(frames * hop) * 0.05 * (1 + k % 5))).astype(np.float32))
            manifest.write(json.dumps(row) + "\n")
    return path
