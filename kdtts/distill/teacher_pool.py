"""The teacher reads the corpus on every core, in the background, while training starts on what is read.

A pool of teacher processes (one onnxruntime thread each) reads the sentences; each worker writes its
utterance files, and one thread in the calling process appends their manifest rows in corpus order, so the
cache stays the one `kdtts.distill.data` writes: an append-only manifest, one voice and temperature. The
reader takes the cache's lock (the same one `build_cache` takes): when another process is filling the
cache, this one writes nothing and the run trains on what that process appends.
"""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

from kdtts.distill.data import claim_cache, read_manifest, read_sentence, unread, write_coverage
from kdtts.teachers.piper import PiperTeacher
from kdtts.voice import Scales

_WORKER: dict = {}


def _start_worker(voice: str | None, cache: str, scales: dict) -> None:
    _WORKER.update(teacher=PiperTeacher.load(voice, threads=1), cache=Path(cache), scales=Scales(**scales))


def _read(text: str) -> dict | None:
    return read_sentence(_WORKER["cache"], _WORKER["teacher"], _WORKER["scales"], text)


class CacheReader:
    """Fills `cache` with the teacher's reading of `sentences` on `processes` cores, in a background thread.

    `count` is what the manifest holds now; `rate` the sentences per second read so far (None before the
    second); `busy_elsewhere` is True when another process holds the cache's lock."""

    def __init__(self, cache: str | Path, sentences: list[str], voice: str | None = None, temperature: float = 0.0,
                 processes: int | None = None) -> None:
        self.cache, self.sentences, self.voice, self.temperature = Path(cache), sentences, voice, temperature
        self.processes = processes or os.cpu_count() or 1
        self.count = min(len(read_manifest(self.cache)), len(sentences))
        self.todo: list[str] = []
        self.target = len(sentences)  # the recipe may lower it once it has measured the teacher's speed
        self.read = 0
        self.first: float | None = None  # when the first sentence came back
        self.busy_elsewhere = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CacheReader:
        (self.cache / "utts").mkdir(parents=True, exist_ok=True)
        self._lock = (self.cache / ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self.busy_elsewhere = True
            return self
        self.todo = unread(self.cache, self.sentences)
        if not self.todo or self.count >= self.target:
            self._lock.close()
            return self
        self._thread = threading.Thread(target=self._run, name="teacher-pool", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def rate(self) -> float | None:
        """Sentences per second since the first came back (the pool's start-up is paid once, not per sentence)."""
        if self.read < 2 or self.first is None:
            return None
        return (self.read - 1) / max(time.perf_counter() - self.first, 1e-9)

    def refresh(self) -> int:
        """Count the manifest again (what another process appended); the count."""
        self.count = min(len(read_manifest(self.cache)), len(self.sentences))
        return self.count

    def wait_for(self, utterances: int, poll: float = 0.5, timeout: float | None = None) -> int:
        """Block until the manifest holds `utterances` (or the reading ended, or `timeout` seconds passed);
        the count it holds. When another process holds the cache, wait on its rows, and read the rest here
        once it lets go."""
        end = time.monotonic() + timeout if timeout is not None else float("inf")
        while self.busy_elsewhere and self.refresh() < utterances and time.monotonic() < end:
            time.sleep(poll)
            self.busy_elsewhere = False
            self.start()
        while self.running and self.count < utterances and time.monotonic() < end:
            time.sleep(poll)
        if self.error is not None:
            raise RuntimeError(f"the teacher pool failed: {self.error}") from self.error
        return self.count if self.running else self.refresh()

    def stop(self) -> None:
        """Stop after the sentences in flight (their rows are written); the cache stays resumable."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            teacher = PiperTeacher.load(self.voice, threads=1)
            scales = claim_cache(self.cache, teacher, self.temperature)
            context = multiprocessing.get_context("spawn")  # the parent holds torch's threads: never fork them
            with context.Pool(self.processes, _start_worker,
                              (self.voice, str(self.cache), scales.__dict__)) as pool, \
                    (self.cache / "manifest.jsonl").open("a") as manifest:
                for row in pool.imap(_read, self.todo, chunksize=1):
                    self.read += 1
                    self.first = self.first or time.perf_counter()
                    if row is not None:
                        manifest.write(json.dumps(row) + "\n")
                        manifest.flush()
                        self.count += 1
                    if self._stop.is_set() or self.count >= self.target:
                        pool.terminate()
                        break
            write_coverage(self.cache, teacher.config["phoneme_id_map"],
                           teacher.spec.hop_length / teacher.spec.sample_rate)
        except BaseException as error:  # noqa: BLE001 - reported by wait_for in the training thread
            self.error = error
        finally:
            self._lock.close()
