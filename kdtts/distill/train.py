"""The TTS family's regression stage: batches from the teacher cache, KDTrainer steps, validation.

It is a `Task` of the one training loop (kdtts.distill.loop), which owns the resumable state, the best
checkpoint, the budget, the loss log and progress. The audio settings come from the teacher that filled
the cache (its `teacher.json`), never from constants here. CUDA is used when present; under `torchrun`
every rank draws the same global batch and keeps its slice, and gradients are averaged in the step.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from kdtts.audio import AudioSpec
from kdtts.distill import parallel
from kdtts.distill.batches import audio_windows, crop, segment_batch, utterance_batch
from kdtts.distill.budget import StepBudget
from kdtts.distill.callbacks import Samples
from kdtts.distill.config import MODULES, DistillConfig
from kdtts.distill.data import Utt, load_cache, read_manifest
from kdtts.distill.loop import Task, fit, learning_rate
from kdtts.distill.prepare import Data, prepare_data
from kdtts.distill.trainer import KDTrainer, ModuleCriterion
from kdtts.student.checkpoint import load_student, save_student
from kdtts.student.grow import grow
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from kdtts.teachers.piper import PiperTeacher


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
    rank, device = parallel.rank(), parallel.device()
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
    task = RegressionTask(cfg, data, trainer, device, grow=cfg.grow_with_cache and sentences is None)
    total = max_steps or cfg.max_steps
    samples = Samples(cfg.sample_every, total, lambda p: sample(student, data, cfg, p), run_dir / "samples",
                      after=on_sample)
    loop = fit(task, run_dir, total, cfg.checkpoint_every, resume=resume, should_stop=should_stop,
               progress=progress, on_step=on_step, on_log=on_log, callbacks=[samples], budget=budget)
    out = run_dir / "student.safetensors"
    if rank == 0:
        task.save(out, loop.step, {"stopped_early": loop.stopped})
    if created:
        dist.destroy_process_group()
    return out


LOSS_PARTS = (*MODULES, "front_audio", "front_mean", "front_variance")
LOSS_COLUMNS = (["step", "lr", "seconds", "loss"] + [f"{part}_{m}" for part in ("kd", "gt") for m in LOSS_PARTS]
                + [f"val_{part}_{m}" for part in ("kd", "gt") for m in LOSS_PARTS])


class RegressionTask(Task):
    """The TTS student's modules regressed on the teacher's outputs (KDTrainer), with a warm-up + cosine
    learning rate that follows the step total."""

    desc, columns = "distilling", LOSS_COLUMNS

    def __init__(self, cfg: DistillConfig, data: Data, trainer: KDTrainer, device: torch.device,
                 grow: bool = False) -> None:
        self.cfg, self.data, self.trainer, self.device, self.grow = cfg, data, trainer, device, grow
        self.rng = random.Random(cfg.seed)
        self.modules, self.optimizers = {"model": trainer.student}, {"main": trainer.optimizer}
        self.reduce = parallel.average_gradients if parallel.world() > 1 else None
        teacher = {k: v for k, v in data.teacher.items() if k != "voice"}  # never a machine's path
        self.info = {"teacher": teacher, "utterances": len(data.train), "temperature": teacher.get("temperature"),
                     "alpha": cfg.alpha, "modules": cfg.modules, "init": Path(cfg.init).name if cfg.init else None}

    def step(self, step: int) -> dict[str, float]:
        lr = learning_rate(self.cfg, step)
        ids, targets, z_seg, truth = next_batch(self.cfg, self.data.train, self.data.spec.hop_length, self.rng,
                                                self.device)
        return {"lr": lr, **self.trainer.step(ids, targets, z_seg, truth, lr=lr, reduce=self.reduce)}

    def validate(self) -> dict[str, float]:
        return validation_loss(self.trainer, self.data.val, self.cfg, self.data.spec.hop_length, self.device)

    def save(self, path: Path, step: int, extra: dict) -> Path:
        student = self.trainer.student
        save_student(student.cpu(), path, {**self.info, "steps": step, **extra})
        student.to(self.device)
        return path

    def set_total(self, total: int) -> None:
        self.cfg.max_steps = total
        self.cfg.warmup_steps = min(self.cfg.warmup_steps, max(1, total // 5))

    def before_checkpoint(self, step: int) -> None:
        """Pick up utterances a concurrent teacher run has appended to the cache."""
        if not self.grow:
            return
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
