"""The decoder's corpus as the student will feed it: the student front's z, paired with the teacher's audio.

A decoder trained only on the teacher's z meets a different input at inference (the student front's z, which is
smoother and drifts), as a vocoder trained on ground-truth mels meets predicted ones. Like fine-tuning a vocoder
on an acoustic model's predicted ("ground-truth aligned") mels, this cache stores, for each teacher utterance,
the front's z for the teacher's own durations in the `z` slot and the teacher's audio in the `audio` slot (the
durations are the teacher's, so both stay frame-aligned). The adversarial stage reads it unchanged
(`python -m kdtts adversarial --cache-dir CACHE`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from kdtts.distill.data import Utt, derive_cache, teacher_record
from kdtts.student.checkpoint import load_student


def takes_front_z(ids: np.ndarray, mix: float) -> bool:
    """Whether the utterance of these phoneme ids carries the front's z in a cache of the given mix."""
    return int(hashlib.sha1(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:8], 16) / 0xFFFFFFFF < mix


def build_front_cache(source: Path, cache: Path, student_path: str | Path, limit: int | None = None,
                      progress: bool = True, mix: float = 1.0) -> Path:
    """Write the first `limit` utterances of the teacher cache `source` into `cache`, a fraction `mix` of them
    with the student front's z (the rest with the teacher's)."""
    source, cache = Path(source), Path(cache)
    student = load_student(student_path)
    record = {**teacher_record(source), "z_from": f"student front of {Path(student_path).name}", "z_mix": mix}

    def derive(utt: Utt) -> tuple[np.ndarray, ...]:
        if not takes_front_z(utt.ids.numpy(), mix):
            return utt.ids.numpy(), utt.durations.numpy(), utt.z.float().numpy(), utt.audio.numpy()
        frames = int(utt.durations.sum())
        with torch.inference_mode():
            z = student.front(utt.ids[None], utt.durations[None], torch.ones(1, 1, len(utt.ids)),
                              torch.ones(1, 1, frames))[0]
        return utt.ids.numpy(), utt.durations.numpy(), z.numpy(), utt.audio.numpy()

    return derive_cache(source, cache, record, derive, limit, "student front z", progress)
