"""Fine-tuned checkpoints in a shared folder: published without ever replacing a file, and bounded in
number (the oldest go first)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

VOCODER_DIR = "vocoders"  # fine-tuned student vocoders, under the app's data directory


def published(folder: Path) -> dict[str, Path]:
    """The checkpoints published into `folder`, by name, newest first (what the app's dropdowns list)."""
    paths = sorted(Path(folder).glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    return {path.stem: path for path in paths}


def vocoder_checkpoints(data: Path) -> dict[str, Path]:
    """Selectable student vocoders: the shipped one first, then fine-tuned ones (newest first)."""
    from kdtts.student.header import SHIPPED_VOCODER

    found = {"shipped": SHIPPED_VOCODER} if SHIPPED_VOCODER.exists() else {}
    return found | published(Path(data) / VOCODER_DIR)


def evict_oldest(checkpoint_dir: Path, keep: int) -> list[str]:
    """Delete the oldest checkpoints in `checkpoint_dir` beyond `keep`; return their names."""
    found = sorted(Path(checkpoint_dir).glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found[keep:]:
        path.unlink(missing_ok=True)
        path.with_suffix(".losses.json").unlink(missing_ok=True)
        path.with_suffix(".card.md").unlink(missing_ok=True)
    return [p.stem for p in found[keep:]]


def publish(src: Path, dest: Path) -> None:
    """Put a finished file at `dest` in one step, never replacing an existing file."""
    try:
        os.link(src, dest)  # atomic; fails if dest exists
    except FileExistsError:
        raise RuntimeError(f"refusing to overwrite {dest}") from None
    except OSError:  # another file system, or no hard links: exclusive create, copy, and no half file left
        try:
            with src.open("rb") as f, dest.open("xb") as g:
                shutil.copyfileobj(f, g)
        except FileExistsError:
            raise RuntimeError(f"refusing to overwrite {dest}") from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
