"""A fine-tune of the student vocoder: the Distill tab with a vocoder teacher chosen.

The Piper teacher reads the sentences (the same cache as a text-to-speech fine-tune), the vocoder teacher
re-vocodes that audio in chunks (progress shows, cancel works), and kdtts.distill.vocoder trains the student
vocoder; the result is published into `<data>/vocoders`, never over an existing file, oldest evicted.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from kdtts.distill.data import read_manifest
from kdtts.distill.finetune_job import Job, JobHost, job_sentences
from kdtts.distill.finetune_request import VALIDATE_EVERY, FinetuneRequest, checkpoint_name
from kdtts.distill.publish import VOCODER_DIR, evict_oldest, publish, vocoder_checkpoints
from kdtts.distill.vocoder import VocoderDistillConfig, distill_vocoder
from kdtts.distill.vocoder_cache import build_vocoder_cache
from kdtts.student.checkpoint import load_vocoder, save_student

CHUNK = 4  # utterances HiFi-GAN re-vocodes between two progress messages (and cancel checks)


def vocoder_config(r: FinetuneRequest, cache: Path, init: Path | None, spoken: int) -> VocoderDistillConfig:
    """The vocoder distillation run a request asks for (kdtts.distill.vocoder), from `init` (None: the
    shipped TTS student's decoder body)."""
    steps = int(r.steps)
    return VocoderDistillConfig(
        teacher=r.teacher, cache_dir=str(cache), utterances=spoken, init=str(init) if init else None,
        max_steps=steps, batch_segments=int(r.batch_segments), segment_frames=int(r.segment_frames),
        lr=float(r.lr), lr_min=float(r.lr) / 10, warmup_steps=min(20, max(1, steps // 10)),
        validation_utts=max(1, min(8, spoken // 5)), checkpoint_every=VALIDATE_EVERY, seed=int(r.seed))


def vocoder_bases(host: JobHost) -> dict[str, Path]:
    """The student vocoders a vocoder fine-tune may start from."""
    return vocoder_checkpoints(host.data)


def train_vocoder_job(host: JobHost, job: Job) -> None:
    from kdtts.teachers.hifigan import HiFiGANTeacher
    from kdtts.teachers.registry import generator_name

    r = job.request
    t0 = time.perf_counter()
    source = host.read_text(job, job_sentences(r))
    cache = source.parent / f"{source.name}-{r.teacher}"  # a visitor's text: "user-…", deleted with the job
    total = len(read_manifest(source))
    hifigan = HiFiGANTeacher.load(generator_name(r.teacher))
    with host.cache_lock:
        for done in range(0, total, CHUNK):
            if job.stopped_before_training():
                return
            job.message = f"{hifigan.name} HiFi-GAN re-vocodes the teacher's audio: {done}/{total} sentences"
            build_vocoder_cache(source, cache, hifigan, done + CHUNK, progress=False)
    spoken = len(read_manifest(cache))
    if spoken < 2:
        raise ValueError("fewer than two of the sentences could be spoken; check the text")
    base = vocoder_checkpoints(host.data)[r.base] if r.base else None
    cfg = vocoder_config(r, cache, base, spoken)
    run_dir = job.run_dir = host.new_run_dir(job)
    job.status, job.message = "training", "loading the vocoder teacher's outputs"

    out = distill_vocoder(cfg, run_dir, progress=False, should_stop=job.cancel.is_set, on_step=job.record,
                          on_log=job.record_validation)
    if job.stopped_in_training():
        return
    _publish(host, job, out, base, spoken, time.perf_counter() - t0)


def _publish(host: JobHost, job: Job, out: Path, base: Path | None, spoken: int, seconds: float) -> None:
    r = job.request
    job.status = "saving"
    folder = host.data / VOCODER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(r.name, set(vocoder_checkpoints(host.data)))
    path = folder / f"{name}.safetensors"
    vocoder = load_vocoder(out)
    info = {**vocoder.info, "finetune": {k: v for k, v in asdict(r).items() if k != "text"},
            "base": base.name if base else None, "sentences": spoken, "final": job.rows[-1]}
    publish(save_student(vocoder, out.parent / f"{name}.safetensors", info), path)
    evict_oldest(folder, host.max_checkpoints)
    job.checkpoint = str(path)
    job.status = "done"
    job.message = (f"saved student vocoder **{name}** after {r.steps} steps in {seconds:.0f} s; choose it in the "
                   "Compare tab with the HiFi-GAN teacher")
