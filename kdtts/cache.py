"""The on-disk cache of derived model files (the student's ONNX export, the teacher's cut sub-graphs).

Each entry is a folder named by the content hash of the file it was derived from, built once into a
temporary folder and moved into place, so a crash never leaves half an entry and a changed source file
never reuses a stale one. Root: `KDTTS_CACHE_DIR`, default `~/.cache/kdtts`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("KDTTS_CACHE_DIR", Path.home() / ".cache" / "kdtts"))


def content_hash(path: str | Path, algorithm: str = "sha1") -> str:
    """16 hex digits of the file's hash (read in chunks: a voice is tens of MB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def cached_folder(kind: str, source: str | Path, build: Callable[[Path], None], marker: str,
                  algorithm: str = "sha1") -> Path:
    """`<root>/<kind>/<hash of source>`, built by `build(tmp_folder)` when `marker` is not in it yet."""
    digest = content_hash(source, algorithm)
    folder = cache_root() / kind / digest
    if (folder / marker).exists():
        return folder
    tmp = folder.with_name(f"{digest}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
