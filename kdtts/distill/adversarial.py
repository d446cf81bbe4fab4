"""Adversarial stage for the student decoder: least-squares GAN + feature matching + reconstruction.

Starts from a regression-trained student (the shipped one by default) and trains only its decoder,
on the teacher's z and the teacher's audio for that z (the corpus cache). The reconstruction term
(MR-STFT + log-mel, weighted `reconstruction_weight`) keeps the output aligned with the teacher; the
discriminators (kdtts.distill.discriminators) sharpen the harmonics that regression blurs.
A `Task` of the one training loop (kdtts.distill.loop): resumable state every `checkpoint_every` steps,
and a whole student `RUN_DIR/stepNNNNNN.safetensors` every `snapshot_every` steps for picking by evaluation.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from kdtts.distill import parallel
from kdtts.distill.batches import segment_batch
from kdtts.distill.budget import StepBudget
from kdtts.distill.config import config_field
from kdtts.distill.data import load_cache, read_manifest
from kdtts.distill.discriminators import Discriminators, discriminator_loss, feature_matching_loss, generator_loss
from kdtts.distill.loop import Task, fit
from kdtts.distill.losses import WaveformCriterion
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
    device, rank = parallel.device(), parallel.rank()
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    cache = Path(cfg.cache_dir)
    utts = load_cache(cache, limit=parallel.agree(min(len(read_manifest(cache)), cfg.sentences or 1 << 30)))
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"{cache} has {len(utts)} utterances; need more than validation_utts={cfg.validation_utts}")
    torch.manual_seed(cfg.seed)
    task = AdversarialTask(cfg, load_checkpoint(cfg.init).to(device), utts, device)  # a TTS student or a vocoder
    loop = fit(task, run_dir, cfg.max_steps, cfg.checkpoint_every, resume=resume, should_stop=should_stop,
               progress=progress, on_step=on_step, snapshot_every=cfg.snapshot_every, keep_best=False, budget=budget)
    out = run_dir / "student.safetensors"
    if rank == 0:
        task.save(out, loop.step, {})
    if created:
        torch.distributed.destroy_process_group()
    return out


class AdversarialTask(Task):
    """The decoder against the discriminators, on the teacher's z (or mel) and audio segments. There is no
    best checkpoint: a GAN's reconstruction loss does not rank its students; the snapshots are for that."""

    desc, smoothing = "adversarial", 0.95
    columns = ["step", "seconds", "d", "g_adv", "g_fm", "g_rec", "val_rec"]

    def __init__(self, cfg: AdversarialConfig, student: torch.nn.Module, utts: list, device: torch.device) -> None:
        self.cfg, self.student, self.device = cfg, student, device
        self.val_utts, self.train_utts = utts[:cfg.validation_utts], utts[cfg.validation_utts:]
        self.decoder, self.discriminators = student.decoder, Discriminators().to(device)
        self.opt_g = torch.optim.AdamW(self.decoder.parameters(), cfg.lr_generator, betas=(0.8, 0.99))
        self.opt_d = torch.optim.AdamW(self.discriminators.parameters(), cfg.lr_discriminator, betas=(0.8, 0.99))
        self.reconstruction = WaveformCriterion(wrapped_phase_weight=cfg.wrapped_phase_weight).to(device)
        self.rng = random.Random(cfg.seed)
        self.modules = {"decoder": self.decoder, "discriminators": self.discriminators}
        self.optimizers = {"g": self.opt_g, "d": self.opt_d}
        self.reduce = parallel.average_gradients if parallel.world() > 1 else None
        cache = Path(cfg.cache_dir)
        self.info = {**student.info, "adversarial": {"init": cfg.init, "utterances": len(self.train_utts),
                                                     "cache": str(cache), "sentences": len(read_manifest(cache))}}

    def step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        z, audio, _ = segment_batch(self.rng.sample(self.train_utts, cfg.batch_segments * parallel.world()),
                                    cfg.segment_frames, self.student.hop_length, self.rng, self.device)
        z, audio = parallel.own_slice(z, cfg.batch_segments), parallel.own_slice(audio, cfg.batch_segments)
        return adversarial_step(self.decoder, self.discriminators, self.opt_g, self.opt_d, self.reconstruction,
                                z, audio, cfg, self.reduce)

    def validate(self) -> dict[str, float]:
        return {"val_rec": validation_reconstruction(self.decoder, self.reconstruction, self.val_utts, self.cfg,
                                                     self.device)}

    def save(self, path: Path, step: int, extra: dict) -> Path:
        save_student(self.student.cpu(), path, {**self.info, "adversarial_steps": step, **extra})
        self.student.to(self.device)
        return path

    def postfix(self, running: dict[str, float]) -> dict[str, str]:
        return {"rec": f"{running['g_rec']:.3f}", "d": f"{running['d']:.2f}"}


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
