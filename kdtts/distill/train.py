"""The distillation run: batches from the teacher cache, KDTrainer steps, checkpoints, curves, samples.

Resumable: every `checkpoint_every` steps the model, optimizer and sampler state go to
`RUN_DIR/last.safetensors` (+ `last.json`) atomically; `--resume` continues from there after a kill.
The app's fine-tunes (kdtts.ui.finetune) call `distill()` too, with their own exact sentences, the
app's loaded teacher and a per-step progress callback.
CUDA is used when present; under `torchrun` each rank draws its own batches and gradients are
averaged across ranks (data parallel).
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from kdtts.distill.state import load_state, save_state
from kdtts.distill.data import CorpusConfig, Utt, build_cache, load_cache, read_manifest
from kdtts.distill.trainer import MODULES, KDTrainer, ModuleCriterion, Targets
from kdtts.student.checkpoint import load_student, save_student
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from kdtts.teachers.piper import PiperTeacher


@dataclass
class DistillConfig:
    """Everything a run needs; a JSON file with any subset of these keys overrides the defaults."""

    cache_dir: str = "cache/joe-t0"
    sentences: int = 3000           # corpus size the teacher reads (cache is extended, never rebuilt)
    temperature: float = 0.0        # teacher noise multiplier (KD "temperature")
    extra_text: str | None = None   # a user's own text file, one sentence per line
    voice: str | None = None        # teacher voice path; default joe-medium
    alpha: float = 1.0
    modules: list[str] = field(default_factory=lambda: list(MODULES))
    init: str | None = None         # start from this student checkpoint (fine-tune)
    student: dict = field(default_factory=dict)  # StudentConfig overrides for a fresh student
    max_steps: int = 20000
    batch_utts: int = 16            # utterance windows for the duration and front students
    crop_ids: int = 64              # window length in phoneme ids (about 1.5 s of speech)
    batch_segments: int = 16        # z/audio segments for the decoder student
    segment_frames: int = 32
    lr: float = 1e-3
    lr_min: float = 1e-4
    warmup_steps: int = 200
    validation_utts: int = 32       # first cache utterances, never trained on, for validation loss
    grow_with_cache: bool = False   # pick up utterances a concurrent teacher run appends to the cache
    checkpoint_every: int = 500
    sample_every: int = 2000
    seed: int = 0
    threads: int | None = None

    @classmethod
    def from_file(cls, path: str | Path | None, **overrides: object) -> "DistillConfig":
        data = json.loads(Path(path).read_text()) if path else {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown distill config keys: {sorted(unknown)}")
        return cls(**data)


# -- batches -------------------------------------------------------------------------------------
def crop(u: Utt, max_ids: int, rng: random.Random) -> Utt:
    """A random window of at most `max_ids` phoneme ids with its frames: the students' receptive
    fields span a few phonemes, so whole utterances (mostly padding in a batch) buy nothing."""
    if len(u.ids) <= max_ids:
        return u
    start = rng.randint(0, len(u.ids) - max_ids)
    ends = u.durations.cumsum(0)
    first = int(ends[start - 1]) if start else 0
    last = int(ends[start + max_ids - 1])
    return Utt(u.ids[start:start + max_ids], u.durations[start:start + max_ids], u.z[:, first:last],
               u.audio[first * 256:last * 256])


def utterance_batch(utts: list[Utt], device: torch.device) -> tuple[torch.Tensor, Targets]:
    n = max(len(u.ids) for u in utts)
    t = max(int(u.durations.sum()) for u in utts)
    ids = torch.zeros(len(utts), n, dtype=torch.long)
    durations = torch.zeros(len(utts), n, dtype=torch.long)
    z = torch.zeros(len(utts), utts[0].z.shape[0], t)
    id_mask = torch.zeros(len(utts), 1, n)
    frame_mask = torch.zeros(len(utts), 1, t)
    for i, u in enumerate(utts):
        frames = int(u.durations.sum())
        ids[i, :len(u.ids)] = u.ids
        durations[i, :len(u.ids)] = u.durations
        z[i, :, :frames] = u.z.float()
        id_mask[i, :, :len(u.ids)] = 1
        frame_mask[i, :, :frames] = 1
    return ids.to(device), Targets(durations=durations.to(device), id_mask=id_mask.to(device),
                                   z=z.to(device), frame_mask=frame_mask.to(device))


def segment_batch(utts: list[Utt], frames: int, hop: int, rng: random.Random, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned windows: z[:, t:t+frames] and audio[t*hop:(t+frames)*hop]."""
    zs, audio = [], []
    for u in utts:
        total = u.z.shape[1]
        start = rng.randint(0, max(0, total - frames))
        seg_z = u.z[:, start:start + frames].float()
        seg_a = u.audio[start * hop:(start + frames) * hop]
        if seg_z.shape[1] < frames:  # a very short utterance: pad with silence (z of zeros)
            seg_z = torch.nn.functional.pad(seg_z, (0, frames - seg_z.shape[1]))
            seg_a = torch.nn.functional.pad(seg_a, (0, frames * hop - seg_a.shape[0]))
        zs.append(seg_z)
        audio.append(seg_a)
    return torch.stack(zs).to(device), torch.stack(audio).to(device)


