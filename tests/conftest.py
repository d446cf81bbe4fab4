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
