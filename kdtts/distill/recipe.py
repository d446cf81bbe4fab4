"""One command distils a voice: a recipe (a JSON file in configs/) runs every stage in order, each from
the one before, resumably, within a wall-clock budget.

    python -m kdtts distill --recipe small --out DIR [--voice X.onnx] [--hours H] [--resume]

Stages (`kind`): `cache` (the teacher reads the corpus on every core, in the background, while the
training stages start on what is read), `distill` (DistillConfig keys), `adversarial` (AdversarialConfig
keys), `compose`, `calibrate` (the student's level folded to the teacher's, kdtts.distill.loudness),
`export` (ONNX, checked against PyTorch), `evaluate` (the teacher in the same run).
Each stage keeps its state under DIR/<k>-<name>/; DIR/recipe_state.json records which stages are done,
what each handed on, and what the budget scaled. With `--hours`, the corpus is fitted to the teacher's
measured speed and each training stage's steps to its own measured speed (kdtts.distill.budget), in
proportion to the stages' `share`s of the training time; the recipe prints what it scaled.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from kdtts.distill import parallel
from kdtts.distill.adversarial import AdversarialConfig, adversarial
from kdtts.distill.budget import StepBudget
from kdtts.distill.config import DistillConfig
from kdtts.distill.corpus import build_corpus
from kdtts.distill.data import read_manifest
from kdtts.distill.teacher_pool import CacheReader
from kdtts.distill.train import distill

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
KINDS = ("cache", "distill", "adversarial", "compose", "calibrate", "export", "evaluate")
TRAINING = ("distill", "adversarial")
HAND_ON = ("best", "last")
EVALUATE_KEYS = ("limit", "speed_sentences", "repeats", "skip")
CALIBRATE_KEYS = ("utts", "skip")  # training utterances measured, after the validation ones skipped


class RecipeError(ValueError):
    """A recipe file or run folder the recipe cannot use; the message says why."""


class Stopped(RuntimeError):
    """The caller's `should_stop` ended the run between steps; its folder keeps what `--resume` needs."""


@dataclass
class Stage:
    """One step of a recipe. `settings`: DistillConfig / AdversarialConfig keys (training stages) or the
    evaluation's options; `share`: its part of the training time under `--hours`; `hand_on`: which
    checkpoint the next stage starts from (best validation, or the last step); `seconds`: the time a
    stage without steps is expected to take (reserved from the budget); `modules`: for compose, the stage
    whose checkpoint gives each module; `speaks_from`: the steps this stage needs before the student is expected
    to speak, from measured runs (docs/cli.md); a budget that fits fewer is warned about, on the console and
    the card."""

    name: str
    kind: str
    settings: dict = field(default_factory=dict)
    share: float = 0.0
    hand_on: str = "last"
    seconds: float = 0.0
    modules: dict = field(default_factory=dict)
    speaks_from: int = 0


