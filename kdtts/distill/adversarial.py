"""Adversarial stage for the student decoder: least-squares GAN + feature matching + reconstruction.

Starts from a regression-trained student (the shipped one by default) and trains only its decoder,
on the teacher's z and the teacher's audio for that z (the corpus cache). The reconstruction term
(MR-STFT + log-mel, weighted `reconstruction_weight`) keeps the output aligned with the teacher; the
discriminators (kdtts.distill.discriminators) sharpen the harmonics that regression blurs.
Resumable like the regression loop: `RUN_DIR/last.safetensors` every `checkpoint_every` steps, and a
full student `RUN_DIR/stepNNNNNN.safetensors` every `snapshot_every` steps for picking by evaluation.
"""
from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from kdtts.distill import parallel
from kdtts.distill.batches import segment_batch
from kdtts.distill.budget import StepBudget
from kdtts.distill.callbacks import plot_losses
from kdtts.distill.config import config_field
from kdtts.distill.data import load_cache, read_manifest
from kdtts.distill.discriminators import Discriminators, discriminator_loss, feature_matching_loss, generator_loss
from kdtts.distill.losses import WaveformCriterion
from kdtts.distill.state import load_state, save_state
from kdtts.student.checkpoint import load_checkpoint, save_student


@dataclass
class AdversarialConfig:
    """The GAN stage's settings (a JSON file of these keys, or the generated flags)."""

    init: str = config_field("assets/student.safetensors", "the regression student whose decoder is refined")
    cache_dir: str = config_field("cache/joe-t0", "folder of the teacher's cached outputs (its z and audio)")
    sentences: int | None = config_field(None, "only the first N cached utterances (default: all of them)")
    max_steps: int = config_field(8000, "training steps")
    batch_segments: int = config_field(8, "z/audio segments per step")
    segment_frames: int = config_field(32, "frames per segment")
    lr_generator: float = config_field(1e-4, "decoder learning rate")
    lr_discriminator: float = config_field(2e-4, "discriminators' learning rate")
    reconstruction_weight: float = config_field(15.0, "weight of the MR-STFT + log-mel term")
    feature_weight: float = config_field(2.0, "weight of the feature-matching term")
    wrapped_phase_weight: float = config_field(0.0, "weight of the anti-wrapping phase term within the "
                                                    "reconstruction term (keeps a phase-trained decoder's phase)")
    validation_utts: int = config_field(32, "first cache utterances, for the validation reconstruction loss")
    checkpoint_every: int = config_field(250, "steps between state saves and loss rows")
    snapshot_every: int = config_field(1000, "steps between whole-student snapshots (stepNNNNNN.safetensors)")
    seed: int = config_field(0, "random seed")
    threads: int | None = config_field(None, "torch intra-op threads")


