"""Vocoder distillation: a student vocoder (kdtts.student.vocoder) learns HiFi-GAN V1's mel -> audio map.

The teacher is deterministic given the mel, so this is regression on the waveform's spectra (the decoder
student's MR-STFT + log-mel criterion) on aligned mel/audio segments of the vocoder cache
(kdtts.distill.vocoder_cache). By default the student starts from the shipped TTS student's decoder (all but
its input layer), which already writes this voice's waveforms. The adversarial stage
(`python -m kdtts adversarial --init RUN/best.safetensors --cache-dir CACHE`) then refines it, as for the
decoder. A `Task` of the one training loop (kdtts.distill.loop), so resumable, budgeted and data-parallel
like every stage.
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
from kdtts.distill.data import Utt, load_cache, teacher_record
from kdtts.distill.loop import Task, fit, learning_rate
from kdtts.distill.losses import WaveformCriterion
from kdtts.student.checkpoint import load_student, load_vocoder, save_student
from kdtts.student.grow import grow
from kdtts.student.vocoder import VocoderConfig, VocoderStudent


@dataclass
class VocoderDistillConfig:
    """One vocoder distillation run (a JSON file of these keys, or the generated flags)."""

    teacher: str = config_field("hifigan", "vocoder teacher (see `python -m kdtts info`)")
    source_cache: str = config_field("cache/joe-t0", "teacher corpus cache whose audio is re-vocoded")
    cache_dir: str | None = config_field(None, "folder of the vocoder teacher's mels and audio "
                                         "(default: cache/hifigan-GENERATOR)")
    utterances: int = config_field(512, "source utterances the vocoder teacher re-vocodes (the cache only grows)")
    init: str | None = config_field(None, "start from this student vocoder checkpoint (a fine-tune)")
    init_decoder: str | None = config_field("assets/student.safetensors",
                                            "else copy this TTS student's decoder body (none: a fresh vocoder)")
    student: dict = config_field(dict, "VocoderConfig overrides: a fresh vocoder's, or layers added to `init` (JSON)", type=json.loads)
    max_steps: int = config_field(6000, "training steps")
    batch_segments: int = config_field(16, "mel/audio segments per step")
    segment_frames: int = config_field(32, "frames per segment")
    lr: float = config_field(5e-4, "peak learning rate (after warm-up)")
    lr_min: float = config_field(5e-5, "learning rate at the end of the cosine schedule")
    warmup_steps: int = config_field(200, "linear warm-up steps")
    phase_weight: float = config_field(0.0, "weight of the phase-aware complex-spectrum term (the teacher's output "
                                            "is sample-aligned with the student's, so its phase is learnable)")
    wrapped_phase_weight: float = config_field(0.0, "weight of the anti-wrapping phase term (instantaneous phase, "
                                                    "group delay, instantaneous frequency; magnitude-weighted)")
    validation_utts: int = config_field(16, "first cache utterances, never trained on, for the validation loss")
    checkpoint_every: int = config_field(250, "steps between validation, state and best-checkpoint saves")
    seed: int = config_field(0, "random seed")
    threads: int | None = config_field(None, "torch intra-op threads")

    def __post_init__(self) -> None:
        from kdtts.teachers.registry import generator_name

        self.cache_dir = self.cache_dir or f"cache/hifigan-{generator_name(self.teacher)}"


def check_distillable(teacher: str) -> None:
    """ValueError unless kdtts can distil a student vocoder from `teacher` (HiFi-GAN V1 only: WaveRNN's mels
    come from Tacotron 2, which has no cache builder here)."""
    if not teacher.startswith("hifigan"):
        raise ValueError(f"distilling from {teacher} is not supported: kdtts distils a student vocoder from "
                         "HiFi-GAN V1 (--teacher hifigan or hifigan-ljspeech)")


def prepare_vocoder_data(cfg: VocoderDistillConfig, progress: bool = True) -> Path:
    """The vocoder cache with `utterances` entries: the Piper teacher reads corpus sentences into the source
    cache where it has fewer, then the vocoder teacher re-vocodes them (both resumable, both only grow)."""
    from kdtts.distill.corpus import build_corpus
    from kdtts.distill.data import build_cache, read_manifest
    from kdtts.distill.vocoder_cache import build_vocoder_cache
    from kdtts.teachers.hifigan import HiFiGANTeacher
    from kdtts.teachers.registry import generator_name

    cache, source = Path(cfg.cache_dir), Path(cfg.source_cache)
    if len(read_manifest(cache)) >= cfg.utterances:
        return cache
    if len(read_manifest(source)) < cfg.utterances:
        build_cache(source, build_corpus(None, limit=cfg.utterances), progress=progress)
    return build_vocoder_cache(source, cache, HiFiGANTeacher.load(generator_name(cfg.teacher)), cfg.utterances,
                               progress)


def make_vocoder(cfg: VocoderDistillConfig) -> VocoderStudent:
    if cfg.init:  # a fine-tune, grown by `student` when that adds layers
        vocoder = load_vocoder(cfg.init)
        return grow(vocoder, cfg.student) if cfg.student else vocoder  # type: ignore[return-value]
    vocoder = VocoderStudent(VocoderConfig(**cfg.student))
    if cfg.init_decoder and cfg.init_decoder.lower() != "none":
        vocoder.init_from_decoder(load_student(cfg.init_decoder).decoder)
    return vocoder


def distill_vocoder(cfg: VocoderDistillConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
                    should_stop: Callable[[], bool] | None = None,
                    on_step: Callable[[int, dict], None] | None = None,
                    on_log: Callable[[int, dict], None] | None = None,
                    budget: StepBudget | None = None) -> Path:
    """Train; return RUN_DIR/vocoder.safetensors (RUN_DIR/best.safetensors: best validation loss).
    `on_step(step, row)`: the running loss after every step; `on_log(step, row)` after each validation. CUDA when present; data-parallel
    under torchrun like every stage (the one loop, kdtts.distill.loop)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    created = parallel.start()
    device, rank = parallel.device(), parallel.rank()
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    utts = load_cache(Path(cfg.cache_dir))
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"{cfg.cache_dir} has {len(utts)} utterances; need more than {cfg.validation_utts}")
    torch.manual_seed(cfg.seed)
    task = VocoderTask(cfg, make_vocoder(cfg).to(device), utts, device)
    loop = fit(task, run_dir, cfg.max_steps, cfg.checkpoint_every, resume=resume, should_stop=should_stop,
               progress=progress, on_step=on_step, on_log=on_log, budget=budget)
    out = run_dir / "vocoder.safetensors"
    if rank == 0:
        task.save(out, loop.step, {})
    if created:
        torch.distributed.destroy_process_group()
    return out


