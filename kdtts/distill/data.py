"""Teacher corpus cache: the teacher reads the text once; ids, durations, z and audio land on disk.

The cache is resumable (an append-only manifest; a killed run continues where it stopped) and is
never committed. Loading gives in-memory tensors for the training loop.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kdtts.cache import content_hash
from kdtts.teachers.piper import PiperTeacher
from kdtts.text import TextError
from kdtts.voice import Scales


def build_cache(cache: Path, sentences: list[str], teacher: PiperTeacher | None = None, temperature: float = 0.0,
                voice: Path | None = None, progress: bool = True) -> Path:
    """Have the teacher (`teacher`, else loaded from `voice`) read `sentences` at `temperature` (a multiplier
    on its noise scales: 0 = its mean, 1 = its samples); skip those already in the manifest.

    A cache belongs to one voice and one temperature (`teacher.json`); filling it with another is an error."""
    cache = Path(cache)
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    lock = (cache / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another process is filling this cache; train on what is there
        lock.close()
        return cache
    try:
        return _fill_cache(cache, sentences, teacher, temperature, voice, progress)
    finally:
        lock.close()


def voice_identity(model_path: Path) -> dict[str, str]:
    """How a checkpoint names its teacher: the voice's name and content hash, never a machine's path."""
    return {"name": Path(model_path).name.removesuffix(".onnx"), "sha256": content_hash(model_path, "sha256")}


def teacher_record(cache: Path) -> dict:
    """The cache's teacher.json: voice identity, audio spec, scales and temperature ({} for a new cache)."""
    path = Path(cache) / "teacher.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _fill_cache(cache: Path, sentences: list[str], teacher: PiperTeacher | None, temperature: float,
                voice: Path | None, progress: bool) -> Path:
    todo = unread(cache, sentences)
    if not todo:
        return cache
    teacher = teacher or PiperTeacher.load(voice)
    scales = claim_cache(cache, teacher, temperature)
    with (cache / "manifest.jsonl").open("a") as manifest:
        for text in tqdm(todo, desc="teacher reads corpus", unit="sent", disable=not progress):
            row = read_sentence(cache, teacher, scales, text)
            if row is not None:
                manifest.write(json.dumps(row) + "\n")
                manifest.flush()
    write_coverage(cache, teacher.config["phoneme_id_map"], teacher.spec.hop_length / teacher.spec.sample_rate)
    return cache


def unread(cache: Path, sentences: list[str]) -> list[str]:
    """The sentences the cache's manifest does not hold yet, in order."""
    done = {item["text"] for item in read_manifest(cache)}
    return [s for s in sentences if s not in done]


def claim_cache(cache: Path, teacher: PiperTeacher, temperature: float) -> Scales:
    """Write (or check) the cache's teacher.json for this voice and temperature; the scales it reads at."""
    scales = teacher.default_scales.at_temperature(temperature)
    record = {"voice": str(teacher.model_path), **{f"voice_{k}": v for k, v in voice_identity(teacher.model_path).items()},
              "sample_rate": teacher.spec.sample_rate, "hop_length": teacher.spec.hop_length,
              "scales": scales.__dict__, "temperature": temperature}
    old = teacher_record(cache)
    if old and (old.get("voice_sha256", record["voice_sha256"]) != record["voice_sha256"]
                or old.get("temperature") != temperature):
        raise ValueError(f"{cache} holds the outputs of {old.get('voice_name', old.get('voice'))} at temperature "
                         f"{old.get('temperature')}; this run asks for {record['voice_name']} at temperature "
                         f"{temperature}. Use another cache_dir.")
    (cache / "teacher.json").write_text(json.dumps(record, indent=1))
    return scales


def read_sentence(cache: Path, teacher: PiperTeacher, scales: Scales, text: str) -> dict | None:
    """The teacher reads one sentence into `cache/utts`; its manifest row, or None for text it cannot speak."""
    try:
        utterances = teacher.phonemizer(text)
    except TextError:
        return None
    # one teacher pass per bounded piece (memory grows with a pass's frames), joined after
    outs = [teacher.full(np.asarray(u.ids, dtype=np.int64), scales) for u in utterances]
    ids = np.concatenate([u.ids for u in utterances])
    durations = np.concatenate([o.durations for o in outs])
    z = np.concatenate([o.z for o in outs], axis=1)
    audio = np.concatenate([o.audio for o in outs])
    return write_utt(cache, text, ids, durations, z, audio)


