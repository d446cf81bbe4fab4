"""One fine-tune job and what a family's job may ask of the runner that holds it.

The runner (kdtts.distill.finetune.Finetuner) owns the queue, the teacher cache and cleaning up; each teacher
family's job (kdtts.distill.finetune_tts, kdtts.distill.finetune_vocoder) trains and publishes through
`JobHost`'s public members only, so neither job module imports the runner.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from kdtts.distill.finetune_request import FinetuneRequest, builtin_sentences, user_sentences
from kdtts.teachers.piper import PiperTeacher


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
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    run_dir: Path | None = None
    samples: list[tuple[int, Path]] = field(default_factory=list)  # (step, wav) listening samples so far
    owner: str = "local"
    stage: str = ""              # a recipe's stage display ("stage 2/6 front"); empty for one regression
    total: int | None = None     # that stage's steps (a recipe fits them to its budget)
    card: str | None = None      # the model card a recipe wrote, published beside the checkpoint

    @property
    def running(self) -> bool:
        return self.finished is None

    def stopped_before_training(self) -> bool:
        """Whether its owner cancelled it while the teachers read; if so it says so."""
        if self.cancel.is_set():
            self.status, self.message = "cancelled", "cancelled before training started"
        return self.cancel.is_set()

    def progress(self, p: dict) -> None:
        """A recipe's display (kdtts.distill.recipe.Display): the stage, its step, the whole recipe's ETA."""
        stage = f"stage {p['k']}/{p['n']} {p['stage']}"
        if stage != self.stage:
            self.stage, self.rows = stage, []  # the loss curve is the running stage's (a new list: pages read the old)
        self.step, self.total = p["step"], p["total"]
        eta = "?" if p["eta_s"] is None else f"{p['eta_s'] // 60}:{p['eta_s'] % 60:02d}"
        self.message = f"{stage}: {p['step']}/{p['total']}, recipe ETA {eta}"

    def stopped_in_training(self) -> bool:
        """Whether training ended before its steps (a cancel); if so it says so and nothing is to be saved."""
        if self.step < int(self.request.steps):
            self.status = "cancelled"
            self.message = f"cancelled at step {self.step}/{self.request.steps}; nothing was saved"
        return self.step < int(self.request.steps)

    def record(self, step: int, row: dict) -> None:
        """One training step's row: what the page's progress, message and loss curve read."""
        self.rows.append(row)
        self.step = step
        self.message = f"step {step}/{self.request.steps}, loss {row['loss']:.4f}"

    def record_validation(self, step: int, row: dict) -> None:
        """A validation's losses join the step's row (a new dict: a page may be reading the old one)."""
        self.rows[-1] = {**self.rows[-1], **{k: v for k, v in row.items() if k.startswith("val_")}}

    def snapshot(self) -> dict:
        elapsed = (self.finished or time.time()) - self.started
        return {"id": self.id, "status": self.status, "step": self.step, "steps": self.total or int(self.request.steps),
                "stage": self.stage, "card": self.card,
                "message": self.message, "checkpoint": self.checkpoint, "seconds": round(elapsed, 1),
                "running": self.running, "loss": self.rows[-1].get("loss") if self.rows else None,
                "settings": {k: v for k, v in asdict(self.request).items() if k != "text"},
                "user_text": bool(self.request.text.strip()), "recordings": bool(self.request.recordings)}


class JobHost(Protocol):
    """What a family's fine-tune job uses of the runner."""

    teacher: PiperTeacher
    data: Path
    checkpoint_dir: Path  # where fine-tuned text-to-speech students are published
    max_checkpoints: int
    cache_lock: threading.Lock  # one writer per teacher cache

    def checkpoints(self) -> dict[str, Path]: ...
    def read_text(self, job: Job, sentences: list[str]) -> Path: ...
    def new_run_dir(self, job: Job) -> Path: ...


def job_sentences(request: FinetuneRequest) -> list[str]:
    """The text a job trains on: the visitor's own sentences, else the built-in set; at least two."""
    sentences = user_sentences(request.text) if request.text.strip() else builtin_sentences(int(request.sentences))
    if len(sentences) < 2:
        raise ValueError("give at least two sentences of text")
    return sentences
