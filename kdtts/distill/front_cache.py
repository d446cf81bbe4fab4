"""The decoder's corpus as the student will feed it: the student front's z, paired with the teacher's audio.

A decoder trained only on the teacher's z meets a different input at inference (the student front's z, which is
smoother and drifts), as a vocoder trained on ground-truth mels meets predicted ones. Like fine-tuning a vocoder
on an acoustic model's predicted ("ground-truth aligned") mels, this cache stores, for each teacher utterance,
the front's z for the teacher's own durations in the `z` slot and the teacher's audio in the `audio` slot (the
durations are the teacher's, so both stay frame-aligned). The adversarial stage reads it unchanged
(`python -m kdtts adversarial --cache-dir CACHE`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kdtts.distill.data import load_utt, read_manifest, teacher_record
from kdtts.student.checkpoint import load_student


def build_front_cache(source: Path, cache: Path, student_path: str | Path, limit: int | None = None,
                      progress: bool = True) -> Path:
    """Write the first `limit` utterances of the teacher cache `source` into `cache` with the student front's z."""
    source, cache = Path(source), Path(cache)
    student = load_student(student_path)
    record = {**teacher_record(source), "z_from": f"student front of {Path(student_path).name}"}
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    (cache / "teacher.json").write_text(json.dumps(record, indent=1))
    done = {item["text"] for item in read_manifest(cache)}
    items = [item for item in read_manifest(source)[:limit] if item["text"] not in done]
    with (cache / "manifest.jsonl").open("a") as manifest, torch.inference_mode():
        for item in tqdm(items, desc="student front z", unit="utt", disable=not progress):
            utt = load_utt(source, item)
            if utt is None:
                continue
            frames = int(utt.durations.sum())
            z = student.front(utt.ids[None], utt.durations[None], torch.ones(1, 1, len(utt.ids)),
                              torch.ones(1, 1, frames))[0]
            np.savez(cache / "utts" / item["file"], ids=utt.ids.numpy().astype(np.int16),
                     durations=utt.durations.numpy().astype(np.int32), z=z.numpy().astype(np.float16),
                     audio=(utt.audio.numpy() * 32767).astype(np.int16))
            manifest.write(json.dumps({"text": item["text"], "file": item["file"], "frames": frames,
                                       "ids": len(utt.ids)}) + "\n")
            manifest.flush()
    return cache