@dataclass
class Recipe:
    name: str
    stages: list[Stage]
    description: str = ""
    student: dict = field(default_factory=dict)  # StudentConfig of the fresh student
    init: str | None = None                      # or a trained student the first training stage starts from
    sentences: int = 3200                        # the corpus the teacher reads, at full scale
    min_utterances: int = 64                     # read before the first training stage starts
    cache_share: float = 0.3                     # with --hours: the part of the budget the teacher may read for
    temperature: float = 0.0

    @classmethod
    def load(cls, name_or_path: str | Path) -> Recipe:
        """configs/recipe_<name>.json, or a recipe file by path; every key checked."""
        path = Path(name_or_path)
        if not path.suffix:
            path = CONFIGS / f"recipe_{name_or_path}.json"
        if not path.exists():
            known = sorted(p.stem.removeprefix("recipe_") for p in CONFIGS.glob("recipe_*.json"))
            raise RecipeError(f"no recipe {name_or_path!r} (known: {', '.join(known)})")
        raw = json.loads(path.read_text())
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise RecipeError(f"{path.name}: unknown recipe keys {sorted(unknown)}")
        try:
            recipe = cls(**{**raw, "stages": [Stage(**s) for s in raw.get("stages", [])]})
        except TypeError as error:
            raise RecipeError(f"{path.name}: {error}") from None
        recipe.check(path.name)
        return recipe

    def check(self, where: str) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise RecipeError(f"{where}: stage names repeat: {names}")
        for stage in self.stages:
            if stage.kind not in KINDS:
                raise RecipeError(f"{where}: stage {stage.name}: kind {stage.kind!r} is not one of {KINDS}")
            if stage.hand_on not in HAND_ON or (stage.kind == "adversarial" and stage.hand_on != "last"):
                raise RecipeError(f"{where}: stage {stage.name}: hand_on {stage.hand_on!r} (distill: best or "
                                  "last; adversarial: last, since its validation loss rises as it works)")
            if stage.kind in TRAINING:
                try:
                    (DistillConfig if stage.kind == "distill" else AdversarialConfig)(**stage.settings)
                except TypeError as error:
                    raise RecipeError(f"{where}: stage {stage.name}: {error}") from None
            if stage.kind == "evaluate" and set(stage.settings) - set(EVALUATE_KEYS):
                raise RecipeError(f"{where}: stage {stage.name}: evaluate settings are {EVALUATE_KEYS}")
            if stage.kind == "calibrate" and set(stage.settings) - set(CALIBRATE_KEYS):
                raise RecipeError(f"{where}: stage {stage.name}: calibrate settings are {CALIBRATE_KEYS}")
            if stage.kind == "compose" and (set(stage.modules) != {"duration", "front", "decoder"}
                                            or set(stage.modules.values()) - set(names)):
                raise RecipeError(f"{where}: stage {stage.name}: compose names a stage for duration, front, decoder")
        if self.stages[0].kind != "cache":
            raise RecipeError(f"{where}: the first stage reads the teacher's cache (kind 'cache')")

    def training_share(self, stages: list[Stage]) -> float:
        return sum(s.share for s in stages if s.kind in TRAINING)


class RecipeState:
    """DIR/recipe_state.json: the sittings, the scaled plan, and each stage's status and hand-on."""

    def __init__(self, out: Path) -> None:
        self.path = out / "recipe_state.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}, "sittings": []}

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {})

    def save(self) -> None:
        if parallel.rank() == 0:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)


