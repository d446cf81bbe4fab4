"""A visitor's recordings, made into a dataset folder (kdtts.distill.recordings) under the private data
directory: from an uploaded zip (checked entry by entry before anything is written), or from takes
recorded in the browser, one per prompt."""
from __future__ import annotations

import re
import secrets
import shutil
import zipfile
from pathlib import Path

import soundfile as sf

from kdtts.distill.recordings import MAX_CLIPS, DatasetError

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
PROMPTS = ("The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
           "A bird in the hand is worth two in the bush.")
"""What a visitor reads into the microphone (short, with most English sounds between them)."""


def new_folder(root: Path) -> Path:
    folder = Path(root) / "finetune_uploads" / secrets.token_hex(8)
    (folder / "wavs").mkdir(parents=True)
    return folder


def from_zip(archive: str | Path, root: Path) -> Path:
    """Extract metadata.csv and wavs/*.wav (at the top or in one folder) from `archive`; nothing else.

    Refused before anything is written: entries with unsafe names, too many, or too large unpacked."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"the upload is not a readable zip file ({error})") from None
    with zf:
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
        if sum(i.file_size for i in wanted.values()) > MAX_UNZIPPED_BYTES:
            raise DatasetError(f"the zip unpacks to more than {MAX_UNZIPPED_BYTES // 2**20} MB")
        folder = new_folder(root)
        for name, info in wanted.items():
            with zf.open(info) as src, (folder / name).open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return folder


def from_takes(takes: list[str | None], root: Path, prompts: tuple[str, ...] = PROMPTS) -> Path:
    """One clip per recorded prompt (takes[i] reads prompts[i]; None: not recorded)."""
    recorded = [(i, take) for i, take in enumerate(takes) if take]
    if len(recorded) < 2:
        raise DatasetError("record at least two of the sentences")
    folder = new_folder(root)
    lines = []
    for i, take in recorded:
        audio, rate = sf.read(str(take), dtype="float32")
        sf.write(str(folder / "wavs" / f"take{i}.wav"), audio, rate)
        lines.append(f"take{i}|{prompts[i]}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
