"""The one training loop: every stage of every family steps through it.

A stage (the regression of a TTS student's modules, the adversarial stage of a decoder, a student
vocoder's regression) is a `Task`: its networks, optimizers and sampler, one update, one validation and
how it saves its student. The loop owns everything that must not drift between stages:

- the step count, and its fit to a wall-clock budget (kdtts.distill.budget) from the first seconds' speed;
- the resumable state (`RUN_DIR/last.safetensors` + `last.json`: modules, optimizers, the sampler's RNG,
  the step, the best validation, the time spent, the fitted total), written atomically at each checkpoint
  and when the run stops, so a killed or cancelled run resumes where it was;
- validation at each checkpoint, the best student (`best.safetensors`) and whole-student snapshots
  (`stepNNNNNN.safetensors`, for choosing by evaluation);
- one loss log (`loss.csv`, a row per validation; on resume the rows after the resumed step are dropped)
  and its plot, listening samples and a caller's hooks, as callbacks (kdtts.distill.callbacks);
- the progress bar, and data parallelism: every rank steps (the task averages gradients through
  kdtts.distill.parallel), all ranks agree on a fitted total, rank 0 validates and writes.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm import tqdm

from kdtts.distill import parallel
from kdtts.distill.budget import StepBudget
from kdtts.distill.callbacks import Callback, CsvLog, Hook, LossPlot
from kdtts.distill.state import load_state, save_state


class Schedule(Protocol):
    lr: float
    lr_min: float
    warmup_steps: int
    max_steps: int


def learning_rate(cfg: Schedule, step: int) -> float:
    """Linear warm-up to `lr`, then a cosine to `lr_min` at `max_steps` (flat after): every regression
    stage's schedule."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))