class Display:
    """The one progress bar: stage k of n, its step, and an ETA for the whole recipe. `listener` (the app's
    job) gets the same as a dict: stage, k, n, step, total, eta_s (None until a rate is known)."""

    def __init__(self, n: int, enabled: bool, listener: Callable[[dict], None] | None = None) -> None:
        self.n, self.enabled, self.listener = n, enabled, listener
        self.k, self.name = 0, ""
        self.bar = tqdm(total=1, disable=not enabled, bar_format="{desc} {percentage:3.0f}%|{bar:20}| "
                                                                 "{n_fmt}/{total_fmt} {postfix}")
        self.started, self.step0, self.tail = time.monotonic(), 0, 0.0

    def stage(self, k: int, stage: Stage, total: int, unit: str, tail_seconds: float, deadline: float | None) -> None:
        """A new stage on the same bar; `tail_seconds`: what the stages without steps after it will take."""
        self.k, self.name = k, stage.name
        self.bar.set_description(f"stage {k}/{self.n} {stage.name}", refresh=False)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.reset(total=max(1, total))
        self.started, self.step0, self.tail, self.deadline, self.unit = (time.monotonic(), None, tail_seconds,
                                                                          deadline, unit)
        self.stage_seconds = stage.seconds
        self.update(0, total)

    def update(self, step: int, total: int, extra: str = "") -> None:
        if not self.enabled and self.listener is None:
            return
        now = time.monotonic()
        if self.step0 is None:
            self.step0, self.started = step, now
        self.bar.total = max(1, total)
        self.bar.n = step
        rate = (step - self.step0) / max(now - self.started, 1e-9)
        if self.unit == "stage":  # no steps: its expected time
            left, speed = max(0.0, self.stage_seconds - (now - self.started)) * (step < total), ""
        else:
            left, speed = ((total - step) / rate if rate > 0 else None), f"{rate:.2f} {self.unit}/s, "
        eta, whole = "?", None
        if left is not None:
            whole = left + self.tail
            if self.deadline is not None:  # within budget, the budget is the honest estimate
                whole = max(whole, self.deadline - now)
            eta = _clock(whole)
        if self.listener is not None:
            self.listener({"stage": self.name, "k": self.k, "n": self.n, "step": step, "total": max(1, total),
                           "eta_s": None if whole is None else round(whole)})
        if not self.enabled:
            return
        self.bar.set_postfix_str(f"{speed}recipe ETA {eta}{extra}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _exit_on_term(signum: int, frame: object) -> None:
    """A polite kill (SIGTERM) unwinds like Ctrl-C: the teacher pool stops and the state is saved."""
    raise SystemExit(128 + signum)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def say(message: str) -> None:
    if parallel.rank() == 0:
        tqdm.write(f"recipe: {message}")


def default_cache_dir(voice: str | None, temperature: float) -> str:
    """One cache per voice and temperature, shared by every recipe and tier."""
    if voice is None:
        return DistillConfig.cache_dir
    return f"cache/{Path(voice).name.removesuffix('.onnx')}-t{temperature:g}"


def run_recipe(recipe: Recipe, out: str | Path, voice: str | None = None, hours: float | None = None,
               resume: bool = False, cache_dir: str | None = None, command: str | None = None,
               progress: bool = True, init: str | None = None, corpus: list[str] | None = None,
               should_stop: Callable[[], bool] | None = None, on_progress: Callable[[dict], None] | None = None,
               on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Run (or continue, with `resume`) every stage of `recipe` into `out`; return out/student.safetensors.
    `init`: start the first training stage from this student instead of the recipe's own start; `corpus`:
    the sentences the teacher reads (default: the built-in corpus, `recipe.sentences` of it); `should_stop`:
    checked at every step, ends the run with Stopped; `on_progress`: the display as dicts (Display);
    `on_step`: every training step's loss row, with the stage's name."""
    if init:
        recipe.init = init
    if recipe.init and not Path(recipe.init).exists():
        shipped = CONFIGS.parent / recipe.init  # a recipe file names the shipped student from the repository root
        if not shipped.exists():
            raise RecipeError(f"no student checkpoint at {recipe.init} to start the recipe from")
        recipe.init = str(shipped)
    created = parallel.start()
    out = Path(out)
    state = RecipeState(out)
    if state.path.exists() and not resume:
        raise RecipeError(f"{out} holds a recipe run already: add --resume to continue it, or choose another --out")
    if resume and not state.path.exists():
        raise RecipeError(f"{out} has no recipe_state.json to resume")
    if resume and state.data.get("recipe") != recipe.name:
        raise RecipeError(f"{out} ran recipe {state.data.get('recipe')!r}, not {recipe.name!r}")
    out.mkdir(parents=True, exist_ok=True)
    parallel.barrier()
    spent = state.data.get("seconds", 0.0)
    if not resume:
        state.data.update(recipe=recipe.name, hours=hours, voice=voice,
                          cache_dir=cache_dir or default_cache_dir(voice, recipe.temperature), plan={})
    state.data["recipe_file"] = asdict(recipe)  # as this sitting runs it (a stage added since runs now; the card says)
    hours = state.data["hours"] if hours is None else hours
    state.data["hours"] = hours
    voice, cache_dir = state.data["voice"], state.data["cache_dir"]
    state.data["sittings"].append({"started": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "command": command, "resumed": resume, "world_size": parallel.world()})
    state.save()
    start = time.monotonic()
    deadline = start + hours * 3600 - spent if hours else None
    display = Display(len(recipe.stages), progress and parallel.rank() == 0, on_progress)
    runner = Runner(recipe, out, state, display, voice, cache_dir, deadline)
    runner.corpus, runner.should_stop, runner.on_step = corpus, should_stop, on_step
    runner.clock = (spent, start)
    previous = signal.signal(signal.SIGTERM, _exit_on_term) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        for k, stage in enumerate(recipe.stages, 1):
            record = state.stage(stage.name)
            if record.get("status") == "done":
                runner.handed[stage.name] = record.get("handed_on")
                if stage.kind == "cache" and not record.get("complete"):
                    runner.resume_reading()
                continue
            if should_stop is not None and should_stop():
                raise Stopped(f"stopped before stage {k}/{len(recipe.stages)} ({stage.name})")
            record.update(status="running", dir=f"{k}-{stage.name}", sittings=record.get("sittings", 0) + 1)
            runner.current = (record, record.get("seconds", 0.0), time.monotonic())
            state.save()
            runner.run(k, stage, resume=resume)  # a stage without a checkpoint yet starts afresh
            runner.tick(force=True)
            record["status"], runner.current = "done", None
            state.data["seconds"] = round(spent + time.monotonic() - start, 1)
            state.save()
            parallel.barrier()
    finally:
        runner.stop_reading()
        runner.tick(force=True)  # a stopped or failed sitting's time counts too
        display.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if parallel.rank() == 0:
        from kdtts.distill.card import write_card

        write_card(out, state.data)
    if created:
        import torch.distributed as dist

        dist.destroy_process_group()
    return out / "student.safetensors"


class Runner:
    """Runs one stage of a recipe at a time; holds what the stages hand on and the background reader."""

    def __init__(self, recipe: Recipe, out: Path, state: RecipeState, display: Display, voice: str | None,
                 cache_dir: str, deadline: float | None) -> None:
        self.recipe, self.out, self.state, self.display = recipe, out, state, display
        self.voice, self.cache_dir, self.deadline = voice, cache_dir, deadline
        self.handed: dict[str, str | None] = {}
        self.reader: CacheReader | None = None
        self.clock, self.saved = (0.0, time.monotonic()), time.monotonic()
        self.current: tuple[dict, float, float] | None = None  # the running stage: its record, seconds before, start
        self.corpus: list[str] | None = None
        self.should_stop: Callable[[], bool] | None = None
        self.on_step: Callable[[int, dict], None] | None = None

    def sentences(self, limit: int) -> list[str]:
        return self.corpus[:limit] if self.corpus is not None else build_corpus(limit=limit)

    def tick(self, force: bool = False) -> None:
        """Every 10 s, the time spent goes to the state (the whole run's and the running stage's): a run killed
        outright still counts it against --hours, and the card still counts the stage's sitting."""
        now = time.monotonic()
        if force or now - self.saved > 10:
            spent, start = self.clock
            self.state.data["seconds"] = round(spent + now - start, 1)
            if self.current is not None:
                record, before, began = self.current
                record["seconds"] = round(before + now - began, 1)
            self.state.save()
            self.saved = now

    # -- the stages ------------------------------------------------------------------------------
    def run(self, k: int, stage: Stage, resume: bool) -> None:
        folder = self.out / f"{k}-{stage.name}"
        folder.mkdir(exist_ok=True)
        record = self.state.stage(stage.name)
        if stage.kind == "cache":
            self.read_cache(k, stage, record)
        elif stage.kind in TRAINING:
            self.train(k, stage, folder, record, resume)
        elif parallel.rank() == 0:
            self.stop_reading()  # the rest measures speed: no teacher beside it
            self.display.stage(k, stage, 1, "stage", self.tail_after(stage), self.deadline)
            handed = getattr(self, f"_{stage.kind}")(stage, folder, record)
            self.handed[stage.name] = record["handed_on"] = str(handed)
            self.display.update(1, 1)

    def read_cache(self, k: int, stage: Stage, record: dict) -> None:
        """Start the teacher on every core; wait for the first `min_utterances`; fit the corpus to --hours."""
        plan = self.state.data["plan"]
        nominal = self.recipe.sentences
        self.display.stage(k, stage, self.recipe.min_utterances, "sent", self.tail_after(stage), self.deadline)
        if parallel.rank() == 0:
            self.reader = CacheReader(self.cache_dir, self.sentences(nominal), self.voice,
                                      self.recipe.temperature).start()
            before = self.reader.count
            record.update(cached_before=before, processes=self.reader.processes)
            if self.reader.busy_elsewhere:
                say(f"another process is filling {self.cache_dir}; training on what it has written")
            need = self.recipe.min_utterances
            while self.reader.count < need and (self.reader.running or self.reader.busy_elsewhere):
                self.reader.wait_for(need, poll=0.5, timeout=1.0)
                self.display.update(min(self.reader.count, need), need)
            count = self.reader.wait_for(need)
            self.display.update(min(count, need), need)
            if count < need:
                raise RecipeError(f"{self.cache_dir} holds {count} utterances after reading; the recipe needs "
                                  f"{need} (is the corpus smaller?)")
            plan["cached_before"] = before
            plan["sentences"] = self.fit_corpus()
        plan["sentences"] = parallel.agree(plan.get("sentences", nominal))
        record["handed_on"] = self.cache_dir
        self.handed[stage.name] = self.cache_dir

    def fit_corpus(self) -> int:
        """With --hours: the sentences the teacher can read in its share of the budget, at its measured speed
        (the recipe's own number until the teacher has read some; the next stage fits it then)."""
        reader, nominal, plan = self.reader, self.recipe.sentences, self.state.data["plan"]
        before = plan.get("cached_before", 0)
        if self.deadline is None or before >= nominal or plan.get("teacher_rate"):
            return plan.get("sentences", nominal)
        if reader is None or not reader.running or reader.read < 4:
            return nominal
        seconds = self.recipe.cache_share * (self.state.data["hours"] * 3600)
        fitted = int(min(nominal, max(self.recipe.min_utterances, before + reader.rate * seconds)))
        reader.target = fitted
        self.state.data["plan"].update(teacher_rate=round(reader.rate, 2), teacher_seconds=round(seconds))
        say(f"scaled the corpus to {fitted} of {nominal} sentences: the teacher reads {reader.rate:.2f} sentences/s "
            f"on {reader.processes} processes, for {seconds:.0f} s of the {self.state.data['hours']} h budget "
            f"({before} were cached already)")
        return fitted

    def resume_reading(self) -> None:
        if parallel.rank() == 0 and self.reader is None:
            self.reader = CacheReader(self.cache_dir, self.sentences(self.state.data["plan"]["sentences"]),
                                      self.voice, self.recipe.temperature).start()

    def stop_reading(self) -> None:
        if self.reader is None:
            return
        self.reader.stop()
        record = self.state.stage(self.recipe.stages[0].name)
        count = self.reader.refresh()
        record.update(utterances=count, complete=count >= self.state.data["plan"].get("sentences", 0))
        self.reader = None
        self.state.save()

    def train(self, k: int, stage: Stage, folder: Path, record: dict, resume: bool) -> None:
        init = self.previous_hand_on(stage)
        plan = self.state.data["plan"]
        if parallel.rank() == 0:
            plan["sentences"] = self.fit_corpus()
        sentences = plan["sentences"] = parallel.agree(plan["sentences"])
        budget = self.stage_budget(stage)
        growing = self.reader is not None and self.reader.running
        growing = bool(parallel.agree(int(growing)))  # every rank grows its data, or none
        shared = {"cache_dir": self.cache_dir, "init": init}
        nominal = stage.settings.get("max_steps", 0)
        self.display.stage(k, stage, nominal, "step", self.tail_after(stage), self.deadline)

        def on_step(step: int, row: dict) -> None:
            total = budget.total if budget is not None and budget.total else nominal
            extra = ""
            if self.reader is not None and self.reader.running:
                reader = self.reader
                left = (reader.target - reader.count) / reader.rate if reader.rate else None
                extra = f", teacher {reader.count}/{reader.target} ETA {_clock(left) if left is not None else '?'}"
            self.display.update(step, total, extra)
            self.tick()
            if self.on_step is not None:
                self.on_step(step, {**row, "stage": stage.name})

        if stage.kind == "distill":
            cfg = DistillConfig(**{**stage.settings, **shared, "sentences": sentences, "voice": self.voice,
                                   "temperature": self.recipe.temperature, "grow_with_cache": growing,
                                   "student": {} if init else self.recipe.student})
            result = distill(cfg, folder, resume=resume, progress=False, on_step=on_step, budget=budget,
                             should_stop=self.should_stop)
            handed = folder / "best.safetensors" if stage.hand_on == "best" else result
        else:
            count = len(read_manifest(Path(self.cache_dir)))
            cfg = AdversarialConfig(**{**stage.settings, **shared, "sentences": min(count, sentences)})
            handed = adversarial(cfg, folder, resume=resume, progress=False, budget=budget, on_step=on_step,
                                 should_stop=self.should_stop)
        if self.should_stop is not None and self.should_stop():
            raise Stopped(f"stopped in stage {k}/{len(self.recipe.stages)} ({stage.name})")
        steps = budget.total if budget is not None and budget.total else cfg.max_steps
        record.update(handed_on=str(handed), steps=steps, nominal_steps=nominal, init=init,
                      rate=round(budget.rate, 3) if budget is not None and budget.rate else record.get("rate"),
                      utterances=min(len(read_manifest(Path(self.cache_dir))), sentences),
                      settings={**{k: v for k, v in asdict(cfg).items() if k in stage.settings},
                                "max_steps": steps})  # the steps the budget fitted, as the card says
        if budget is not None and budget.rate and parallel.rank() == 0:
            say(f"stage {stage.name}: {steps} steps (the recipe's full scale is {nominal}) at the measured "
                f"{budget.rate:.2f} steps/s")
        if steps < stage.speaks_from:
            record["warning"] = (f"the {stage.name} stage fitted {steps:,} steps, under the {stage.speaks_from:,} "
                                 "this recipe asks before its student is expected to speak: give it more --hours "
                                 "(across sittings with --resume), or a GPU")
            if parallel.rank() == 0:
                say(f"warning: {record['warning']}")
        self.handed[stage.name] = str(handed)

    def stage_budget(self, stage: Stage) -> StepBudget | None:
        """This stage's deadline: its share of the training time left, after what the later stages reserve."""
        if self.deadline is None:
            return None
        later = self.recipe.stages[self.recipe.stages.index(stage):]
        training_left = self.deadline - time.monotonic() - self.tail_after(stage)
        seconds = max(5.0, training_left * stage.share / max(self.recipe.training_share(later), 1e-9))
        return StepBudget(deadline=time.monotonic() + seconds)

    def tail_after(self, stage: Stage) -> float:
        """Seconds the stages after `stage` that have no steps are expected to take."""
        later = self.recipe.stages[self.recipe.stages.index(stage) + 1:]
        return sum(s.seconds for s in later if s.kind not in TRAINING)

    def previous_hand_on(self, stage: Stage) -> str | None:
        """The checkpoint of the last training stage before this one (the recipe's `init` for the first;
        None: a fresh student)."""
        index = self.recipe.stages.index(stage)
        for earlier in reversed(self.recipe.stages[:index]):
            if earlier.kind in TRAINING:
                return self.handed.get(earlier.name)
        return self.recipe.init

    def _compose(self, stage: Stage, folder: Path, record: dict) -> Path:
        from kdtts.student.checkpoint import compose, save_student

        parts = {module: self.handed[name] for module, name in stage.modules.items()}
        student = compose(parts)
        save_student(student, folder / "student.safetensors", {**student.info, "recipe": self.recipe.name})
        shutil.copyfile(folder / "student.safetensors", self.out / "student.safetensors")
        record["parameters"] = student.count_parameters()
        return self.out / "student.safetensors"

    def _calibrate(self, stage: Stage, folder: Path, record: dict) -> Path:
        """The composed student at the teacher's level (kdtts.distill.loudness), measured on training sentences."""
        from kdtts.distill.data import load_cache
        from kdtts.distill.loudness import calibrate
        from kdtts.student.checkpoint import load_student, save_student

        student = load_student(self.out / "student.safetensors")
        held = len(read_manifest(Path(self.cache_dir)))
        skip = min(int(stage.settings.get("skip", 32)), max(0, held - 1))  # a few sentences: measure what there is
        utts = load_cache(Path(self.cache_dir), start=skip, limit=skip + int(stage.settings.get("utts", 200)))
        record["calibration"] = calibrate(student, utts)
        save_student(student, folder / "student.safetensors",
                     {**student.info, "loudness_calibration": record["calibration"]})
        shutil.copyfile(folder / "student.safetensors", self.out / "student.safetensors")
        return self.out / "student.safetensors"

    def _export(self, stage: Stage, folder: Path, record: dict) -> Path:
        from kdtts.student.onnx_student import check_parity, export_checked

        report = export_checked(self.out / "student.safetensors", folder / "onnx")
        check_parity(report)
        record["parity"] = {k: v for k, v in report.items() if k != "out"}
        return folder / "onnx"

    def _evaluate(self, stage: Stage, folder: Path, record: dict) -> Path:
        from kdtts.evaluate.report import EvalConfig, evaluate

        options = {**stage.settings, "skip": tuple(stage.settings.get("skip", ()))}
        sittings = self.state.data["sittings"]
        report = evaluate(EvalConfig(student=self.out / "student.safetensors", out=folder,
                                     voice=Path(self.voice) if self.voice else None, progress=False,
                                     student_label=f"recipe {self.recipe.name}",
                                     command=sittings[-1]["command"], **options))
        for name in ("report.md", "report.json"):
            shutil.copyfile(folder / name, self.out / name)
        record["metrics"] = {system: {k: m.get(k) for k in ("wer", "dnsmos_p808", "dnsmos_ovrl", "pesq_wb", "stoi",
                                                            "f0_sd_ratio", "loudness_diff_lu", "rtf_1thread")}
                             for system, m in report["models"].items()}
        return self.out / "report.md"
