"""What a distillation loop reports, each a small callback: the loss CSV, the loss plot, listening
samples, and a user's progress hook. The loop itself (kdtts.distill.train) only trains, validates and
saves its state; everything else listens."""
from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger("kdtts.distill")
MATPLOTLIB_LOCK = threading.Lock()
"""Held while any figure renders: matplotlib's text layout (mathtext tick labels) is not thread-safe,
and the app draws plots while a fine-tune draws its loss curve."""


class Callback:
    """No-op hooks; subclasses override what they need. `row`: step, lr, seconds and losses."""

    def on_step(self, step: int, row: dict) -> None:
        """After every step (running losses)."""

    def on_checkpoint(self, step: int, row: dict) -> None:
        """After each validation (the row adds val_* losses)."""


class CsvLog(Callback):
    """RUN_DIR/loss.csv, one row per validation. On resume, rows after the resumed step are dropped
    (they are trained again), so no step appears twice."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None) -> None:
        self.path, self.columns = path, columns
        kept = list(csv.DictReader(path.open())) if resume_step is not None and path.exists() else []
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(r for r in kept if int(r["step"]) <= (resume_step or 0))

    def on_checkpoint(self, step: int, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)


class LossPlot(Callback):
    """RUN_DIR/loss.png, redrawn from the CSV at each validation."""

    def __init__(self, csv_path: Path, png_path: Path) -> None:
        self.csv_path, self.png_path = csv_path, png_path

    def on_checkpoint(self, step: int, row: dict) -> None:
        try:
            plot_losses(self.csv_path, self.png_path)
        except Exception:  # a picture must never stop a training run
            log.exception("could not draw %s", self.png_path)


class Samples(Callback):
    """A listening sample every `every` steps (and at the last one); `after(path)` once it is written."""

    def __init__(self, every: int, last: int, write: Callable[[Path], None], folder: Path,
                 after: Callable[[Path], None] | None = None) -> None:
        self.every, self.last, self.write, self.folder, self.after = every, last, write, folder, after

    def on_step(self, step: int, row: dict) -> None:
        if step % self.every == 0 or step == self.last:
            path = self.folder / f"step{step:06d}.wav"
            self.write(path)
            if self.after:
                self.after(path)


class Hook(Callback):
    """A caller's functions (the app's progress bar and loss table)."""

    def __init__(self, on_step: Callable[[int, dict], None] | None, on_log: Callable[[int, dict], None] | None) -> None:
        self._step, self._log = on_step, on_log

    def on_step(self, step: int, row: dict) -> None:
        if self._step:
            self._step(step, row)

    def on_checkpoint(self, step: int, row: dict) -> None:
        if self._log:
            self._log(step, row)


def plot_losses(csv_path: Path, png_path: Path) -> None:
    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
    with MATPLOTLIB_LOCK:
        _draw_losses(rows, png_path)


def _draw_losses(rows: list[dict], png_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global figure state

    keys = [k for k in rows[0] if k not in ("step", "lr", "seconds")]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    steps = [int(r["step"]) for r in rows]
    for key in keys:
        values = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
        ax.plot(steps, values, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("distillation losses")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
