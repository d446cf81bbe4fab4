"""A fine-tune of the text-to-speech student: the Distill tab with the Piper teacher chosen.

`kdtts.distill.train.distill()` (the same loop as `python -m kdtts distill`) on exactly the chosen sentences,
read once by the runner's teacher (or on a visitor's recordings, aligned to the teacher's reading), with
per-step progress and cancel; the result is published into `<data>/checkpoints` under a new name, never over
an existing file or the shipped student, oldest evicted.

With `recipe` set, the job is the recipe's short form (configs/recipe_finetune.json: the front's regression and
the decoder's adversarial stage, then compose, export and a short evaluation) on the same text, within its
budget in minutes; the card the recipe writes is published beside the checkpoint (`<name>.card.md`).
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
    if r.recipe:
        return _recipe(host, job, cache, sentences, base_path, spoken, time.perf_counter() - t0)
    cfg = r.to_config(cache, host.teacher.model_path, base_path, spoken)
    _distill(host, job, cfg, sentences, base_path, spoken, time.perf_counter() - t0)


def _recipe(host: JobHost, job: Job, cache: Path, sentences: list[str], base_path: Path | None, spoken: int,
            cache_seconds: float) -> None:
    from kdtts.distill.recipe import Recipe, Stopped, run_recipe

    r = job.request
    recipe = Recipe.load(r.recipe)
    recipe.sentences, recipe.min_utterances = spoken, min(recipe.min_utterances, spoken)
    recipe.temperature = float(r.temperature)
    for stage in recipe.stages:  # a visitor's few sentences: validate on a fifth of them, as one regression does
        if "validation_utts" in stage.settings:
            stage.settings["validation_utts"] = max(1, min(stage.settings["validation_utts"], spoken // 5))
    run_dir = job.run_dir = host.new_run_dir(job)
    job.status, job.message = "training", f"the {recipe.name} recipe starts"
    minutes = float(r.minutes)
    command = (f"the app's Distill tab: the {recipe.name} recipe, {minutes:g} min, from "
               f"{base_path.name if base_path else recipe.init}, on {spoken} sentences")
    # the teacher has read the text already (the cache): the budget left is for the stages
    hours = max(60.0, minutes * 60 - cache_seconds) / 3600
    try:
        student = run_recipe(recipe, run_dir, voice=str(host.teacher.model_path), hours=hours,
                             cache_dir=str(cache), command=command, progress=False,
                             init=str(base_path) if base_path else None, corpus=sentences,
                             should_stop=job.cancel.is_set, on_progress=job.progress,
                             on_step=lambda step, row: job.rows.append({k: v for k, v in row.items() if k != "stage"}))
    except Stopped:
        job.status, job.message = "cancelled", f"cancelled in {job.stage or 'the recipe'}; nothing was saved"
        return
    state = json.loads((run_dir / "recipe_state.json").read_text())
    stages = {name: {k: v for k, v in record.items() if k in ("steps", "seconds", "metrics")}
              for name, record in state["stages"].items()}
    _publish(host, job, student, base_path, spoken, cache_seconds, card=(run_dir / "MODEL_CARD.md").read_text(),
             extra={"recipe": recipe.name, "minutes": minutes, "stages": stages, "train_seconds": state["seconds"]})


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
             cache_seconds: float, card: str | None = None, extra: dict | None = None) -> None:
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
            "final": job.rows[-1] if job.rows else None, "train_seconds": job.rows[-1]["seconds"] if job.rows else None,
            "cache_seconds": round(cache_seconds, 1), **(extra or {})}
    publish(save_student(student, exported.parent / f"{name}.safetensors", info), path)
    (path.with_suffix(".losses.json")).write_text(json.dumps(job.rows))
    if card is not None:
        path.with_suffix(".card.md").write_text(card)
        job.card = card
    evicted = evict_oldest(folder, host.max_checkpoints)
    if evicted:
        log.info("fine-tune %s: deleted the oldest checkpoints %s", job.id, evicted)
    job.checkpoint = str(path)
    job.status = "done"
    did = f"the {r.recipe} recipe" if r.recipe else f"{r.steps} steps"
    job.message = (f"saved checkpoint **{name}** after {did} in {time.time() - job.started:.0f} s "
                   f"(teacher reading {cache_seconds:.0f} s); choose it in the Compare tab")
