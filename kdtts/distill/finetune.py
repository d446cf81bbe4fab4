"""Short distillation fine-tunes (the app's Distill tab, and benchmarks/finetune_speed.py): one job at a
time, live progress, cancel by its owner.

The runner is the same for every teacher family; the job itself is the family's (`kdtts.families`:
kdtts.distill.finetune_tts trains the text-to-speech student, kdtts.distill.finetune_vocoder the student
vocoder), through the runner's public members (kdtts.distill.finetune_job.JobHost). A text-to-speech job is
`kdtts.distill.train.distill()` (the same loop as `python -m kdtts distill`) with:
* an already-loaded teacher, which reads the text once into a cache keyed by its content
  (in chunks, so progress shows and cancel works while it reads);
* exactly the chosen sentences as the training text (a user's own text really is what the student sees);
* per-step progress into the job, cancel checked every step;
* its run directory under `<data>/finetune_runs/<job id>` (config, loss.csv/png, sample, state);
* the result copied to a new named checkpoint in `<data>/checkpoints`, never overwriting anything and
  never the shipped one; then the run directory (and the teacher's reading of a visitor's own text)
  is deleted. A cancelled job saves nothing: its run directory is removed and no checkpoint is written.
  Run folders left by a killed process are removed at the next start.

Bounds: one running job, at most MAX_USER_CHARS of a user's text, `max_checkpoints` fine-tuned
checkpoints kept (oldest deleted). Only whoever started a job holds its owner key, which cancelling needs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from kdtts.distill.finetune_job import Job
from kdtts.distill.finetune_request import MAX_USER_CHARS, Busy, FinetuneRequest, builtin_sentences
from kdtts.families import family_of
from kdtts.teachers.piper import PiperTeacher

log = logging.getLogger("kdtts.distill")
MAX_QUEUED = 4  # fine-tunes waiting behind the running one
CACHE_IDLE_S = 3600  # a teacher cache of the built-in text unused this long is deleted by sweep()
UPLOAD_GRACE_S = 600  # an upload folder no job holds after this long is an orphan (sweep() deletes it)
__all__ = ["MAX_USER_CHARS", "Busy", "FinetuneRequest", "Finetuner", "Job"]
def _remove(path: Path) -> int:
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    shutil.rmtree(path, ignore_errors=True)
    return size


class Finetuner:
    """Runs fine-tunes one at a time with `teacher`, keeping runs and caches under `data_dir` and
    publishing results into `data_dir/checkpoints`.

    checkpoints(): the students a job may start from, by name (the default one first)."""

    def __init__(self, teacher: PiperTeacher, data_dir: Path, checkpoints: Callable[[], dict[str, Path]],
                 max_checkpoints: int = 12) -> None:
        self.teacher, self.data, self.checkpoints = teacher, Path(data_dir), checkpoints
        self.checkpoint_dir = self.data / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.max_checkpoints = max_checkpoints
        self._lock = threading.Lock()
        self.job: Job | None = None
        self._thread: threading.Thread | None = None
        self.queue: list[Job] = []
        self.cache_lock = threading.Lock()  # one writer per teacher cache (a job, or the start-up prewarm)
        self._caches_in_use: set[Path] = set()
        # whatever a killed process left: run folders and the teacher's readings of users' text
        shutil.rmtree(self.data / "finetune_runs", ignore_errors=True)
        shutil.rmtree(self.data / "finetune_samples", ignore_errors=True)
        for orphan in (self.data / "finetune_cache").glob("user-*"):
            shutil.rmtree(orphan, ignore_errors=True)

    def start(self, request: FinetuneRequest, admit: Callable[[], None] | None = None, owner: str = "local") -> Job:
        """Start a job, or queue it behind the running one (at most MAX_QUEUED wait, one per owner); the
        returned job's `secret` is needed to cancel it. `admit` (a quota check) runs once the job is
        known to be acceptable, and may raise to refuse it."""
        request.validate()
        family = family_of(request.teacher)
        family.check_finetune(request)
        if request.base and request.base not in family.finetune_bases(self):
            raise ValueError(f"Unknown {family.student} {request.base!r} to start from.")
        with self._lock:
            busy = self._refuse_busy(owner)
            if admit:
                admit()
            job = Job(time.strftime("%Y%m%d-%H%M%S"), request, owner=owner)
            if busy:
                job.status, job.message = "queued", f"waiting: position {len(self.queue) + 1}"
                self.queue.append(job)
            else:
                self._launch(job)
        return job

    def check_room(self, owner: str = "local") -> None:
        """Busy when a start by `owner` would be refused for lack of room (before an upload is written)."""
        with self._lock:
            self._refuse_busy(owner)

    def _refuse_busy(self, owner: str) -> bool:
        """Whether a job runs; Busy when `owner` has one already or the queue is full (the caller holds the lock)."""
        busy = self.job is not None and self.job.running
        if busy and owner in {self.job.owner, *(j.owner for j in self.queue)}:
            raise Busy("You already have a fine-tune running or waiting; one at a time per visitor.")
        if busy and len(self.queue) >= MAX_QUEUED:
            raise Busy(f"A fine-tune is already running and {MAX_QUEUED} are waiting; try again in a few minutes.")
        return busy

    def sweep(self, aggressive: bool = False) -> int:
        """Delete upload folders no job holds, and teacher caches of the built-in text unused for
        CACHE_IDLE_S (every one not in use, when `aggressive`); return the bytes freed."""
        with self._lock:
            jobs = [j for j in [self.job, *self.queue] if j is not None and j.running]
            held = {Path(j.request.recordings).resolve() for j in jobs if j.request.recordings}
            in_use = set(self._caches_in_use)
        now, freed = time.time(), 0
        for folder in (self.data / "finetune_uploads").glob("*"):
            if folder.resolve() not in held and now - folder.stat().st_mtime > UPLOAD_GRACE_S:
                freed += _remove(folder)
        default = self._cache_path(FinetuneRequest(), builtin_sentences(int(FinetuneRequest().sentences)))
        for cache in (self.data / "finetune_cache").glob("*"):
            idle = now - cache.stat().st_mtime
            if cache in in_use or cache == default or cache.name.startswith("user-"):
                continue  # user-* caches go with their job (and at start-up)
            if aggressive or idle > CACHE_IDLE_S:
                freed += _remove(cache)
        return freed

    def _launch(self, job: Job) -> None:
        """Run `job` now (the caller holds the lock)."""
        shutil.rmtree(self.data / "finetune_samples", ignore_errors=True)  # the previous job's
        job.status, job.message, job.started = "preparing", "starting", time.time()
        self.job = job
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"finetune-{job.id}", daemon=True)
        self._thread.start()

    def position(self, secret: str | None) -> int | None:
        """1-based place in the queue of the job with this owner key, or None."""
        with self._lock:
            for i, job in enumerate(self.queue, 1):
                if secret and secrets.compare_digest(str(secret), job.secret):
                    return i
        return None

    def cancel(self, secret: str | None = None) -> bool:
        """Cancel the running or a waiting job whose owner key is `secret`; False when nothing runs."""
        with self._lock:
            for job in self.queue:
                if secret and secrets.compare_digest(str(secret), job.secret):
                    self.queue.remove(job)
                    job.status, job.message, job.finished = "cancelled", "cancelled while waiting", time.time()
                    return True
        job = self.job
        if job is None or not job.running:
            return False
        if not secret or not secrets.compare_digest(str(secret), job.secret):
            raise ValueError("Only the visitor who started this fine-tune can cancel it (wrong or missing owner key).")
        job.cancel.set()
        job.message = "cancelling…"
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Until the running job and every waiting one have finished (or `timeout` seconds)."""
        end = None if timeout is None else time.time() + timeout
        while self._thread is not None:
            thread = self._thread
            thread.join(None if end is None else max(0.0, end - time.time()))
            if thread is self._thread or (end is not None and time.time() >= end):
                return

    def state(self) -> dict:
        state = self.job.snapshot() if self.job else {"status": "idle", "running": False, "step": 0, "steps": 0,
                                                       "message": "No fine-tune has run yet.", "checkpoint": None}
        return {**state, "waiting": len(self.queue)}

    # -- the job ---------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            family_of(job.request.teacher).finetune(self, job)
        except Exception as error:  # reported to the page, logged in full
            log.error("fine-tune %s failed:\n%s", job.id, traceback.format_exc())
            job.status, job.message = "failed", f"failed: {error}"
        finally:
            if job.run_dir is not None:
                shutil.rmtree(job.run_dir, ignore_errors=True)
            if job.request.text.strip() or job.request.recordings:  # a user's text and voice are not kept
                for cache in (self.data / "finetune_cache").glob("user-*"):
                    shutil.rmtree(cache, ignore_errors=True)
            if job.request.recordings and Path(job.request.recordings).resolve().is_relative_to(self.data.resolve()):
                shutil.rmtree(job.request.recordings, ignore_errors=True)
            job.finished = time.time()
            with self._lock:  # the next in the queue
                self._caches_in_use.clear()
                if self.queue:
                    self._launch(self.queue.pop(0))

    def read_text(self, job: Job, sentences: list[str]) -> Path:
        """The teacher reads the sentences once (cached by content under the data directory)."""
        from kdtts.distill.data import build_cache  # torch: imported by the first job, not at the app's start

        r = job.request
        cache = self._cache_path(r, sentences)
        job.message = "waiting for the teacher cache"
        with self._lock:
            self._caches_in_use.add(cache)
        with self.cache_lock:
            for start in range(0, len(sentences), 8):
                if job.cancel.is_set():
                    return cache
                job.message = f"the teacher reads the text: {start}/{len(sentences)} sentences"
                build_cache(cache, sentences[start:start + 8], self.teacher, float(r.temperature), progress=False)
        cache.touch()  # used now: sweep() keeps a cache for CACHE_IDLE_S after its last use
        return cache

    def _cache_path(self, r: FinetuneRequest, sentences: list[str]) -> Path:
        key = hashlib.sha1(json.dumps([sentences, r.temperature, str(self.teacher.model_path)]).encode()).hexdigest()[:12]
        return self.data / "finetune_cache" / (f"user-{key}" if r.text.strip() else key)

    def prewarm(self, request: FinetuneRequest | None = None) -> None:
        """Have the teacher read the built-in set (background), so the first job trains at once."""
        request = request or FinetuneRequest()
        self.read_text(Job("prewarm", request), builtin_sentences(int(request.sentences)))

    def new_run_dir(self, job: Job) -> Path:
        runs = self.data / "finetune_runs"
        path, n = runs / job.id, 2
        while path.exists():
            path, n = runs / f"{job.id}-{n}", n + 1
        return path