def write_utt(cache: Path, text: str, ids: np.ndarray, durations: np.ndarray, z: np.ndarray,
              audio: np.ndarray, name: str | None = None) -> dict:
    """One reading to `cache/utts` (named by its text unless `name` is given); returns its manifest row."""
    name = name or hashlib.sha1(text.encode()).hexdigest()[:16] + ".npz"
    np.savez(Path(cache) / "utts" / name, ids=ids.astype(np.int16), durations=durations.astype(np.int16),
             z=z.astype(np.float16), audio=_pcm(audio))
    return {"text": text, "file": name, "frames": int(durations.sum()), "ids": len(ids)}


def derive_cache(source: Path, cache: Path, record: dict, derive: Callable[[Utt], tuple[np.ndarray, ...]],
                 limit: int | None, desc: str, progress: bool) -> Path:
    """A cache made from another one utterance by utterance: `derive(utt)` gives (ids, durations, z, audio).

    Resumable: the manifest is append-only and utterances already there are skipped."""
    source, cache = Path(source), Path(cache)
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    (cache / "teacher.json").write_text(json.dumps(record, indent=1))
    done = {item["text"] for item in read_manifest(cache)}
    items = [item for item in read_manifest(source)[:limit] if item["text"] not in done]
    with (cache / "manifest.jsonl").open("a") as manifest:
        for item in tqdm(items, desc=desc, unit="utt", disable=not progress):
            utt = load_utt(source, item)
            if utt is None:
                continue
            manifest.write(json.dumps(write_utt(cache, item["text"], *derive(utt), name=item["file"])) + "\n")
            manifest.flush()
    return cache


