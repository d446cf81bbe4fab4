"""Vocoder distillation: a student vocoder (kdtts.student.vocoder) learns HiFi-GAN V1's mel -> audio map.

The teacher is deterministic given the mel, so this is regression on the waveform's spectra (the decoder
student's MR-STFT + log-mel criterion) on aligned mel/audio segments of the vocoder cache
(kdtts.distill.vocoder_cache). By default the student starts from the shipped TTS student's decoder (all but
its input layer), which already writes this voice's waveforms. The adversarial stage
(`python -m kdtts adversarial --init RUN/best.safetensors --cache-dir CACHE`) then refines it, as for the
decoder. Resumable: RUN_DIR/last.safetensors every `checkpoint_every` steps.
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

from kdtts.distill.batches import segment_batch
from kdtts.distill.callbacks import plot_losses
from kdtts.distill.config import config_field
from kdtts.distill.data import Utt, load_cache, teacher_record
from kdtts.distill.losses import WaveformCriterion
from kdtts.distill.state import load_state, save_state
from kdtts.distill.train import learning_rate
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
                    on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Train; return RUN_DIR/vocoder.safetensors (RUN_DIR/best.safetensors: best validation loss).
    `on_step(step, row)`: the loss (and at checkpoints `val_loss`) after every step, for the app."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    utts = load_cache(Path(cfg.cache_dir))
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"{cfg.cache_dir} has {len(utts)} utterances; need more than {cfg.validation_utts}")
    val_utts, train_utts = utts[:cfg.validation_utts], utts[cfg.validation_utts:]
    torch.manual_seed(cfg.seed)
    vocoder = make_vocoder(cfg)
    optimizer = torch.optim.AdamW(vocoder.decoder.parameters(), cfg.lr, betas=(0.8, 0.99))
    criterion, rng = WaveformCriterion(mel=vocoder.spec, phase_weight=cfg.phase_weight,
                                         wrapped_phase_weight=cfg.wrapped_phase_weight), random.Random(cfg.seed)
    step, seconds, best = 0, 0.0, float("inf")
    if resume and (run_dir / "last.safetensors").exists():
        meta = load_state(run_dir, {"decoder": vocoder.decoder}, {"opt": optimizer}, rng)
        step, seconds, best = meta["step"], meta.get("seconds", 0.0), meta.get("best", best)
    csv_path = run_dir / "loss.csv"
    if not resume or not csv_path.exists():
        csv_path.write_text("step,seconds,loss,val_loss\n")
    info = {"teacher": teacher_record(Path(cfg.cache_dir)), "utterances": len(train_utts)}
    clock, running = time.perf_counter() - seconds, None
    bar = tqdm(total=cfg.max_steps, initial=step, desc="vocoder distillation", unit="step", disable=not progress)
    while step < cfg.max_steps and not (should_stop and should_stop()):
        loss = _step(vocoder, optimizer, criterion, train_utts, cfg, rng, learning_rate(cfg, step))
        step += 1
        running = loss if running is None else 0.95 * running + 0.05 * loss
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}")
        row = {"step": step, "seconds": round(time.perf_counter() - clock, 1), "loss": loss}
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            val, seconds = validation_loss(vocoder, criterion, val_utts, cfg), time.perf_counter() - clock
            row["val_loss"] = val
            with csv_path.open("a", newline="") as f:
                csv.writer(f).writerow([step, round(seconds, 1), round(running, 5), round(val, 5)])
            plot_losses(csv_path, run_dir / "loss.png")
            if val < best:
                best = val
                save_student(vocoder, run_dir / "best.safetensors", {**info, "steps": step, "val_loss": val})
            save_state(run_dir, {"decoder": vocoder.decoder}, {"opt": optimizer}, rng,
                       {"step": step, "seconds": seconds, "best": best})
        if on_step:
            on_step(step, row)
    bar.close()
    return save_student(vocoder, run_dir / "vocoder.safetensors", {**info, "steps": step})


def _step(vocoder: VocoderStudent, optimizer: torch.optim.Optimizer, criterion: WaveformCriterion,
          utts: list[Utt], cfg: VocoderDistillConfig, rng: random.Random, lr: float) -> float:
    vocoder.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    mel, audio, _ = segment_batch(rng.sample(utts, min(cfg.batch_segments, len(utts))), cfg.segment_frames,
                                  vocoder.hop_length, rng, torch.device("cpu"))
    loss = criterion(vocoder.decoder(mel), audio)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(vocoder.decoder.parameters(), 5.0)
    optimizer.step()
    return float(loss.detach())


def validation_loss(vocoder: VocoderStudent, criterion: WaveformCriterion, utts: list[Utt],
                    cfg: VocoderDistillConfig) -> float:
    """The criterion on fixed, longer segments of the held-out utterances."""
    vocoder.eval()
    with torch.no_grad():
        mel, audio, _ = segment_batch(utts, cfg.segment_frames * 4, vocoder.hop_length, random.Random(1234),
                                      torch.device("cpu"))
        return float(criterion(vocoder.decoder(mel), audio))
