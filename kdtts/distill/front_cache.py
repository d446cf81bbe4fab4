"""The decoder's corpus as the student will feed it: the student front's z, paired with the teacher's audio.

A decoder trained only on the teacher's z meets a different input at inference (the student front's z, which is
smoother and drifts), as a vocoder trained on ground-truth mels meets predicted ones. Like fine-tuning a vocoder
on an acoustic model's predicted ("ground-truth aligned") mels, this cache stores, for each teacher utterance,
the front's z for the teacher's own durations in the `z` slot and the teacher's audio in the `audio` slot (the
durations are the teacher's, so both stay frame-aligned). The adversarial stage reads it unchanged
(`python -m kdtts adversarial --cache-dir CACHE`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kdtts.distill.data import Utt, derive_cache, teacher_record
from kdtts.student.checkpoint import load_student


def build_front_cache(source: Path, cache: Path, student_path: str | Path, limit: int | None = None,
                      progress: bool = True) -> Path:
    """Write the first `limit` utterances of the teacher cache `source` into `cache` with the student front's z."""
    source, cache = Path(source), Path(cache)
    student = load_student(student_path)
    record = {**teacher_record(source), "z_from": f"student front of {Path(student_path).name}"}

    def derive(utt: Utt) -> tuple[np.ndarray, ...]:
        frames = int(utt.durations.sum())
        with torch.inference_mode():
            z = student.front(utt.ids[None], utt.durations[None], torch.ones(1, 1, len(utt.ids)),
                              torch.ones(1, 1, frames))[0]
        return utt.ids.numpy(), utt.durations.numpy(), z.numpy(), utt.audio.numpy()

    return derive_cache(source, cache, record, derive, limit, "student front z", progress)
