"""The one training loop (kdtts.distill.loop), on a task small enough to run in milliseconds: what every
stage relies on (resume, the loss log, stopping, budgets, snapshots) holds for any task."""
from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import torch

from kdtts.distill.budget import StepBudget
from kdtts.distill.loop import Loop, Task, fit, learning_rate


class LineFit(Task):
    """y = 3x - 1 fitted by SGD on batches drawn from the task's own sampler."""

    desc, columns = "line", ["step", "seconds", "loss", "val_loss"]

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), 0.05)
        self.modules, self.optimizers, self.rng = {"model": self.model}, {"opt": self.optimizer}, random.Random(0)
        self.saved: list[tuple[Path, int, dict]] = []
        self.totals: list[int] = []

    def step(self, step: int) -> dict[str, float]:
        x = torch.tensor([[self.rng.uniform(-1, 1)] for _ in range(8)])
        loss = torch.nn.functional.mse_loss(self.model(x), 3 * x - 1)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def validate(self) -> dict[str, float]:
        x = torch.linspace(-1, 1, 11)[:, None]
        with torch.no_grad():
            return {"val_loss": float(torch.nn.functional.mse_loss(self.model(x), 3 * x - 1))}

    def save(self, path: Path, step: int, extra: dict) -> Path:
        self.saved.append((path, step, extra))
        path.write_text(json.dumps({"step": step}))
        return path

    def set_total(self, total: int) -> None:
        self.totals.append(total)


def _run(run_dir: Path, total: int, resume: bool = False, stop_at: int | None = None, **kw) -> tuple[LineFit, Loop]:
    task = LineFit()
    steps: list[int] = []
    loop = fit(task, run_dir, total, 5, resume=resume, progress=False, on_step=lambda step, row: steps.append(step),
               should_stop=(lambda: bool(steps) and steps[-1] >= stop_at) if stop_at else None, **kw)
    return task, loop


def _csv_steps(run_dir: Path) -> list[int]:
    return [int(r["step"]) for r in csv.DictReader((run_dir / "loss.csv").open())]


def test_a_run_stopped_and_resumed_ends_where_a_straight_run_ends(tmp_path):
    straight, _ = _run(tmp_path / "straight", 20)
    _run(tmp_path / "resumed", 20, stop_at=12)  # stopped after step 12: its state is saved there
    assert json.loads((tmp_path / "resumed" / "last.json").read_text())["step"] == 12
    resumed, loop = _run(tmp_path / "resumed", 20, resume=True)
    assert loop.step == 20
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert _csv_steps(tmp_path / "resumed") == _csv_steps(tmp_path / "straight") == [5, 10, 15, 20]


def test_the_loss_log_keeps_each_step_once_when_a_run_resumes_from_an_earlier_checkpoint(tmp_path):
    _run(tmp_path, 20)
    state = json.loads((tmp_path / "last.json").read_text())
    logged = [float(r["val_loss"]) for r in csv.DictReader((tmp_path / "loss.csv").open())]
    assert state["step"] == 20 and state["best_validation"] == min(logged) < logged[0]  # it learns the line
    _run(tmp_path / "other", 10)  # take a checkpoint at step 10 from a second run, then resume from it
    for name in ("last.safetensors", "last.json"):
        (tmp_path / name).write_bytes((tmp_path / "other" / name).read_bytes())
    _run(tmp_path, 20, resume=True)
    assert _csv_steps(tmp_path) == [5, 10, 15, 20]


def test_the_best_checkpoint_follows_validation_and_snapshots_come_on_their_step(tmp_path):
    task, _ = _run(tmp_path, 20, snapshot_every=10)
    best = [(p.name, s) for p, s, extra in task.saved if p.name == "best.safetensors"]
    assert best and best[-1][1] == 20  # the line keeps improving, so the last validation is the best
    assert [p.name for p, _, _ in task.saved if p.name.startswith("step")] == ["step000010.safetensors",
                                                                                "step000020.safetensors"]
    task, _ = _run(tmp_path / "no-best", 10, keep_best=False)
    assert not any(p.name == "best.safetensors" for p, _, _ in task.saved)


def test_a_budget_fits_the_total_and_a_resumed_run_keeps_the_fitted_total(tmp_path):
    budget = StepBudget(deadline=time.monotonic() + 0.6, probe_seconds=0.2, min_steps=10)
    task, loop = _run(tmp_path, 10**9, budget=budget)
    assert budget.total is not None and loop.total == budget.total < 10**9
    assert task.totals == [budget.total]
    assert loop.checkpoint_every == budget.every(budget.total)
    again = StepBudget(deadline=time.monotonic() + 100, probe_seconds=0.2)
    task, loop = _run(tmp_path, 10**9, resume=True, budget=again)
    assert loop.total == budget.total and again.total == budget.total  # not fitted a second time


def test_learning_rate_warms_up_then_falls_to_its_floor():
    class Cfg:
        lr, lr_min, warmup_steps, max_steps = 1e-3, 1e-4, 10, 110

    rates = [learning_rate(Cfg, s) for s in range(120)]
    assert rates[0] == 1e-4 and abs(rates[9] - 1e-3) < 1e-12
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert abs(rates[110] - 1e-4) < 1e-12 and rates[119] == rates[110]
