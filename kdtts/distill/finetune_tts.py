"""A fine-tune of the text-to-speech student: the Distill tab with the Piper teacher chosen.

`kdtts.distill.train.distill()` (the same loop as `python -m kdtts distill`) on exactly the chosen sentences,
read once by the runner's teacher (or on a visitor's recordings, aligned to the teacher's reading), with
per-step progress and cancel; the result is published into `<data>/checkpoints` under a new name, never over
an existing file or the shipped student, oldest evicted.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from kdtts.distill.config import DistillConfig
from kdtts.distill.data import read_manifest
from kdtts.distill.finetune_job import Job, JobHost, job_sentences
from kdtts.distill.finetune_request import MAX_USER_SENTENCES, checkpoint_name
from kdtts.distill.publish import evict_oldest, publish
from kdtts.distill.train import distill
from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student, save_student

log = logging.getLogger("kdtts.distill")


def train_tts_job(host: JobHost, job: Job) -> None:
    r = job.request
    base_path = host.checkpoints()[r.base] if r.base else None
    if r.recordings:  # the recordings' own text; they are aligned to the teacher's reading in distill()
        cfg = r.to_config(host.data / "finetune_cache" / "user-recordings", host.teacher.model_path, base_path,
                          spoken=MAX_USER_SENTENCES)
        return _distill(host, job, cfg, None, base_path, 0, 0.0)
    t0 = time.perf_counter()
    sentences = job_sentences(r)
    cache = host.read_text(job, sentences)
    if job.stopped_before_training():
        return
    wanted = set(sentences)
    spoken = sum(1 for item in read_manifest(cache) if item["text"] in wanted)
    if spoken < 2:
        raise ValueError("fewer than two of the sentences could be spoken; check the text")
    cfg = r.to_config(cache, host.teacher.model_path, base_path, spoken)
    _distill(host, job, cfg, sentences, base_path, spoken, time.perf_counter() - t0)


def _distill(host: JobHost, job: Job, cfg: DistillConfig, sentences: list[str] | None, base_path: Path | None,
             spoken: int, cache_seconds: float) -> None:
    run_dir = job.run_dir = host.new_run_dir(job)
    job.status, job.message = "training", "loading the teacher's outputs"

    def on_sample(path: Path) -> None:  # kept outside the run folder, which goes when the job ends
        kept = host.data / "finetune_samples" / job.id / path.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept)
        job.samples.append((job.step, kept))

    exported = distill(cfg, run_dir, progress=False, should_stop=job.cancel.is_set, on_log=job.record_validation,
                       on_step=job.record, sentences=sentences, teacher=host.teacher, on_sample=on_sample)
    if job.stopped_in_training():  # the run dir goes with the job; nothing is kept
        return
    _publish(host, job, exported, base_path, spoken, cache_seconds)


def _publish(host: JobHost, job: Job, exported: Path, base_path: Path | None, spoken: int,
             cache_seconds: float) -> None:
    r = job.request
    job.status = "saving"
    name = checkpoint_name(r.name, set(host.checkpoints()))
    folder = host.checkpoint_dir
    path = folder / f"{name}.safetensors"
    if path.resolve() == SHIPPED_STUDENT.resolve() or path.exists():  # never overwrite anything
        raise RuntimeError(f"refusing to overwrite {path}")
    student = load_student(exported)
    info = {**student.info, "finetune": {k: v for k, v in asdict(r).items() if k != "text"},
            "base": base_path.name if base_path else None, "sentences": spoken, "user_text": bool(r.text.strip()),
            "recordings": student.info.get("teacher", {}).get("recordings"),
            "final": job.rows[-1], "train_seconds": job.rows[-1]["seconds"], "cache_seconds": round(cache_seconds, 1)}
    publish(save_student(student, exported.parent / f"{name}.safetensors", info), path)
    (path.with_suffix(".losses.json")).write_text(json.dumps(job.rows))
    evicted = evict_oldest(folder, host.max_checkpoints)
    if evicted:
        log.info("fine-tune %s: deleted the oldest checkpoints %s", job.id, evicted)
    job.checkpoint = str(path)
    job.status = "done"
    job.message = (f"saved checkpoint **{name}** after {r.steps} steps in {time.time() - job.started:.0f} s "
                   f"(teacher reading {cache_seconds:.0f} s); choose it in the Compare tab")
