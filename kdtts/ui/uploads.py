"""A visitor's recordings, made into a dataset folder (kdtts.distill.recordings) under the private data
directory: from an uploaded zip, or from takes recorded in the browser, one per prompt.

An upload is priced before it is decoded: the archive's declared sizes against the budget first,
then every entry counted while it streams (a declared size is the client's word; an entry that runs
past its budget is stopped there), then each clip's header (rate, channels, frames) and the clips'
total length. Whatever fails, nothing it wrote stays behind.
"""
from __future__ import annotations

import re
import secrets
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from kdtts.distill.recordings import (
    MAX_CHANNELS,
    MAX_CLIP_SECONDS,
    MAX_CLIPS,
    MAX_METADATA_BYTES,
    RATES,
    DatasetError,
    clip_seconds,
)
from kdtts.ui.storage import DataBudget

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_UPLOAD_SECONDS = 1200.0
"""Audio one upload may hold in all (20 minutes): the clips are decoded into memory together."""
MAX_CLIP_BYTES = int(MAX_CLIP_SECONDS * RATES[1] * MAX_CHANNELS * 8) + 2**16
"""The largest file a clip within the limits can be (64-bit samples at the highest rate): a larger entry is
refused from the archive's directory, before a byte of it is written."""
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
PROMPTS = ("The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
           "A bird in the hand is worth two in the bush.")
"""What a visitor reads into the microphone (short, with most English sounds between them)."""
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, RuntimeError,
               NotImplementedError)


def new_folder(root: Path) -> Path:
    folder = Path(root) / "finetune_uploads" / secrets.token_hex(8)
    (folder / "wavs").mkdir(parents=True)
    return folder


def _copy(src: BinaryIO, dst: BinaryIO, budget: int, name: str) -> int:
    """Copy at most `budget` bytes; DatasetError as soon as the entry runs past it."""
    copied = 0
    while block := src.read(1 << 20):
        copied += len(block)
        if copied > budget:
            raise DatasetError(f"the zip entry {name!r} unpacks to more than it declares or than the upload may "
                               f"hold ({MAX_UNZIPPED_BYTES // 2**20} MB in all)")
        dst.write(block)
    return copied


def _check_clips(folder: Path) -> None:
    """Every clip's header, and their total length, before any is decoded."""
    total = sum(clip_seconds(path) for path in sorted((folder / "wavs").iterdir()))
    if total > MAX_UPLOAD_SECONDS:
        raise DatasetError(f"the recordings last {total / 60:.0f} min in all; an upload may hold at most "
                           f"{MAX_UPLOAD_SECONDS / 60:.0f} min")


def _wanted(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    wanted: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        parts = [p for p in info.filename.split("/") if p]
        if info.is_dir() or not parts or parts[-1].startswith("."):
            continue
        if parts[-1] == "metadata.csv" and len(parts) <= 2:
            wanted["metadata.csv"] = info
        elif len(parts) >= 2 and parts[-2] == "wavs" and parts[-1].lower().endswith(".wav") and len(parts) <= 3:
            if not _SAFE.fullmatch(parts[-1]):
                raise DatasetError(f"the zip entry {info.filename!r} has characters a clip id may not have")
            wanted[f"wavs/{parts[-1]}"] = info
    if "metadata.csv" not in wanted:
        raise DatasetError("the zip has no metadata.csv (expected metadata.csv and wavs/<id>.wav)")
    if len(wanted) > MAX_CLIPS + 1:
        raise DatasetError(f"the zip has {len(wanted) - 1:,} wavs; the limit is {MAX_CLIPS:,}")
    for name, info in wanted.items():
        if name != "metadata.csv" and info.file_size > MAX_CLIP_BYTES:
            raise DatasetError(f"the zip entry {info.filename!r} unpacks to {info.file_size / 2**20:.0f} MB; a clip of "
                               f"at most {MAX_CLIP_SECONDS:.0f} s is under {MAX_CLIP_BYTES / 2**20:.0f} MB")
    if wanted["metadata.csv"].file_size > MAX_METADATA_BYTES:
        raise DatasetError(f"the zip's metadata.csv is larger than {MAX_METADATA_BYTES // 2**20} MB")
    if sum(i.file_size for i in wanted.values()) > MAX_UNZIPPED_BYTES:
        raise DatasetError(f"the zip unpacks to more than {MAX_UNZIPPED_BYTES // 2**20} MB")
    return wanted


def from_zip(archive: str | Path, root: Path, budget: DataBudget | None = None) -> Path:
    """Extract metadata.csv and wavs/*.wav (at the top or in one folder) from `archive`; nothing else.

    Refused before anything is written: entries with unsafe names, too many, declared too large, or no
    room in the data directory's budget. Refused while extracting (and removed): an entry larger than
    declared, a damaged entry (bad CRC), a clip whose header is out of bounds, too long a total."""
    try:
        zf = zipfile.ZipFile(archive)
    except _ZIP_ERRORS as error:
        raise DatasetError(f"the upload is not a readable zip file ({error})") from None
    with zf:
        wanted = _wanted(zf)
        declared = sum(i.file_size for i in wanted.values())
        if budget is not None:
            budget.require(declared, "these recordings")
        folder = new_folder(root)
        try:
            left = MAX_UNZIPPED_BYTES
            for name, info in wanted.items():
                limit = MAX_METADATA_BYTES if name == "metadata.csv" else min(left, MAX_CLIP_BYTES)
                with zf.open(info) as src, (folder / name).open("wb") as dst:
                    left -= _copy(src, dst, min(info.file_size, limit), info.filename)
            _check_clips(folder)
        except _ZIP_ERRORS as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise DatasetError(f"the zip is damaged ({error})") from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return folder


def from_takes(takes: list[str | None], root: Path, prompts: tuple[str, ...] = PROMPTS,
               budget: DataBudget | None = None) -> Path:
    """One clip per recorded prompt (takes[i] reads prompts[i]; None: not recorded). Each take's header
    is checked before it is decoded."""
    recorded = [(i, Path(take)) for i, take in enumerate(takes) if take]
    if len(recorded) < 2:
        raise DatasetError("record at least two of the sentences")
    for _, take in recorded:
        clip_seconds(take)
    if budget is not None:
        budget.require(sum(take.stat().st_size for _, take in recorded), "these recordings")
    folder = new_folder(root)
    try:
        lines = []
        for i, take in recorded:
            shutil.copyfile(take, folder / "wavs" / f"take{i}.wav")  # read by content, whatever the format
            lines.append(f"take{i}|{prompts[i]}")
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