def write_coverage(cache: Path, id_map: dict[str, list[int]], seconds_per_frame: float) -> dict:
    """Which of the voice's phonemes the corpus contains, and how often (coverage.json)."""
    counts: Counter[int] = Counter()
    frames = 0
    for item in read_manifest(cache):
        with np.load(cache / "utts" / item["file"]) as f:
            counts.update(f["ids"].tolist())
        frames += item["frames"]
    seen = {ph: sum(counts[i] for i in ids) for ph, ids in id_map.items()}
    report = {"utterances": len(read_manifest(cache)), "audio_hours": frames * seconds_per_frame / 3600,
              "phonemes_in_voice": len(id_map), "phonemes_seen": sum(1 for n in seen.values() if n),
              "missing": sorted(ph for ph, n in seen.items() if not n), "counts": seen}
    (cache / "coverage.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return report


def read_manifest(cache: Path) -> list[dict]:
    path = Path(cache) / "manifest.jsonl"
    return [json.loads(line) for line in path.open()] if path.exists() else []


@dataclass
class Utt:
    """One utterance's targets. z, audio (and gt_audio) are frame-aligned with `durations`."""

    ids: torch.Tensor        # long [N]
    durations: torch.Tensor  # long [N]: the timing z and audio follow (a recording's own, for a recording)
    z: torch.Tensor          # half [192, T]: the teacher's latent for those durations
    audio: torch.Tensor      # float [T * hop]: the teacher's audio for that z
    teacher_durations: torch.Tensor | None = None  # long [N]: the teacher's own timing, when it differs
    gt_audio: torch.Tensor | None = None           # float [T * hop]: the recording (ground truth y)


def load_cache(cache: Path, limit: int | None = None, start: int = 0, texts: set[str] | None = None) -> list[Utt]:
    """Cached utterances [start:limit] in memory (a few hundred MB for a few hours of audio);
    with `texts`, only the utterances of those sentences."""
    items = [item for item in read_manifest(cache)[start:limit] if texts is None or item["text"] in texts]
    return [u for u in (load_utt(cache, item) for item in items) if u is not None]


def load_utt(cache: Path, item: dict) -> Utt | None:
    """One manifest entry's utterance; None for a file overwritten by a concurrent writer (skip rather than
    mislabel)."""
    with np.load(Path(cache) / "utts" / item["file"]) as f:
        if len(f["ids"]) != item["ids"] or f["z"].shape[1] != item["frames"]:
            return None
        return Utt(torch.from_numpy(f["ids"].astype(np.int64)),
                   torch.from_numpy(f["durations"].astype(np.int64)),
                   torch.from_numpy(f["z"]),
                   torch.from_numpy(f["audio"].astype(np.float32) / 32767.0),
                   torch.from_numpy(f["teacher_durations"].astype(np.int64)) if "teacher_durations" in f else None,
                   torch.from_numpy(f["gt_audio"].astype(np.float32) / 32767.0) if "gt_audio" in f else None)


def _pcm(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


MAX_READING_RATIO = 3.0
"""A recording's text that the teacher reads in more than this many times the recording's length is not
the recording's text (or not all of it); the teacher stops reading it there."""


def build_recordings_cache(cache: Path, clips: list, teacher: PiperTeacher, max_cost: float = 1.0,
                           progress: bool = True) -> dict:
    """Align each recording to the teacher's reading (kdtts.align) and cache, per clip: ids, the
    recording's durations, the teacher's own durations, the teacher's z and audio for the recording's
    durations, and the recording. Clips whose alignment costs more than `max_cost` are skipped, and so
    are clips whose text reads far longer than the recording (MAX_READING_RATIO).

    The teacher reads a clip's text in the same bounded passes as any other text (kdtts.text's pieces),
    so memory grows with a pass, not with a line of metadata.csv.
    Returns {"aligned", "skipped_poor_alignment", "skipped_text_too_long", "costs"} (also in
    cache/alignment.json)."""
    from kdtts.align import align_durations

    cache = Path(cache)
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    scales = teacher.default_scales.deterministic()
    hop = teacher.spec.hop_length
    report: dict = {"aligned": 0, "skipped_poor_alignment": 0, "skipped_text_too_long": 0, "costs": {}}
    with (cache / "manifest.jsonl").open("w") as manifest:
        for clip in tqdm(clips, desc="aligning recordings", unit="clip", disable=not progress):
            frames = len(clip.audio) // hop
            pieces = [np.asarray(u.ids, dtype=np.int64) for u in teacher.phonemizer(clip.text)]
            readings = []
            for ids in pieces:  # one bounded pass per piece, stopped once the reading outgrows the recording
                readings.append(teacher.full(ids, scales))
                if sum(len(r.audio) for r in readings) > MAX_READING_RATIO * len(clip.audio):
                    break
            if len(readings) < len(pieces) or sum(len(r.audio) for r in readings) > MAX_READING_RATIO * len(clip.audio):
                report["skipped_text_too_long"] += 1
                continue
            ids = np.concatenate(pieces)
            reading_durations = np.concatenate([r.durations for r in readings])
            durations, cost = align_durations(np.concatenate([r.audio for r in readings]), reading_durations,
                                              clip.audio[:frames * hop], teacher.spec)
            report["costs"][clip.id] = round(cost, 4)
            if cost > max_cost:
                report["skipped_poor_alignment"] += 1
                continue
            bounds = np.cumsum([0] + [len(p) for p in pieces])
            z = np.concatenate([teacher.latent(p, durations[a:b], scales)
                                for p, a, b in zip(pieces, bounds[:-1], bounds[1:]) if durations[a:b].sum() > 0], axis=1)
            audio = teacher.decode(z)  # at most MAX_CLIP_SECONDS of frames: one pass
            name = f"{hashlib.sha1(clip.id.encode()).hexdigest()[:16]}.npz"
            np.savez(cache / "utts" / name, ids=ids.astype(np.int16), durations=durations.astype(np.int16),
                     teacher_durations=reading_durations.astype(np.int16), z=z.astype(np.float16),
                     audio=_pcm(audio), gt_audio=_pcm(clip.audio[:frames * hop]))
            manifest.write(json.dumps({"text": clip.text, "id": clip.id, "file": name, "frames": int(durations.sum()),
                                       "ids": len(ids), "alignment_cost": round(cost, 4)}) + "\n")
            report["aligned"] += 1
    (cache / "alignment.json").write_text(json.dumps(report, indent=1))
    return report
