"""The models the app serves: one teacher, the default student and any fine-tuned checkpoints.

Loaded once at start-up and shared by every request (onnxruntime sessions and torch modules in
inference mode are safe to call from several threads).
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from pathlib import Path

from kdtts.engine import Engine, Mix
from kdtts.student.checkpoint import SHIPPED_STUDENT, CheckpointError, load_student
from kdtts.student.model import StudentTTS
from kdtts.teachers.piper import PiperTeacher
from kdtts.ui import settings

log = logging.getLogger("kdtts.ui")
NO_STUDENT = ("No student checkpoint is available yet (assets/student.safetensors is missing), so the app "
              "runs teacher-only. Fine-tune one in the Distill tab, or start the app with KDTTS_STUDENT=path.")


def file_key(path: Path) -> str:
    """A short content hash: caches keyed by it never mix two different checkpoints."""
    digest = hashlib.sha1()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


class Service:
    def __init__(self, teacher: PiperTeacher, default_student: Path | None, data: Path) -> None:
        self.teacher = teacher
        self.data = data
        self.checkpoint_dir = data / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = Path(tempfile.mkdtemp(prefix="kdtts-ui-"))
        self.default_path = default_student
        self.id_to_symbol = {i: s for s, ids in teacher.config["phoneme_id_map"].items() for i in ids}
        self._students: dict[tuple[str, float], StudentTTS] = {}
        self._lock = threading.Lock()
        self.default_name = None
        if default_student is not None:
            self.default_name = "shipped" if Path(default_student).resolve() == SHIPPED_STUDENT.resolve() \
                else f"{Path(default_student).stem} (KDTTS_STUDENT)"
            self.student(self.default_name)  # load now: fail at start-up, not on the first request

    @classmethod
    def load(cls) -> "Service":
        return cls(PiperTeacher.load(threads=settings.threads()), settings.student_path(), settings.data_dir())

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoints(self) -> dict[str, Path]:
        """Selectable students: the default one first, then fine-tuned ones (newest first)."""
        found: dict[str, Path] = {}
        if self.default_path is not None:
            found[self.default_name] = Path(self.default_path)
        for path in sorted(self.checkpoint_dir.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True):
            found[path.stem] = path
        return found

    def student(self, name: str | None) -> StudentTTS:
        paths = self.checkpoints()
        if not paths:
            raise CheckpointError(NO_STUDENT)
        if name and name not in paths:
            raise CheckpointError(f"Unknown student checkpoint {name!r}; choose one of {sorted(paths)}.")
        path = paths[name] if name else next(iter(paths.values()))
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key not in self._students:
                self._students[key] = load_student(path, "onnx", settings.threads())
            return self._students[key]

    def engine(self, student_name: str | None = None, need_student: bool = False) -> Engine:
        try:
            student = self.student(student_name)
        except CheckpointError:
            if need_student:
                raise
            student = None
        return Engine(self.teacher, student)

    @property
    def has_student(self) -> bool:
        return bool(self.checkpoints())

    def warm_up(self) -> None:
        """One short synthesis per model, so the first user does not pay for lazy initialisation."""
        engine = self.engine()
        engine.synthesize("Hello.", Mix.of("teacher"))
        if engine.student is not None:
            engine.synthesize("Hello.", Mix.of("student"))
