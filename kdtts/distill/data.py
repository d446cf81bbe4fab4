"""Teacher corpus cache: the teacher reads the text once; ids, durations, z and audio land on disk.

The cache is resumable (an append-only manifest; a killed run continues where it stopped) and is
never committed. Loading gives in-memory tensors for the training loop.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kdtts.teachers.piper import PiperTeacher
from kdtts.voice import Scales
from kdtts.text import TextError


@dataclass
class CorpusConfig:
    cache_dir: Path
    sentences: int = 3000
    extra_text: Path | None = None
    temperature: float = 0.0  # multiplies the voice's noise scales: 0 = the teacher's mean, 1 = its samples
    voice: Path | None = None


def teacher_scales(teacher: PiperTeacher, temperature: float) -> Scales:
    d = teacher.default_scales
    return Scales(noise=d.noise * temperature, length=d.length, noise_w=d.noise_w * temperature)


def build_cache(config: CorpusConfig, sentences: list[str], teacher: PiperTeacher | None = None,
                progress: bool = True) -> Path:
    """Have the teacher read `sentences`; skip those already in the manifest."""
    cache = Path(config.cache_dir)
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    lock = (cache / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another process is filling this cache; train on what is there
        lock.close()
        return cache
    try:
        return _fill_cache(cache, config, sentences, teacher, progress)
    finally:
        lock.close()


def _fill_cache(cache: Path, config: CorpusConfig, sentences: list[str], teacher: PiperTeacher | None,
                progress: bool) -> Path:
    manifest_path = cache / "manifest.jsonl"
    done = {json.loads(line)["text"] for line in manifest_path.open()} if manifest_path.exists() else set()
    todo = [s for s in sentences if s not in done]
    if not todo:
        return cache
    teacher = teacher or PiperTeacher.load(config.voice)
    scales = teacher_scales(teacher, config.temperature)
    (cache / "teacher.json").write_text(json.dumps({
        "voice": str(teacher.model_path), "sample_rate": teacher.sample_rate, "hop_length": teacher.hop_length,
        "scales": scales.__dict__, "temperature": config.temperature}, indent=1))
    with manifest_path.open("a") as manifest:
        for text in tqdm(todo, desc="teacher reads corpus", unit="sent", disable=not progress):
            try:
                utterances = teacher.phonemizer(text)
            except TextError:
                continue
            # one teacher pass per bounded piece (memory grows with a pass's frames), joined after
            outs = [teacher.full(np.asarray(u.ids, dtype=np.int64), scales) for u in utterances]
            ids = np.concatenate([u.ids for u in utterances])
            durations = np.concatenate([o.durations for o in outs])
            z = np.concatenate([o.z for o in outs], axis=1)
            audio = np.concatenate([o.audio for o in outs])
            name = hashlib.sha1(text.encode()).hexdigest()[:16] + ".npz"
            np.savez(cache / "utts" / name, ids=ids.astype(np.int16), durations=durations.astype(np.int16),
                     z=z.astype(np.float16), audio=(np.clip(audio, -1, 1) * 32767).astype(np.int16))
            manifest.write(json.dumps({"text": text, "file": name, "frames": int(durations.sum()),
                                       "ids": len(ids)}) + "\n")
            manifest.flush()
    write_coverage(cache, teacher.config["phoneme_id_map"])
    return cache


def write_coverage(cache: Path, id_map: dict[str, list[int]]) -> dict:
    """Which of the voice's phonemes the corpus contains, and how often (coverage.json)."""
    counts: Counter[int] = Counter()
    frames = 0
    for item in read_manifest(cache):
        with np.load(cache / "utts" / item["file"]) as f:
            counts.update(f["ids"].tolist())
        frames += item["frames"]
    seen = {ph: sum(counts[i] for i in ids) for ph, ids in id_map.items()}
    report = {"utterances": len(read_manifest(cache)), "audio_hours": frames * 256 / 22050 / 3600,
              "phonemes_in_voice": len(id_map), "phonemes_seen": sum(1 for n in seen.values() if n),
              "missing": sorted(ph for ph, n in seen.items() if not n), "counts": seen}
    (cache / "coverage.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return report


def read_manifest(cache: Path) -> list[dict]:
    path = Path(cache) / "manifest.jsonl"
    return [json.loads(line) for line in path.open()] if path.exists() else []


@dataclass
class Utt:
    ids: torch.Tensor        # long [N]
    durations: torch.Tensor  # long [N]
    z: torch.Tensor          # half [192, T]
    audio: torch.Tensor      # float [T * hop]


def load_cache(cache: Path, limit: int | None = None, start: int = 0, texts: set[str] | None = None) -> list[Utt]:
    """Cached utterances [start:limit] in memory (a few hundred MB for a few hours of audio);
    with `texts`, only the utterances of those sentences."""
    utts = []
    for item in read_manifest(cache)[start:limit]:
        if texts is not None and item["text"] not in texts:
            continue
        with np.load(Path(cache) / "utts" / item["file"]) as f:
            if len(f["ids"]) != item["ids"] or f["z"].shape[1] != item["frames"]:
                continue  # a file overwritten by a concurrent writer: skip rather than mislabel
            utts.append(Utt(torch.from_numpy(f["ids"].astype(np.int64)),
                            torch.from_numpy(f["durations"].astype(np.int64)),
                            torch.from_numpy(f["z"]),
                            torch.from_numpy(f["audio"].astype(np.float32) / 32767.0)))
    return utts
