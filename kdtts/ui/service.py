"""The models the app serves: one teacher, the default student and any fine-tuned checkpoints.

Loaded once at start-up and shared by every request (onnxruntime sessions and torch modules in
inference mode are safe to call from several threads).
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from kdtts.distill.publish import published
from kdtts.engine import Chunk, Engine, Mix, Synthesis
from kdtts.student.header import CheckpointError, shipped_tiers
from kdtts.student.onnx_student import load_fast
from kdtts.teachers.piper import PiperTeacher
from kdtts.ui import settings
from kdtts.ui.costs import BlindPrompts, check_cost
from kdtts.ui.storage import DataBudget, served_folder, sweep_dead_served_folders
from kdtts.voice import Scales, Voice

log = logging.getLogger("kdtts.ui")
T = TypeVar("T")
TEACHER_NICE = 5
"""The teacher's threads' niceness (Linux weights nice 5 at a third of nice 0): below the request threads."""
NO_STUDENT = ("No student checkpoint is available yet (assets/student.safetensors is missing), so the app "
              "runs teacher-only. Fine-tune one in the Distill tab, or start the app with KDTTS_STUDENT=path.")


def lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority (Linux: a thread is a task with its own niceness; threads it
    starts inherit it). A no-op where the OS has no per-thread priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def file_key(path: Path) -> str:
    """A short content hash: caches keyed by it never mix two different checkpoints. Memoised by the
    file's size and modification time, because the blind test asks for it on every pair."""
    stat = Path(path).stat()
    return _content_key(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _content_key(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


MAX_LOADED_STUDENTS = 4  # fine-tuned students kept in memory (least recently used evicted); the default stays
OUTPUT_MAX_AGE_S = 1800  # served WAVs and plots live at most this long (the README's promise)
CLEAN_EVERY_S = 60       # how often the served folder is cleaned (so a file goes before OUTPUT_MAX_AGE_S)
SWEEP_EVERY_S = 600      # how often the data directory is swept (kdtts.ui.storage)


class Service:
    """Models, the data directory (private: never served) and the output folder (the only one served)."""

    def __init__(self, teacher: PiperTeacher, default_student: Path | None, data: Path) -> None:
        self.teacher = teacher
        self.data = data
        self.checkpoint_dir = data / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        sweep_dead_served_folders()  # a killed process's served files
        self.out_dir = served_folder()
        atexit.register(shutil.rmtree, self.out_dir, True)
        self.storage = DataBudget(data, settings.max_data_bytes())
        self.blind = BlindPrompts()
        self.default_path = default_student
        self.id_to_symbol = {i: s for s, ids in teacher.config["phoneme_id_map"].items() for i in ids}
        self._students: OrderedDict[tuple[str, float], Voice] = OrderedDict()
        self._lock = threading.Lock()
        # at most two syntheses per side at once: the teacher's requests never hold up the student's
        self._slots = {"teacher": threading.BoundedSemaphore(2), "student": threading.BoundedSemaphore(2)}
        self._teacher_threads = ThreadPoolExecutor(2, "teacher", initializer=lower_priority, initargs=(TEACHER_NICE,))
        self.default_name = None
        if default_student is not None:
            tier = {path.resolve(): name for name, path in shipped_tiers().items()}.get(Path(default_student).resolve())
            self.default_name = tier or f"{Path(default_student).stem} (KDTTS_STUDENT)"
            self.student(self.default_name)  # load now: fail at start-up, not on the first request

    @classmethod
    def load(cls) -> Service:
        data = settings.data_dir()  # checked first: a bad data directory fails before the teacher loads
        return cls(PiperTeacher.load(threads=settings.threads()), settings.student_path(), data)

    @contextlib.contextmanager
    def slot(self, mix: Mix) -> Iterator[None]:
        """Hold a synthesis slot: the teacher's when any module is the teacher's, else the student's."""
        with self._slots[self._side(mix)]:
            yield

    @staticmethod
    def _side(mix: Mix) -> str:
        return "teacher" if "teacher" in (mix.duration, mix.front, mix.decoder) else "student"

    def admit(self, text: str, scales: Scales | None = None) -> None:
        """Phonemise and price a request before it waits for a slot: TextError for one that costs too much
        or would unblind a blind-test pair. The synthesis reuses the phonemes (kdtts.text remembers them)."""
        utterances = self.teacher.phonemizer(text)
        check_cost(utterances, (scales or self.teacher.default_scales).length)
        self.blind.check(utterances)

    def synthesize(self, engine: Engine, text: str, mix: Mix, scales: Scales | None = None) -> Synthesis:
        self.admit(text, scales)
        with self.slot(mix):
            return self._run(mix, engine.synthesize, text, mix, scales)

    def stream(self, engine: Engine, text: str, mix: Mix, scales: Scales | None = None) -> Iterator[Chunk]:
        """`Engine.stream` in a synthesis slot, held until the last chunk (or until the listener leaves); the
        request is priced and checked against the blind test's prompts first, as every synthesis is."""
        self.admit(text, scales)
        with self.slot(mix):
            chunks, done = engine.stream(text, mix, scales), object()
            while (chunk := self._run(mix, next, chunks, done)) is not done:
                yield chunk

    def _run(self, mix: Mix, fn: Callable[..., T], *args) -> T:
        """Teacher work runs on the teacher's own threads, at a lower CPU priority than the request threads:
        on a busy two-core Space the scheduler gives the student's requests the CPU first (its compute is
        milliseconds) and the teacher's take what is left. Nothing changes on an idle machine."""
        if self._side(mix) == "teacher":
            return self._teacher_threads.submit(fn, *args).result()
        return fn(*args)

    def clean_outputs_forever(self, every: float = CLEAN_EVERY_S) -> None:
        """Served files go before OUTPUT_MAX_AGE_S; the data directory is swept every SWEEP_EVERY_S."""
        self.storage.sweep()  # at start-up: what a killed process left
        last_sweep = time.monotonic()
        while True:
            time.sleep(every)
            self.clean_outputs(OUTPUT_MAX_AGE_S - every)
            if time.monotonic() - last_sweep >= SWEEP_EVERY_S:
                self.storage.sweep()
                sweep_dead_served_folders()
                last_sweep = time.monotonic()

    def clean_outputs(self, max_age: float = OUTPUT_MAX_AGE_S) -> int:
        """Delete served files older than `max_age` seconds; return how many."""
        cutoff, removed = time.time() - max_age, 0
        for path in self.out_dir.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                pass
        return removed

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoints(self) -> dict[str, Path]:
        """Selectable students: the default one first, then the other shipped tiers, then fine-tuned ones
        (newest first). With no default student (teacher-only) no tier is offered either."""
        found: dict[str, Path] = {}
        if self.default_path is not None:
            found[self.default_name] = Path(self.default_path)
            found |= {name: path for name, path in shipped_tiers().items() if name not in found}
        return found | published(self.checkpoint_dir)

    def vocoder_checkpoints(self) -> dict[str, Path]:
        """Selectable student vocoders: the shipped one, then fine-tuned ones (newest first)."""
        from kdtts.distill.publish import vocoder_checkpoints

        return vocoder_checkpoints(self.data)

    def student(self, name: str | None) -> Voice:
        paths = self.checkpoints()
        if not paths:
            raise CheckpointError(NO_STUDENT)
        if name and name not in paths:
            raise CheckpointError(f"Unknown student checkpoint {name!r}; choose one of {sorted(paths)}.")
        path = paths[name] if name else next(iter(paths.values()))
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key not in self._students:
                self._students[key] = load_fast(path, settings.threads())
            self._students.move_to_end(key)
            default = str(self.default_path) if self.default_path else None
            evictable = [k for k in self._students if k[0] != default]
            for old in evictable[:max(0, len(evictable) - MAX_LOADED_STUDENTS)]:
                del self._students[old]
            return self._students[key]

    def engine(self, student_name: str | None = None, need_student: bool = False) -> Engine:
        """The teacher with the named student. Teacher-only only when no student exists at all and none
        is asked for by name; an unknown or broken checkpoint is an error that names it."""
        if not student_name and not need_student and not self.has_student:
            return Engine(self.teacher, None)
        return Engine(self.teacher, self.student(student_name))

    @property
    def has_student(self) -> bool:
        return bool(self.checkpoints())

    def warm_up(self) -> None:
        """Every teacher session and one short synthesis per model, so the first user does not pay for
        lazy initialisation."""
        engine = self.engine()
        self._teacher_threads.submit(self.teacher.warm).result()  # its sessions' own threads inherit the priority
        self._run(Mix.of("teacher"), engine.synthesize, "Hello.", Mix.of("teacher"))
        if engine.student is not None:
            engine.synthesize("Hello.", Mix.of("student"))
