"""A stage's step count fitted to a wall-clock budget, from its own speed in its first seconds.

The loop runs `probe_seconds`, measures its steps per second (on this machine, with whatever else runs
beside it, such as the teacher still reading the corpus), and sets its total so the stage ends by its
`deadline` (a `time.monotonic()` instant, so time spent loading data before the loop counts too). The fitted total is kept in the stage's resumable state, so a resumed stage is not fitted again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class StepBudget:
    deadline: float              # time.monotonic() at which the stage should end
    probe_seconds: float = 8.0   # how long it runs before it measures its speed
    min_steps: int = 10
    checkpoints: int = 6         # resumable checkpoints (and validations) over the fitted total
    total: int | None = None     # the fitted step total (None until fitted)
    rate: float | None = None    # steps per second measured by the probe

    def fit(self, steps_done: int, elapsed: float, step: int) -> int | None:
        """The stage's new total once the probe has run (`steps_done` steps in `elapsed` seconds this
        sitting, now at `step`); None while probing or once fitted."""
        if self.total is not None or elapsed < self.probe_seconds or steps_done < 2:
            return None
        self.rate = steps_done / elapsed
        left = self.deadline - time.monotonic()
        self.total = max(self.min_steps, step + 1, step + int(self.rate * left))
        return self.total

    def every(self, total: int) -> int:
        """Steps between checkpoints for a fitted total (at least 10: each one validates and saves)."""
        return min(total, max(10, total // self.checkpoints))