def learning_rate(cfg: DistillConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))


# -- curves -------------------------------------------------------------------------------------
def plot_losses(csv_path: Path, png_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: safe in a thread next to other plotting

    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
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


# -- the run ------------------------------------------------------------------------------------
def validation_loss(trainer: KDTrainer, utts: list[Utt], cfg: DistillConfig, device: torch.device) -> dict[str, float]:
    trainer.student.eval()
    rng = random.Random(1234)
    with torch.no_grad():
        ids, targets = utterance_batch(utts, device)
        z_seg, a_seg = segment_batch(utts, cfg.segment_frames * 4, trainer.student.hop_length, rng, device)
        targets.audio = a_seg
        _, parts = trainer.compute_loss(targets, trainer.predict(ids, targets, z_seg))
    return {f"val_{k[3:]}": v for k, v in parts.items()}


def distill(cfg: DistillConfig, run_dir: str | Path, resume: bool = False, max_steps: int | None = None,
            progress: bool = True, should_stop: Callable[[], bool] | None = None,
            on_log: Callable[[int, dict[str, float]], None] | None = None,
            on_step: Callable[[int, dict[str, float]], None] | None = None,
            sentences: list[str] | None = None, teacher: PiperTeacher | None = None) -> Path:
    """Train; return the path of the exported student (RUN_DIR/student.safetensors).

    sentences: the exact training text. The teacher reads them into `cfg.cache_dir` and only their
        utterances are used (the first `cfg.validation_utts` of them, in cache order, for validation); `cfg.sentences`,
        `cfg.extra_text` and `cfg.grow_with_cache` are then ignored. None (the CLI): the built-in
        corpus, `build_corpus(cfg.extra_text, limit=cfg.sentences)`.
    teacher: an already loaded teacher for the cache (None: loaded from `cfg.voice` if text is missing).
    should_stop: checked before every step; a stopped run still saves its state and exports a student
        (with `stopped_early` in its info).
    on_step(step, row): after every step; row = step, lr, seconds, running losses.
    on_log(step, row): at every checkpoint (and the last step); row adds the validation losses.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    total_steps = max_steps or cfg.max_steps
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    from kdtts.distill.corpus import build_corpus

    cache = Path(cfg.cache_dir)
    texts = None if sentences is None else list(dict.fromkeys(sentences))
    cache_full = texts is None and len(read_manifest(cache)) >= cfg.sentences
    if rank == 0 and not cache_full:  # (parsing the corpus sources takes seconds: only when needed)
        if texts is not None:
            (run_dir / "sentences.txt").write_text("".join(t + "\n" for t in texts))
        build_cache(CorpusConfig(cache, cfg.sentences, Path(cfg.extra_text) if cfg.extra_text else None,
                                 cfg.temperature, Path(cfg.voice) if cfg.voice else None),
                    texts if texts is not None else
                    build_corpus(Path(cfg.extra_text) if cfg.extra_text else None, limit=cfg.sentences),
                    teacher=teacher, progress=progress)
    if distributed:
        dist.barrier()
    if texts is not None:  # exactly these sentences, whatever else the cache holds
        seen = 0
        utts = load_cache(cache, texts=set(texts))
    else:
        seen = min(len(read_manifest(cache)), cfg.sentences)
        utts = load_cache(cache, limit=seen)
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"the cache has {len(utts)} utterances; need more than validation_utts={cfg.validation_utts}")
    val_utts, train_utts = utts[:cfg.validation_utts], utts[cfg.validation_utts:]

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    student = load_student(cfg.init) if cfg.init else StudentTTS(StudentConfig(**cfg.student))
    student.to(device)
    trainer = KDTrainer(student, None, ModuleCriterion(), cfg.alpha, cfg.temperature, tuple(cfg.modules), cfg.lr)
    rng = random.Random(cfg.seed + 1000 * rank)
    step, best, seconds_before = 0, float("inf"), 0.0
    if resume and (run_dir / "last.safetensors").exists():
        meta = load_state(run_dir, {"model": student}, {"main": trainer.optimizer}, rng)
        step, best, seconds_before = meta["step"], meta["best_validation"], meta.get("seconds", 0.0)

    csv_path = run_dir / "loss.csv"
    fieldnames = ["step", "lr", "seconds", "loss"] + [f"kd_{m}" for m in MODULES] + [f"val_{m}" for m in MODULES]
    kept = [r for r in csv.DictReader(csv_path.open())] if resume and csv_path.exists() else []
    with csv_path.open("w", newline="") as f:  # rows after the resumed state are redone, not repeated
        writer = csv.DictWriter(f, fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(r for r in kept if int(r["step"]) <= step)
    info = {"teacher": json.loads((cache / "teacher.json").read_text()) if (cache / "teacher.json").exists() else {},
            "utterances": len(train_utts), "temperature": cfg.temperature, "alpha": cfg.alpha,
            "modules": cfg.modules, "init": cfg.init}

    bar = tqdm(total=total_steps, initial=step, desc="distilling", unit="step", disable=not progress or rank != 0)
    started, running = time.perf_counter() - seconds_before, {}  # elapsed seconds continue across resumes
    stopped = False
    while step < total_steps:
        if should_stop and should_stop():
            stopped = True
            break
        lr = learning_rate(cfg, step)
        picked = rng.sample(train_utts, min(cfg.batch_utts, len(train_utts)))
        ids, targets = utterance_batch([crop(u, cfg.crop_ids, rng) for u in picked], device)
        z_seg, a_seg = segment_batch(rng.sample(train_utts, min(cfg.batch_segments, len(train_utts))),
                                     cfg.segment_frames, student.hop_length, rng, device)
        targets.audio = a_seg
        if distributed:
            parts = _distributed_step(trainer, ids, targets, z_seg, lr)
        else:
            parts = trainer.step(ids, targets, z_seg, lr=lr)
        step += 1
        for k, v in parts.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        bar.update(1)
        bar.set_postfix(loss=f"{running['loss']:.3f}")
        if on_step and rank == 0:
            on_step(step, {"step": step, "lr": lr, "seconds": round(time.perf_counter() - started, 2), **running})
        last = step == total_steps
        if cfg.grow_with_cache and texts is None and step % cfg.checkpoint_every == 0:
            available = min(len(read_manifest(cache)), cfg.sentences)
            train_utts += load_cache(cache, limit=available, start=seen)
            seen = available
            info["utterances"] = len(train_utts)
        if rank == 0 and (step % cfg.checkpoint_every == 0 or last):
            val = validation_loss(trainer, val_utts, cfg, device)
            row = {"step": step, "lr": lr, "seconds": round(time.perf_counter() - started, 1),
                   **{k: running[k] for k in running if k in fieldnames}, **val}
            with csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames, extrasaction="ignore").writerow(row)
            plot_losses(csv_path, run_dir / "loss.png")
            total_val = sum(val.values())
            save_state(run_dir, {"model": student}, {"main": trainer.optimizer}, rng,
                       {"step": step, "best_validation": min(best, total_val), "seconds": row["seconds"]})
            if total_val < best:
                best = total_val
                save_student(student.cpu(), run_dir / "best.safetensors", {**info, "steps": step, "validation": val})
                student.to(device)
            if on_log:
                on_log(step, row)
        if rank == 0 and (step % cfg.sample_every == 0 or last):
            write_sample(student, cache, run_dir / "samples" / f"step{step:06d}.wav")
    bar.close()
    out = run_dir / "student.safetensors"
    if rank == 0:
        save_state(run_dir, {"model": student}, {"main": trainer.optimizer}, rng,
                   {"step": step, "best_validation": best, "seconds": round(time.perf_counter() - started, 1)})
        save_student(student.cpu(), out, {**info, "steps": step, "stopped_early": stopped})
    if distributed:
        dist.destroy_process_group()
    return out


def _distributed_step(trainer: KDTrainer, ids: torch.Tensor, targets: Targets, z_seg: torch.Tensor, lr: float
                      ) -> dict[str, float]:
    """One data-parallel step: local backward, gradients averaged over ranks, then the update."""
    for group in trainer.optimizer.param_groups:
        group["lr"] = lr
    trainer.student.train()
    loss, parts = trainer.compute_loss(targets, trainer.predict(ids, targets, z_seg))
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    world = dist.get_world_size()
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world
    trainer.optimizer.step()
    return {"loss": float(loss.detach()), **parts}


def write_sample(student: StudentTTS, cache: Path, path: Path) -> None:
    """The student reads the first held-out sentence with its own durations (a listening check)."""
    from kdtts.audio import write_wav
    from kdtts.distill.corpus import read_heldout
    from kdtts.text import Phonemizer
    from kdtts.voice import Scales, speak

    teacher_info = json.loads((cache / "teacher.json").read_text())
    voice_config = json.loads(Path(teacher_info["voice"] + ".json").read_text())
    ids = np.array(Phonemizer(voice_config).ids(read_heldout()[0]))
    device = next(student.parameters()).device
    student.cpu()
    out = speak(ids, Scales(), student, student, student)
    student.to(device)
    write_wav(path, out.audio, student.spec.sample_rate)