def adversarial(cfg: AdversarialConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
                should_stop: Callable[[], bool] | None = None, budget: StepBudget | None = None,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Train the decoder adversarially; return RUN_DIR/student.safetensors (the whole student).

    budget: fit the step total to a wall-clock budget (the recipe). Under torchrun the ranks split each
    global batch and average both networks' gradients (kdtts.distill.parallel); rank 0 writes the files."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    created = parallel.start()
    device, rank, world = parallel.device(), parallel.rank(), parallel.world()
    reduce = parallel.average_gradients if world > 1 else None
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    cache = Path(cfg.cache_dir)
    utts = load_cache(cache, limit=parallel.agree(min(len(read_manifest(cache)), cfg.sentences or 1 << 30)))
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"{cache} has {len(utts)} utterances; need more than validation_utts={cfg.validation_utts}")
    val_utts, train_utts = utts[:cfg.validation_utts], utts[cfg.validation_utts:]

    torch.manual_seed(cfg.seed)
    student = load_checkpoint(cfg.init).to(device)  # a TTS student or a student vocoder
    decoder = student.decoder
    discriminators = Discriminators().to(device)
    opt_g = torch.optim.AdamW(decoder.parameters(), cfg.lr_generator, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(discriminators.parameters(), cfg.lr_discriminator, betas=(0.8, 0.99))
    reconstruction = WaveformCriterion(wrapped_phase_weight=cfg.wrapped_phase_weight).to(device)
    rng = random.Random(cfg.seed)
    modules, optimizers = {"decoder": decoder, "discriminators": discriminators}, {"g": opt_g, "d": opt_d}
    step, started_seconds, total = 0, 0.0, cfg.max_steps
    if resume and (run_dir / "last.safetensors").exists():
        meta = load_state(run_dir, modules, optimizers, rng)
        step, started_seconds = meta["step"], meta.get("seconds", 0.0)
        if meta.get("fitted_total"):  # a budgeted stage keeps the total it fitted before the kill
            total = cfg.max_steps = meta["fitted_total"]
            if budget is not None:
                budget.total = total
                cfg.checkpoint_every = cfg.snapshot_every = budget.every(total)
    csv_path = run_dir / "loss.csv"
    columns = ["step", "seconds", "d", "g_adv", "g_fm", "g_rec", "val_rec"]
    if rank == 0 and (not resume or not csv_path.exists()):
        with csv_path.open("w", newline="") as f:
            csv.DictWriter(f, columns).writeheader()
    info = {**student.info, "adversarial": {"init": cfg.init, "utterances": len(train_utts),
                                            "cache": str(cache), "sentences": len(read_manifest(cache))}}

    clock = time.perf_counter() - started_seconds
    sitting_start, sitting_clock = step, time.perf_counter()
    running: dict[str, float] = {}
    bar = tqdm(total=total, initial=step, desc="adversarial", unit="step", disable=not progress or rank > 0)
    while step < total and not (should_stop and should_stop()):
        z, audio, _ = segment_batch(rng.sample(train_utts, cfg.batch_segments * world), cfg.segment_frames,
                                    student.hop_length, rng, device)
        z, audio = parallel.own_slice(z, cfg.batch_segments), parallel.own_slice(audio, cfg.batch_segments)
        parts = adversarial_step(decoder, discriminators, opt_g, opt_d, reconstruction, z, audio, cfg, reduce)
        step += 1
        for k, v in parts.items():
            running[k] = 0.95 * running.get(k, v) + 0.05 * v
        bar.update(1)
        bar.set_postfix(rec=f"{running['g_rec']:.3f}", d=f"{running['d']:.2f}")
        if budget is not None and budget.total is None:  # rank 0 measures; all fit at one step
            fitted = budget.fit(step - sitting_start, time.perf_counter() - sitting_clock, step) if rank == 0 else None
            fitted = parallel.agree(fitted or 0)
            if fitted:
                total = budget.total = bar.total = cfg.max_steps = fitted
                cfg.checkpoint_every = cfg.snapshot_every = budget.every(total)
        if on_step:
            on_step(step, parts)
        if rank > 0:
            continue
        if step % cfg.checkpoint_every == 0 or step == total:
            seconds = time.perf_counter() - clock
            row = {"step": step, "seconds": round(seconds, 1), **{k: round(v, 5) for k, v in running.items()},
                   "val_rec": round(validation_reconstruction(decoder, reconstruction, val_utts, cfg, device), 5)}
            with csv_path.open("a", newline="") as f:
                csv.DictWriter(f, columns).writerow(row)
            plot_losses(csv_path, run_dir / "loss.png")
            save_state(run_dir, modules, optimizers, rng, {"step": step, "seconds": seconds,
                                                           "fitted_total": budget.total if budget else None})
        if step % cfg.snapshot_every == 0:
            save_student(student, run_dir / f"step{step:06d}.safetensors", {**info, "adversarial_steps": step})
    bar.close()
    out = run_dir / "student.safetensors"
    if rank == 0:
        save_student(student.cpu(), out, {**info, "adversarial_steps": step})
    if created:
        torch.distributed.destroy_process_group()
    return out


def adversarial_step(decoder: torch.nn.Module, discriminators: Discriminators, opt_g: torch.optim.Optimizer,
                     opt_d: torch.optim.Optimizer, reconstruction: WaveformCriterion, z: torch.Tensor,
                     audio: torch.Tensor, cfg: AdversarialConfig,
                     reduce: Callable[[list[torch.Tensor]], None] | None = None) -> dict[str, float]:
    """One discriminator update, then one generator (decoder) update, on the same segments; `reduce`
    (data-parallel runs) averages each network's gradients across processes before clipping."""
    decoder.train()
    fake = decoder(z)
    loss_d = discriminator_loss(discriminators(audio), discriminators(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if reduce is not None:
        reduce([p.grad for p in discriminators.parameters() if p.grad is not None])
    torch.nn.utils.clip_grad_norm_(discriminators.parameters(), 10.0)
    opt_d.step()

    with torch.no_grad():
        real = discriminators(audio)
    generated = discriminators(fake)
    adv, fm, rec = generator_loss(generated), feature_matching_loss(real, generated), reconstruction(fake, audio)
    loss_g = adv + cfg.feature_weight * fm + cfg.reconstruction_weight * rec
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if reduce is not None:
        reduce([p.grad for p in decoder.parameters() if p.grad is not None])
    torch.nn.utils.clip_grad_norm_(decoder.parameters(), 10.0)
    opt_g.step()
    return {k: float(v.detach()) for k, v in {"d": loss_d, "g_adv": adv, "g_fm": fm, "g_rec": rec}.items()}


def validation_reconstruction(decoder: torch.nn.Module, reconstruction: WaveformCriterion, utts: list,
                              cfg: AdversarialConfig, device: torch.device) -> float:
    """MR-STFT + mel loss on fixed validation segments: how far the adversarial stage drifts from the teacher."""
    decoder.eval()
    with torch.no_grad():
        z, audio, _ = segment_batch(utts, cfg.segment_frames * 4, decoder.hop, random.Random(1234), device)
        return float(reconstruction(decoder(z), audio))