class Task:
    """One stage's training, stepped by `Loop`. Subclasses set the attributes and override `step`,
    `validate` and `save`; `set_total` where a schedule follows the step total."""

    desc = "training"
    smoothing = 0.9                         # the running losses: an exponential average with this decay
    modules: dict[str, nn.Module]           # what the resumable state holds
    optimizers: dict[str, torch.optim.Optimizer]
    rng: random.Random                      # the sampler; the same stream on every rank (they split one batch)
    columns: list[str]                      # loss.csv's columns

    def step(self, step: int) -> dict[str, float]:
        """One update at `step` (0-based); its losses (and `lr` where it has a schedule)."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """Held-out losses, each named `val_*`; their sum decides the best checkpoint."""
        raise NotImplementedError

    def save(self, path: Path, step: int, extra: dict) -> Path:
        """The student as it is now, with what it was trained on and `extra` in its info."""
        raise NotImplementedError

    def set_total(self, total: int) -> None:
        """The step total changed (a budget fitted it); a schedule follows."""

    def before_checkpoint(self, step: int) -> None:
        """On every rank, before each checkpoint (a growing cache's new utterances join here)."""

    def postfix(self, running: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{running['loss']:.3f}"}


class Loop:
    """Steps `task` to `total`, checkpointing every `checkpoint_every` steps into `run_dir`."""

    def __init__(self, task: Task, run_dir: Path, total: int, checkpoint_every: int, *,
                 snapshot_every: int | None = None, keep_best: bool = True, budget: StepBudget | None = None,
                 callbacks: list[Callback] | None = None) -> None:
        self.task, self.run_dir, self.total, self.checkpoint_every = task, Path(run_dir), total, checkpoint_every
        self.snapshot_every, self.keep_best, self.budget = snapshot_every, keep_best, budget
        self.callbacks = callbacks or []
        self.rank = parallel.rank()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step, self.best, self.seconds_before = 0, float("inf"), 0.0
        self.started = time.perf_counter()
        self.last_validation: dict[str, float] = {}
        self.stopped = False

    def report(self, on_step: Callable[[int, dict], None] | None = None,
               on_log: Callable[[int, dict], None] | None = None, resumed: bool = False) -> None:
        """The standard reporting, on rank 0: loss.csv, loss.png and the caller's hooks (on_step(step, row)
        after every step, on_log(step, row) after every validation, the row adding val_*)."""
        if self.rank > 0:
            return
        csv_path = self.run_dir / "loss.csv"
        self.callbacks += [CsvLog(csv_path, self.task.columns, self.step if resumed else None),
                           LossPlot(csv_path, self.run_dir / "loss.png"), Hook(on_step, on_log)]

    def restore(self) -> bool:
        """Continue from RUN_DIR's last state if there is one; True if there was."""
        if not (self.run_dir / "last.safetensors").exists():
            return False
        meta = load_state(self.run_dir, self.task.modules, self.task.optimizers, self.task.rng)
        self.step, self.seconds_before = meta["step"], meta.get("seconds", 0.0)
        self.best = meta.get("best_validation", self.best)
        if meta.get("fitted_total"):  # a budgeted stage keeps the total it fitted before the kill
            self._set_total(meta["fitted_total"])
            if self.budget is not None:
                self.budget.total = self.total
        return True

    def save_state(self) -> None:
        fitted = self.budget.total if self.budget is not None else None
        save_state(self.run_dir, self.task.modules, self.task.optimizers, self.task.rng,
                   {"step": self.step, "best_validation": self.best, "seconds": self.seconds,
                    "fitted_total": fitted})

    @property
    def seconds(self) -> float:
        """Training time over every sitting."""
        return round(time.perf_counter() - self.started, 1)

    def _set_total(self, total: int) -> None:
        self.total = total
        if self.budget is not None:
            self.checkpoint_every = self.budget.every(total)
            if self.snapshot_every:
                self.snapshot_every = self.checkpoint_every
        self.task.set_total(total)

    def run(self, should_stop: Callable[[], bool] | None = None, progress: bool = True) -> bool:
        """Train to `total` steps; True if `should_stop` ended the run early. The state is saved either way."""
        bar = tqdm(total=self.total, initial=self.step, desc=self.task.desc, unit="step",
                   disable=not progress or self.rank > 0)
        self.started = time.perf_counter() - self.seconds_before  # elapsed time continues on resume
        sitting_start, sitting_clock = self.step, time.perf_counter()
        running: dict[str, float] = {}
        stopped = False
        while self.step < self.total:
            if should_stop and should_stop():
                stopped = True
                break
            parts = self.task.step(self.step)
            self.step += 1
            decay = self.task.smoothing
            running = {k: v if k == "lr" else decay * running.get(k, v) + (1 - decay) * v for k, v in parts.items()}
            bar.update(1)
            bar.set_postfix(self.task.postfix(running))
            row = {"step": self.step, "seconds": round(time.perf_counter() - self.started, 2), **running}
            if self.budget is not None and self.budget.total is None:  # rank 0 measures; all fit at one step
                fitted = self.budget.fit(self.step - sitting_start, time.perf_counter() - sitting_clock,
                                         self.step) if self.rank == 0 else None
                fitted = parallel.agree(fitted or 0)
                if fitted:
                    self.budget.total = fitted
                    self._set_total(fitted)
                    bar.total = self.total
            for callback in self.callbacks:
                callback.on_step(self.step, row)
            if self.step % self.checkpoint_every == 0 or self.step == self.total:
                self.task.before_checkpoint(self.step)
                if self.rank == 0:
                    self._checkpoint(row)
            if self.rank == 0 and self.snapshot_every and self.step % self.snapshot_every == 0:
                self.task.save(self.run_dir / f"step{self.step:06d}.safetensors", self.step, {})
        bar.close()
        if self.rank == 0:
            self.save_state()
        return stopped

    def _checkpoint(self, row: dict) -> None:
        val = self.last_validation = self.task.validate()
        row = {**row, "seconds": round(row["seconds"], 1), **val}  # a new dict: callers may hold the step's row
        total_val = sum(val.values())
        if self.keep_best and total_val < self.best:
            self.best = total_val
            self.task.save(self.run_dir / "best.safetensors", self.step, {"validation": val})
        self.save_state()
        for callback in self.callbacks:
            callback.on_checkpoint(self.step, row)


def fit(task: Task, run_dir: Path, total: int, checkpoint_every: int, *, resume: bool = False,
        should_stop: Callable[[], bool] | None = None, progress: bool = True,
        on_step: Callable[[int, dict], None] | None = None, on_log: Callable[[int, dict], None] | None = None,
        callbacks: list[Callback] | None = None, **settings) -> Loop:
    """A stage's whole run: resume if asked and there is a state, report, train (`loop.stopped`: whether
    `should_stop` ended it). `settings`: Loop's snapshot_every, keep_best, budget."""
    loop = Loop(task, run_dir, total, checkpoint_every, **settings)
    resumed = resume and loop.restore()
    loop.report(on_step, on_log, resumed)
    if loop.rank == 0:
        loop.callbacks += callbacks or []
    loop.stopped = loop.run(should_stop, progress)
    return loop
