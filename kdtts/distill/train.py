"""The distillation loop: batches from the teacher cache, KDTrainer steps, validation and resumable state.

Every `checkpoint_every` steps the model, optimizer and sampler state go to `RUN_DIR/last.safetensors`
(+ `last.json`) atomically, and the best student by validation loss to `RUN_DIR/best.safetensors`;
`resume=True` continues after a kill. What is reported (CSV, plot, samples, a caller's progress hook)
is a list of callbacks (kdtts.distill.callbacks). The audio settings come from the teacher that filled
the cache (its `teacher.json`), never from constants here. CUDA is used when present; under `torchrun`
each rank draws its own batches and gradients are averaged across ranks in the same step path.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from kdtts.audio import AudioSpec
from kdtts.distill import parallel
from kdtts.distill.batches import audio_windows, crop, segment_batch, utterance_batch
from kdtts.distill.budget import StepBudget
from kdtts.distill.callbacks import Callback, CsvLog, Hook, LossPlot, Samples
from kdtts.distill.config import MODULES, DistillConfig
from kdtts.distill.data import Utt, load_cache, read_manifest
from kdtts.distill.prepare import Data, prepare_data
from kdtts.distill.state import load_state, save_state
from kdtts.distill.trainer import KDTrainer, ModuleCriterion
from kdtts.student.checkpoint import load_student, save_student
from kdtts.student.grow import grow
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from kdtts.teachers.piper import PiperTeacher


def learning_rate(cfg: DistillConfig, step: int) -> float:
    """Linear warm-up to `lr`, then a cosine to `lr_min` at `max_steps` (flat after)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))


def make_student(cfg: DistillConfig, spec: AudioSpec) -> StudentTTS:
    """A fine-tune's starting checkpoint (whose audio spec must be the teacher's), grown by `cfg.student`
    when that adds layers; or a fresh student."""
    if cfg.init:
        student = load_student(cfg.init)
        if student.spec != spec:
            raise ValueError(f"{cfg.init} was distilled at {student.spec.sample_rate} Hz / hop "
                             f"{student.spec.hop_length}; this teacher is {spec.sample_rate} Hz / hop {spec.hop_length}")
        return grow(student, cfg.student) if cfg.student else student  # type: ignore[return-value]
    return StudentTTS(StudentConfig(**{**cfg.student, "sample_rate": spec.sample_rate, "hop_length": spec.hop_length}))


