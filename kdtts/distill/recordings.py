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

from kdtts.audio import AudioSpec, resample

MAX_CLIP_SECONDS = 30.0
MAX_CLIPS = 2000
RATES = (8000, 96000)          # sample rates accepted (Hz): a lower one fits hours into a small file
MAX_CHANNELS = 2
MAX_METADATA_BYTES = 4 * 2**20  # metadata.csv: MAX_CLIPS lines of up to a few thousand characters


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


def clip_seconds(path: Path) -> float:
    """A clip's length from its header alone (nothing decoded); DatasetError when the header is unreadable
    or names a length, rate or channel count kdtts does not take."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as error:
        raise DatasetError(f"{path.name} is not a readable audio file ({error})") from None
    if not RATES[0] <= info.samplerate <= RATES[1]:
        raise DatasetError(f"{path.name} is sampled at {info.samplerate} Hz; clips must be {RATES[0]}-{RATES[1]} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise DatasetError(f"{path.name} has {info.channels} channels; clips must be mono or stereo")
    seconds = info.frames / info.samplerate
    if seconds > MAX_CLIP_SECONDS:
        raise DatasetError(f"{path.name} is {seconds:.0f} s long; clips may be at most {MAX_CLIP_SECONDS:.0f} s")
    return seconds


def _read_clip(path: Path, spec: AudioSpec) -> np.ndarray:
    """Mono float32 at the spec's rate, trimmed; DatasetError saying what is wrong with the file.
    The header is checked first, and at most MAX_CLIP_SECONDS are ever decoded."""
    if not path.exists():
        raise DatasetError(f"{path.parent.name}/{path.name} is missing")
    clip_seconds(path)
    try:
        with sf.SoundFile(str(path)) as f:
            rate, limit = f.samplerate, int(MAX_CLIP_SECONDS * f.samplerate)
            audio = f.read(limit + 1, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise DatasetError(f"{path.name} is not a readable audio file ({error})") from None
    if len(audio) > limit:  # the header understated the length
        raise DatasetError(f"{path.name} is longer than {MAX_CLIP_SECONDS:.0f} s; clips may be at most "
                           f"{MAX_CLIP_SECONDS:.0f} s")
    audio = resample(audio.mean(axis=1), rate, spec.sample_rate)
    if audio.size == 0 or not np.abs(audio).max() > 1e-4:
        raise DatasetError(f"{path.name} is empty or silent")
    return trim_silence(audio, spec.sample_rate)


def read_dataset(folder: str | Path, spec: AudioSpec, speakable: callable, max_clips: int = MAX_CLIPS) -> Dataset:
    """Every usable clip of an LJSpeech-style folder; unusable ones are listed in `skipped`.

    speakable(text) -> bool: whether the teacher can read a text. Raises DatasetError when the folder
    itself is unusable (no or non-UTF-8 metadata, more than `max_clips` lines, no usable clip)."""
    folder = Path(folder)
    metadata = folder / "metadata.csv"
    if not metadata.exists():
        raise DatasetError(f"{folder} has no metadata.csv (expected lines of id|text, and wavs/<id>.wav)")
    if metadata.stat().st_size > MAX_METADATA_BYTES:
        raise DatasetError(f"{metadata} is {metadata.stat().st_size / 2**20:.1f} MB; the limit is "
                           f"{MAX_METADATA_BYTES // 2**20} MB")
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
