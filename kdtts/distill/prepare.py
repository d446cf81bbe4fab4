"""What a distillation run trains on: the teacher's readings of a text corpus (the cache), or a
dataset of recordings aligned to the teacher's reading; with the teacher's audio spec either way."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from kdtts.audio import AudioSpec
from kdtts.distill import parallel
from kdtts.distill.config import DistillConfig
from kdtts.distill.data import (
    Utt,
    build_cache,
    build_recordings_cache,
    load_cache,
    read_manifest,
    teacher_record,
    voice_identity,
)
from kdtts.teachers.piper import PiperTeacher

log = logging.getLogger("kdtts.distill")


@dataclass
class Data:
    """The utterances a run trains and validates on, and the audio spec of the teacher that read them."""

    cache: Path
    spec: AudioSpec
    teacher: dict           # teacher.json: voice name and hash, spec, scales, temperature
    train: list[Utt]
    val: list[Utt]
    seen: int               # manifest entries loaded (for grow_with_cache)


def prepare_data(cfg: DistillConfig, sentences: list[str] | None, teacher: PiperTeacher | None,
                 progress: bool, rank: int = 0) -> Data:
    """Fill the cache where needed (rank 0), then load it: exactly `sentences`, or the corpus prefix."""
    from kdtts.distill.corpus import build_corpus

    if cfg.data:
        return prepare_recordings(cfg, teacher, progress)
    cache = Path(cfg.cache_dir)
    texts = None if sentences is None else list(dict.fromkeys(sentences))
    extra = Path(cfg.extra_text) if cfg.extra_text else None
    if rank == 0 and (texts is not None or len(read_manifest(cache)) < cfg.sentences):
        build_cache(cache, texts if texts is not None else build_corpus(extra, limit=cfg.sentences), teacher,
                    cfg.temperature, Path(cfg.voice) if cfg.voice else None, progress)
    parallel.barrier()
    seen = 0 if texts is not None else parallel.agree(min(len(read_manifest(cache)), cfg.sentences))
    utts = load_cache(cache, texts=set(texts)) if texts is not None else load_cache(cache, limit=seen)
    if len(utts) <= cfg.validation_utts:
        raise ValueError(f"the cache has {len(utts)} utterances; need more than validation_utts={cfg.validation_utts}")
    record = teacher_record(cache)
    spec = AudioSpec(sample_rate=record.get("sample_rate", AudioSpec.sample_rate),
                     hop_length=record.get("hop_length", AudioSpec.hop_length))
    return Data(cache, spec, record, utts[cfg.validation_utts:], utts[:cfg.validation_utts], seen)


def prepare_recordings(cfg: DistillConfig, teacher: PiperTeacher | None, progress: bool) -> Data:
    """A dataset of recordings, aligned to the teacher's reading (cached per dataset content and voice)."""
    from kdtts.distill.recordings import DatasetError, read_dataset
    from kdtts.text import TextError

    teacher = teacher or PiperTeacher.load(cfg.voice)

    def speakable(text: str) -> bool:
        try:
            return bool(teacher.phonemizer(text))
        except TextError:
            return False

    dataset = read_dataset(cfg.data, teacher.spec, speakable)
    for line in dataset.skipped:
        log.warning("skipped %s", line)
    key = hashlib.sha1(json.dumps([[c.id, c.text, len(c.audio), float(c.audio.sum())] for c in dataset.clips]
                                  + [voice_identity(teacher.model_path)["sha256"]]).encode()).hexdigest()[:12]
    cache = Path(cfg.cache_dir) / "recordings" / key
    if not (cache / "alignment.json").exists():
        report = build_recordings_cache(cache, dataset.clips, teacher, cfg.max_alignment_cost, progress)
        log.info("aligned %d recordings; skipped %d whose alignment cost exceeds %s", report["aligned"],
                    report["skipped_poor_alignment"], cfg.max_alignment_cost)
    utts = load_cache(cache)
    if not utts:
        raise DatasetError(f"{cfg.data}: no recording aligned with the teacher's reading (see {cache}/alignment.json)")
    n_val = min(cfg.validation_utts, len(utts) // 5)  # a small dataset keeps most clips for training
    identity = voice_identity(teacher.model_path)
    record = {"voice": str(teacher.model_path), "voice_name": identity["name"], "voice_sha256": identity["sha256"], "sample_rate": teacher.spec.sample_rate,
              "hop_length": teacher.spec.hop_length, "temperature": 0.0, "recordings": len(utts)}
    return Data(cache, teacher.spec, record, utts[n_val:], utts[:n_val] or utts[:1], len(utts))