class VocoderTask(Task):
    """The student vocoder regressed on HiFi-GAN's audio for the same mel (warm-up + cosine learning rate)."""

    desc, smoothing = "vocoder distillation", 0.95
    columns = ["step", "lr", "seconds", "loss", "val_loss"]

    def __init__(self, cfg: VocoderDistillConfig, vocoder: VocoderStudent, utts: list[Utt],
                 device: torch.device) -> None:
        self.cfg, self.vocoder, self.device = cfg, vocoder, device
        self.val_utts, self.train_utts = utts[:cfg.validation_utts], utts[cfg.validation_utts:]
        self.optimizer = torch.optim.AdamW(vocoder.decoder.parameters(), cfg.lr, betas=(0.8, 0.99))
        self.criterion = WaveformCriterion(mel=vocoder.spec, phase_weight=cfg.phase_weight,
                                           wrapped_phase_weight=cfg.wrapped_phase_weight).to(device)
        self.rng = random.Random(cfg.seed)
        self.modules, self.optimizers = {"decoder": vocoder.decoder}, {"opt": self.optimizer}
        self.reduce = parallel.average_gradients if parallel.world() > 1 else None
        self.info = {"teacher": teacher_record(Path(cfg.cache_dir)), "utterances": len(self.train_utts)}

    def step(self, step: int) -> dict[str, float]:
        cfg, decoder = self.cfg, self.vocoder.decoder
        decoder.train()
        lr = learning_rate(cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        world = parallel.world()
        picked = self.rng.sample(self.train_utts, min(cfg.batch_segments * world, len(self.train_utts)))
        mel, audio, _ = segment_batch(picked, cfg.segment_frames, self.vocoder.hop_length, self.rng, self.device)
        share = max(1, len(picked) // world)
        mel, audio = parallel.own_slice(mel, share), parallel.own_slice(audio, share)
        loss = self.criterion(decoder(mel), audio)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.reduce is not None:
            self.reduce([p.grad for p in decoder.parameters() if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 5.0)
        self.optimizer.step()
        return {"lr": lr, "loss": float(loss.detach())}

    def validate(self) -> dict[str, float]:
        """The criterion on fixed, longer segments of the held-out utterances."""
        self.vocoder.eval()
        with torch.no_grad():
            mel, audio, _ = segment_batch(self.val_utts, self.cfg.segment_frames * 4, self.vocoder.hop_length,
                                          random.Random(1234), self.device)
            return {"val_loss": float(self.criterion(self.vocoder.decoder(mel), audio))}

    def save(self, path: Path, step: int, extra: dict) -> Path:
        validation = extra.pop("validation", None)
        if validation:
            extra["val_loss"] = validation["val_loss"]
        out = save_student(self.vocoder.cpu(), path, {**self.info, "steps": step, **extra})
        self.vocoder.to(self.device)
        return out

    def set_total(self, total: int) -> None:
        self.cfg.max_steps = total
