"""Short distillation fine-tunes launched from the browser: one job at a time, live progress, cancel.

A small loop over the same pieces as `kdtts.distill.train` (batches, KDTrainer, learning-rate
schedule, validation), specialised for a job of a few hundred steps inside the app:
* the app's already-loaded teacher reads the text (no second model load);
* the text is exactly the chosen sentences (a user's own text really is what the student sees);
* progress is reported every step, cancel is checked every step;
* the result is a new named checkpoint under the data directory, never the shipped one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from kdtts.distill.corpus import pydoc_topics, read_heldout, template_sentences
from kdtts.distill.data import CorpusConfig, build_cache, load_cache, read_manifest
from kdtts.distill.train import DistillConfig, learning_rate, segment_batch, utterance_batch, validation_loss
from kdtts.distill.trainer import MODULES, KDTrainer, ModuleCriterion
from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student, save_student
from kdtts.student.model import StudentTTS
from kdtts.ui.service import Service

log = logging.getLogger("kdtts.ui")
MAX_USER_SENTENCES = 500
VALIDATE_EVERY = 25


class Busy(RuntimeError):
    """Another fine-tune is running."""


@dataclass
class FinetuneRequest:
    name: str = ""
    steps: int = 200
    lr: float = 3e-4
    alpha: float = 1.0
    temperature: float = 0.0
    modules: tuple[str, ...] = MODULES
    text: str = ""               # the user's sentences, one per line; empty: the built-in set
    sentences: int = 64          # size of the built-in set
    base: str | None = None      # student to start from (by name in the app); None: the default one
    batch_utts: int = 4
    batch_segments: int = 8
    segment_frames: int = 32
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= int(self.steps) <= 5000:
            raise ValueError("steps must be between 1 and 5000")
        if not 0 < float(self.lr) <= 0.01:
            raise ValueError("learning rate must be in (0, 0.01]")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError("alpha must be in [0, 1]")
        if not 0.0 <= float(self.temperature) <= 1.5:
            raise ValueError("temperature must be in [0, 1.5]")
        if not self.modules or set(self.modules) - set(MODULES):
            raise ValueError(f"choose one or more modules from {MODULES}")


@dataclass
class Job:
    id: str
    request: FinetuneRequest
    status: str = "preparing"    # preparing, training, saving, done, cancelled, failed
    step: int = 0
    message: str = ""
    rows: list[dict] = field(default_factory=list)
    checkpoint: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.finished is None

    def snapshot(self) -> dict:
        elapsed = (self.finished or time.time()) - self.started
        return {"id": self.id, "status": self.status, "step": self.step, "steps": int(self.request.steps),
                "message": self.message, "checkpoint": self.checkpoint, "seconds": round(elapsed, 1),
                "running": self.running, "loss": self.rows[-1]["loss"] if self.rows else None,
                "settings": {k: v for k, v in asdict(self.request).items() if k != "text"},
                "user_text": bool(self.request.text.strip())}


def builtin_sentences(count: int) -> list[str]:
    """Short, plain sentences from the built-in corpus sources (not the held-out set), fixed order."""
    heldout = set(read_heldout())
    pool = sorted({s for s in pydoc_topics() + template_sentences() if 5 <= len(s.split()) <= 10 and s not in heldout},
                  key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return pool[:count]


def user_sentences(text: str) -> list[str]:
    parts = [p.strip() for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line)]
    return [p for p in parts if any(ch.isalpha() for ch in p)][:MAX_USER_SENTENCES]


def checkpoint_name(raw: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", raw.strip()).strip("-")[:60] or time.strftime("finetune-%Y%m%d-%H%M%S")
    name, n = base, 2
    while name in taken or name in ("shipped", "student"):
        name, n = f"{base}-{n}", n + 1
    return name


class FinetuneManager:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self.job: Job | None = None
        self._thread: threading.Thread | None = None
        self._cache_lock = threading.Lock()  # one writer per teacher cache (a job, or the start-up prewarm)

    def start(self, request: FinetuneRequest) -> Job:
        request.validate()
        if request.base and request.base not in self.service.checkpoints():
            raise ValueError(f"Unknown student checkpoint {request.base!r} to start from.")
        with self._lock:
            if self.job is not None and self.job.running:
                raise Busy(f"A fine-tune is already running (step {self.job.step}/{self.job.request.steps}); "
                           "one job at a time. Wait for it to finish, or cancel it.")
            self.job = Job(time.strftime("%Y%m%d-%H%M%S"), request)
            job = self.job
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"finetune-{job.id}", daemon=True)
        self._thread.start()
        return job

    def cancel(self) -> bool:
        job = self.job
        if job is None or not job.running:
            return False
        job.cancel.set()
        job.message = "cancelling…"
        return True

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self) -> dict:
        return self.job.snapshot() if self.job else {"status": "idle", "running": False, "step": 0, "steps": 0,
                                                      "message": "No fine-tune has run yet.", "checkpoint": None}

    # -- the job ---------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            self._train(job)
        except Exception as error:  # noqa: BLE001 - reported to the page, logged in full
            log.error("fine-tune %s failed:\n%s", job.id, traceback.format_exc())
            job.status, job.message = "failed", f"failed: {error}"
        finally:
            job.finished = time.time()

    def _cache(self, job: Job, sentences: list[str]) -> Path:
        """The app's teacher reads the sentences once (cached by content under the data directory)."""
        r = job.request
        key = hashlib.sha1(json.dumps([sentences, r.temperature, str(self.service.teacher.model_path)]).encode()).hexdigest()[:12]
        cache = self.service.data / "finetune_cache" / key
        config = CorpusConfig(cache, len(sentences), None, float(r.temperature), self.service.teacher.model_path)
        job.message = "waiting for the teacher cache"
        with self._cache_lock:
            for start in range(0, len(sentences), 8):
                if job.cancel.is_set():
                    return cache
                job.message = f"the teacher reads the text: {start}/{len(sentences)} sentences"
                build_cache(config, sentences[start:start + 8], teacher=self.service.teacher, progress=False)
        return cache

    def prewarm(self, request: FinetuneRequest | None = None) -> None:
        """Have the teacher read the built-in set at start-up (background), so the first job trains at once."""
        request = request or FinetuneRequest()
        self._cache(Job("prewarm", request), builtin_sentences(int(request.sentences)))

    def _train(self, job: Job) -> None:
        r = job.request
        t0 = time.perf_counter()
        sentences = user_sentences(r.text) if r.text.strip() else builtin_sentences(int(r.sentences))
        if len(sentences) < 2:
            raise ValueError("give at least two sentences of text")
        cache = self._cache(job, sentences)
        if job.cancel.is_set():
            job.status, job.message = "cancelled", "cancelled before training started"
            return
        wanted = set(sentences)
        keep = {i for i, item in enumerate(read_manifest(cache)) if item["text"] in wanted}
        utts = [u for i, u in enumerate(load_cache(cache)) if i in keep]
        if len(utts) < 2:
            raise ValueError("fewer than two of the sentences could be spoken; check the text")
        n_val = max(1, min(8, len(utts) // 5))
        train, val = utts[:-n_val], utts[-n_val:]
        cache_seconds = time.perf_counter() - t0

        base_path = None
        if r.base is not None or self.service.has_student:
            base_path = self.service.checkpoints().get(r.base or "", None) or next(iter(self.service.checkpoints().values()))
        student = load_student(base_path) if base_path else StudentTTS()
        cfg = DistillConfig(max_steps=int(r.steps), lr=float(r.lr), lr_min=float(r.lr) / 10,
                            warmup_steps=min(20, max(1, int(r.steps) // 10)), batch_utts=int(r.batch_utts),
                            batch_segments=int(r.batch_segments), segment_frames=int(r.segment_frames),
                            alpha=float(r.alpha), temperature=float(r.temperature), modules=list(r.modules))
        trainer = KDTrainer(student, None, ModuleCriterion(), cfg.alpha, cfg.temperature, tuple(r.modules), cfg.lr)
        rng = random.Random(r.seed)
        torch.manual_seed(r.seed)
        device = torch.device("cpu")
        job.status = "training"
        running: dict[str, float] = {}
        train_start = time.perf_counter()
        for step in range(int(r.steps)):
            if job.cancel.is_set():
                job.status, job.message = "cancelled", f"cancelled at step {job.step}/{r.steps}; nothing was saved"
                return
            ids, targets = utterance_batch(rng.sample(train, min(cfg.batch_utts, len(train))), device)
            z_seg, a_seg = segment_batch(rng.sample(train, min(cfg.batch_segments, len(train))),
                                         cfg.segment_frames, student.hop_length, rng, device)
            targets.audio = a_seg
            parts = trainer.step(ids, targets, z_seg, lr=learning_rate(cfg, step))
            for k, v in parts.items():
                running[k] = 0.8 * running.get(k, v) + 0.2 * v
            row = {"step": step + 1, "seconds": round(time.perf_counter() - train_start, 2), **running}
            if (step + 1) % VALIDATE_EVERY == 0 or step + 1 == int(r.steps):
                row.update(validation_loss(trainer, val, cfg, device))
            job.rows.append(row)
            job.step = step + 1
            job.message = f"step {job.step}/{r.steps}, loss {running['loss']:.4f}"

        job.status = "saving"
        checkpoints = self.service.checkpoints()
        name = checkpoint_name(r.name, set(checkpoints))
        path = self.service.checkpoint_dir / f"{name}.safetensors"
        if path.resolve() == SHIPPED_STUDENT.resolve() or path.exists():  # never overwrite anything
            raise RuntimeError(f"refusing to overwrite {path}")
        info = {"finetune": {k: v for k, v in asdict(r).items() if k != "text"}, "base": str(base_path) if base_path else None,
                "teacher": str(self.service.teacher.model_path), "sentences": len(utts), "user_text": bool(r.text.strip()),
                "steps": int(r.steps), "final": job.rows[-1], "train_seconds": round(time.perf_counter() - train_start, 1),
                "cache_seconds": round(cache_seconds, 1)}
        save_student(student.eval(), path, info)
        (path.with_suffix(".losses.json")).write_text(json.dumps(job.rows))
        job.checkpoint = str(path)
        job.status = "done"
        job.message = (f"saved checkpoint **{name}** after {r.steps} steps in {time.time() - job.started:.0f} s "
                       f"(teacher reading {cache_seconds:.0f} s); choose it in the Compare tab")