def next_batch(cfg: DistillConfig, utts: list[Utt], hop: int, rng: random.Random, device: torch.device):
    """Utterance windows for duration + front, aligned z/audio segments for the decoder; and the
    recordings' targets (ground truth y) when the utterances have them, else None. Under torchrun every
    rank draws the same global batch (world × batch) and keeps its own slice (kdtts.distill.parallel)."""
    world = parallel.world()
    n_utts, n_segments = min(cfg.batch_utts, len(utts) // world), min(cfg.batch_segments, len(utts) // world)
    picked = [crop(u, cfg.crop_ids, hop, rng) for u in rng.sample(utts, n_utts * world)]
    windows = None
    if cfg.front_audio_weight and "front" in cfg.modules:
        windows = audio_windows(picked, cfg.segment_frames, hop, rng, device)
    ids, targets, truth = utterance_batch(parallel.own_slice(picked, n_utts), device)
    if windows is not None:
        targets.window_starts, targets.window_audio = (parallel.own_slice(w, n_utts) for w in windows)
    z_seg, audio, gt_audio = (None if x is None else parallel.own_slice(x, n_segments) for x in
                              segment_batch(rng.sample(utts, n_segments * world), cfg.segment_frames, hop, rng, device))
    targets.audio = audio
    if truth is not None:
        truth.audio = gt_audio
    return ids, targets, z_seg, truth


def validation_loss(trainer: KDTrainer, utts: list[Utt], cfg: DistillConfig, hop: int, device: torch.device
                    ) -> dict[str, float]:
    trainer.student.eval()
    rng = random.Random(1234)
    with torch.no_grad():
        ids, targets, truth = utterance_batch(utts, device)
        if cfg.front_audio_weight and "front" in cfg.modules:
            targets.window_starts, targets.window_audio = audio_windows(utts, cfg.segment_frames * 4, hop, rng, device)
        z_seg, targets.audio, gt_audio = segment_batch(utts, cfg.segment_frames * 4, hop, rng, device)
        if truth is not None:
            truth.audio = gt_audio
        _, parts = trainer.compute_loss(targets, trainer.predict(ids, targets, z_seg), truth)
    return {f"val_{k}": v for k, v in parts.items()}


def distill(cfg: DistillConfig, run_dir: str | Path, resume: bool = False, max_steps: int | None = None,
            progress: bool = True, should_stop: Callable[[], bool] | None = None,
            on_log: Callable[[int, dict[str, float]], None] | None = None,
            on_step: Callable[[int, dict[str, float]], None] | None = None,
            sentences: list[str] | None = None, teacher: PiperTeacher | None = None,
            on_sample: Callable[[Path], None] | None = None, budget: StepBudget | None = None) -> Path:
    """Train; return the path of the exported student (RUN_DIR/student.safetensors).

    sentences: the exact training text (the app's fine-tunes); only their utterances are used, the first
        `cfg.validation_utts` for validation, and `cfg.sentences` / `extra_text` / `grow_with_cache` are
        ignored. None (the CLI): the built-in corpus, `build_corpus(cfg.extra_text, limit=cfg.sentences)`.
    teacher: an already loaded teacher for the cache (None: loaded from `cfg.voice` if text is missing).
    should_stop: checked before every step; a stopped run still saves its state and exports a student
        (with `stopped_early` in its info).
    on_step(step, row) after every step; on_log(step, row) after every validation (row adds val_*).
    on_sample(path): after each listening sample is written (every `cfg.sample_every` steps).
    budget: fit the step total to a wall-clock budget from the first seconds' speed (the recipe's stages).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    created = parallel.start()
    distributed, rank, device = parallel.world() > 1, parallel.rank(), parallel.device()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    if sentences is not None and rank == 0:
        (run_dir / "sentences.txt").write_text("".join(t + "\n" for t in dict.fromkeys(sentences)))
    data = prepare_data(cfg, sentences, teacher, progress, rank)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    student = make_student(cfg, data.spec).to(device)
    criterion = ModuleCriterion(data.spec, cfg.front_audio_weight, cfg.front_mean_weight,
                                cfg.wrapped_phase_weight, cfg.front_variance_weight).to(device)
    trainer = KDTrainer(student, criterion, cfg.alpha, tuple(cfg.modules), cfg.lr)
    loop = Loop(cfg, run_dir, data, trainer, device, rank, max_steps or cfg.max_steps,
                grow=cfg.grow_with_cache and sentences is None, budget=budget)
    if resume and (run_dir / "last.safetensors").exists():
        loop.restore()
    if rank == 0:
        loop.callbacks = [CsvLog(run_dir / "loss.csv", LOSS_COLUMNS, loop.step if resume else None),
                          LossPlot(run_dir / "loss.csv", run_dir / "loss.png"), Hook(on_step, on_log),
                          Samples(cfg.sample_every, loop.total, lambda p: sample(student, data, cfg, p), run_dir / "samples",
                                  after=on_sample)]
    stopped = loop.run(should_stop, progress and rank == 0, parallel.average_gradients if distributed else None)
    out = run_dir / "student.safetensors"
    if rank == 0:
        loop.save()
        save_student(student.cpu(), out, {**loop.info, "steps": loop.step, "stopped_early": stopped})
    if created:
        dist.destroy_process_group()
    return out


LOSS_PARTS = (*MODULES, "front_audio", "front_mean", "front_variance")
LOSS_COLUMNS = (["step", "lr", "seconds", "loss"] + [f"{part}_{m}" for part in ("kd", "gt") for m in LOSS_PARTS]
                + [f"val_{part}_{m}" for part in ("kd", "gt") for m in LOSS_PARTS])


class Loop:
    """Steps, validation, best checkpoint and resumable state for one run; reporting is callbacks."""

    def __init__(self, cfg: DistillConfig, run_dir: Path, data: Data, trainer: KDTrainer, device: torch.device,
                 rank: int, total: int, grow: bool, budget: StepBudget | None = None) -> None:
        self.cfg, self.run_dir, self.data, self.trainer, self.device = cfg, run_dir, data, trainer, device
        self.rank, self.total, self.grow, self.budget = rank, total, grow, budget
        self.rng = random.Random(cfg.seed)  # the same stream on every rank: they split one global batch
        self.step, self.best, self.seconds_before = 0, float("inf"), 0.0
        self.callbacks: list[Callback] = []
        teacher = {k: v for k, v in data.teacher.items() if k != "voice"}  # never a machine's path
        self.info = {"teacher": teacher, "utterances": len(data.train), "temperature": teacher.get("temperature"),
                     "alpha": cfg.alpha, "modules": cfg.modules, "init": Path(cfg.init).name if cfg.init else None}

    def _state(self) -> tuple[dict, dict]:
        return {"model": self.trainer.student}, {"main": self.trainer.optimizer}

    def restore(self) -> None:
        meta = load_state(self.run_dir, *self._state(), self.rng)
        self.step, self.best, self.seconds_before = meta["step"], meta["best_validation"], meta.get("seconds", 0.0)
        if meta.get("fitted_total"):  # a budgeted stage keeps the total it fitted before the kill
            self._set_total(meta["fitted_total"])
            if self.budget is not None:
                self.budget.total = self.total

    def save(self) -> None:
        seconds = round(time.perf_counter() - self.started, 1)
        fitted = self.budget.total if self.budget is not None else None
        save_state(self.run_dir, *self._state(), self.rng, {"step": self.step, "best_validation": self.best,
                                                           "seconds": seconds, "fitted_total": fitted})

    def _set_total(self, total: int) -> None:
        """A new step total; the learning-rate schedule (warm-up, cosine) follows it."""
        self.total = self.cfg.max_steps = total
        self.cfg.warmup_steps = min(self.cfg.warmup_steps, max(1, total // 5))
        if self.budget is not None:
            self.cfg.checkpoint_every = self.budget.every(total)

    def run(self, should_stop: Callable[[], bool] | None, progress: bool,
            reduce: Callable[[list[torch.Tensor]], None] | None) -> bool:
        """Train to `total` steps; True if `should_stop` ended the run early."""
        bar = tqdm(total=self.total, initial=self.step, desc="distilling", unit="step", disable=not progress)
        self.started, running = time.perf_counter() - self.seconds_before, {}  # elapsed time continues on resume
        hop = self.data.spec.hop_length
        sitting_start, sitting_clock = self.step, time.perf_counter()
        while self.step < self.total:
            if should_stop and should_stop():
                bar.close()
                return True
            lr = learning_rate(self.cfg, self.step)
            ids, targets, z_seg, truth = next_batch(self.cfg, self.data.train, hop, self.rng, self.device)
            parts = self.trainer.step(ids, targets, z_seg, truth, lr=lr, reduce=reduce)
            self.step += 1
            running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in parts.items()}
            bar.update(1)
            bar.set_postfix(loss=f"{running['loss']:.3f}")
            row = {"step": self.step, "lr": lr, "seconds": round(time.perf_counter() - self.started, 2), **running}
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
            if self.grow and self.step % self.cfg.checkpoint_every == 0:
                self._grow()
            if self.rank == 0 and (self.step % self.cfg.checkpoint_every == 0 or self.step == self.total):
                self._checkpoint(row)
        bar.close()
        return False

    def _checkpoint(self, row: dict) -> None:
        val = validation_loss(self.trainer, self.data.val, self.cfg, self.data.spec.hop_length, self.device)
        row = {**row, "seconds": round(row["seconds"], 1), **val}  # a new dict: callers may hold the step's row
        total_val = sum(val.values())
        if total_val < self.best:
            self.best = total_val
            student = self.trainer.student
            save_student(student.cpu(), self.run_dir / "best.safetensors",
                         {**self.info, "steps": self.step, "validation": val})
            student.to(self.device)
        self.save()
        for callback in self.callbacks:
            callback.on_checkpoint(self.step, row)

    def _grow(self) -> None:
        """Pick up utterances a concurrent teacher run has appended to the cache."""
        available = parallel.agree(min(len(read_manifest(self.data.cache)), self.cfg.sentences))
        self.data.train += load_cache(self.data.cache, limit=available, start=self.data.seen)
        self.data.seen = available
        self.info["utterances"] = len(self.data.train)


def sample(student: StudentTTS, data: Data, cfg: DistillConfig, path: Path) -> None:
    """A listening check. Training the decoder alone, it decodes the teacher's z of the first validation
    utterance (its other modules may be untrained); otherwise the student reads a held-out sentence."""
    if list(cfg.modules) == ["decoder"]:
        from kdtts.audio import write_wav

        device = next(student.parameters()).device
        with torch.no_grad():
            audio = student.decoder(data.val[0].z.float()[None].to(device))[0].clamp(-1, 1).cpu().numpy()
        write_wav(path, audio, student.spec.sample_rate)
    else:
        write_sample(student, data.teacher["voice"], path)


def write_sample(student: StudentTTS, voice: str, path: Path) -> None:
    """The student reads the first held-out sentence with its own durations (a listening check)."""
    from kdtts.audio import write_wav
    from kdtts.distill.corpus import read_heldout
    from kdtts.text import Phonemizer
    from kdtts.voice import Scales, speak

    voice_config = json.loads(Path(voice + ".json").read_text())
    ids = np.array(Phonemizer(voice_config).ids(read_heldout()[0]))
    device = next(student.parameters()).device
    student.cpu()
    out = speak(ids, Scales(), student, student, student)
    student.to(device)
    write_wav(path, out.audio, student.spec.sample_rate)
