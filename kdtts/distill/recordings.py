"""Recordings (ground truth y) for the full KD loss: an LJSpeech-style folder, read, checked, and
aligned to the teacher's timing.

    DATASET/metadata.csv    id|text  or  id|text|normalised text   (UTF-8, one clip per line)
    DATASET/wavs/<id>.wav   any sample rate and channel count

Each clip is resampled and mixed down to the teacher's AudioSpec and trimmed of leading and trailing
silence. A Piper teacher has no posterior encoder, so a recording cannot be turned into the teacher's
z; but its front accepts any durations. So the teacher reads the text (deterministic), a DTW between
its log-mel and the recording's maps teacher frames to recording frames (kdtts.align), which gives the
recording's own per-phoneme durations y_d. With y_d, the teacher's z and audio, the student's, and the
recording are all frame-aligned, so every loss compares like with like.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from kdtts.audio import AudioSpec, read_wav

MAX_CLIP_SECONDS = 30.0
MAX_CLIPS = 2000


class DatasetError(ValueError):
    """A dataset kdtts cannot use; the one-line message names the file or line and the cause."""


@dataclass
class Clip:
    id: str
    text: str
    audio: np.ndarray        # float32 mono at the teacher's rate, silence trimmed


@dataclass
class Dataset:
    clips: list[Clip]
    skipped: list[str] = field(default_factory=list)   # "line N: cause", one per unusable clip


def trim_silence(audio: np.ndarray, rate: int, threshold_db: float = 40.0, pad_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing stretches more than `threshold_db` below the clip's peak (10 ms frames)."""
    frame = max(1, rate // 100)
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt(np.mean(audio[:n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-10
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > -threshold_db)
    pad = int(pad_s * rate)
    return audio[max(0, loud[0] * frame - pad):min(len(audio), (loud[-1] + 1) * frame + pad)]


def _read_clip(path: Path, spec: AudioSpec) -> np.ndarray:
    """Mono float32 at the spec's rate, trimmed; DatasetError saying what is wrong with the file."""
    if not path.exists():
        raise DatasetError(f"{path.parent.name}/{path.name} is missing")
    try:
        audio, rate = read_wav(path, spec.sample_rate)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise DatasetError(f"{path.name} is not a readable audio file ({error})") from None
    if audio.size == 0 or not np.abs(audio).max() > 1e-4:
        raise DatasetError(f"{path.name} is empty or silent")
    if len(audio) / rate > MAX_CLIP_SECONDS:
        raise DatasetError(f"{path.name} is {len(audio) / rate:.0f} s long; clips may be at most {MAX_CLIP_SECONDS:.0f} s")
    return trim_silence(audio, rate)


def read_dataset(folder: str | Path, spec: AudioSpec, speakable: callable, max_clips: int = MAX_CLIPS) -> Dataset:
    """Every usable clip of an LJSpeech-style folder; unusable ones are listed in `skipped`.

    speakable(text) -> bool: whether the teacher can read a text. Raises DatasetError when the folder
    itself is unusable (no or non-UTF-8 metadata, more than `max_clips` lines, no usable clip)."""
    folder = Path(folder)
    metadata = folder / "metadata.csv"
    if not metadata.exists():
        raise DatasetError(f"{folder} has no metadata.csv (expected lines of id|text, and wavs/<id>.wav)")
    try:
        text = metadata.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{metadata} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE), 1)
            if any(cell.strip() for cell in row)]
    if len(rows) > max_clips:
        raise DatasetError(f"{metadata} lists {len(rows):,} clips; the limit is {max_clips:,}")
    dataset = Dataset([])
    for n, row in rows:
        try:
            if len(row) < 2 or not row[0].strip():
                raise DatasetError("expected id|text")
            clip_text = (row[2] if len(row) > 2 and row[2].strip() else row[1]).strip()
            if not speakable(clip_text):
                raise DatasetError(f"nothing speakable in {clip_text!r}")
            dataset.clips.append(Clip(row[0].strip(), clip_text, _read_clip(folder / "wavs" / f"{row[0].strip()}.wav", spec)))
        except DatasetError as error:
            dataset.skipped.append(f"metadata.csv line {n}: {error}")
    if not dataset.clips:
        causes = "; ".join(dataset.skipped[:3]) or "metadata.csv lists no clips"
        raise DatasetError(f"{folder}: 0 usable clips ({causes})")
    return dataset
