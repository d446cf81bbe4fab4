"""A checkpoint's header (format, config, training info) read without PyTorch.

The command line and the onnxruntime student only need the header of a checkpoint whose ONNX export is
cached, so this module imports no torch; kdtts.student.checkpoint loads the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED_STUDENT = ASSETS / "student.safetensors"
TIERS = {"small": SHIPPED_STUDENT, "base": ASSETS / "student_base.safetensors"}
"""The shipped students by tier name: `small` is the default; `base` is larger, slower and closer to the teacher."""
SHIPPED_VOCODER = ASSETS / "vocoder.safetensors"
FORMAT = "kdtts-student/1"
VOCODER_FORMAT = "kdtts-vocoder/1"
KIND_NAMES = {FORMAT: "a text-to-speech student", VOCODER_FORMAT: "a student vocoder (mel -> audio)"}


class CheckpointError(ValueError):
    """A checkpoint kdtts will not load; the message names the reason."""


def student_path(student: str | Path | None) -> Path:
    """A tier name (`small`, `base`) or a checkpoint path -> the path; None is the default tier (`small`).
    A tier whose file this checkout lacks is a CheckpointError that says so."""
    if student is None or str(student) == "":
        return SHIPPED_STUDENT
    if str(student) in TIERS:
        path = TIERS[str(student)]
        if not path.exists():
            raise CheckpointError(f"The {student!s} tier is not in this checkout ({path} is missing); "
                                  f"shipped here: {', '.join(shipped_tiers()) or 'none'}.")
        return path
    return Path(student)


def shipped_tiers() -> dict[str, Path]:
    """The tiers whose checkpoint this checkout has, small first."""
    return {name: path for name, path in TIERS.items() if path.exists()}


MAX_HEADER_BYTES = 1 << 20
"""A safetensors header (JSON: tensor names, shapes, offsets, our config) longer than this is not a student's."""


def sniff(path: Path) -> None:
    """Refuse from the first bytes alone (nothing else is read): a pickle, a truncated file, a header
    longer than MAX_HEADER_BYTES, or a file whose size does not match what its header declares."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else 0
        header = f.read(header_len) if 0 < header_len <= min(MAX_HEADER_BYTES, size - 8) else b""
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:2] == b"PK":
        raise CheckpointError(f"{path.name} is a pickle/torch.save file. kdtts loads only safetensors "
                              "checkpoints, because unpickling can run arbitrary code.")
    if len(head) < 8:
        raise CheckpointError(f"{path.name} is empty or truncated ({size} bytes).")
    if not header:
        raise CheckpointError(f"{path.name} is not a safetensors file: its header length field says {header_len:,} "
                              f"bytes (a student's is under {MAX_HEADER_BYTES // 1024} KB; the file is {size:,}).")
    try:
        entries = json.loads(header)
        end = max((int(e["data_offsets"][1]) for k, e in entries.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise CheckpointError(f"{path.name} is not a readable safetensors file: its header is not valid.") from None
    if 8 + header_len + end != size:
        raise CheckpointError(f"{path.name} is corrupt or truncated, or has data appended: it is {size:,} bytes, "
                              f"its header declares {8 + header_len + end:,}.")


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's config and training info, without loading weights."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"No student checkpoint at {path}.")
    sniff(path)
    try:
        with safe_open(str(path), "numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file (corrupt or truncated): {error}") \
            from None
    if meta.get("format") not in KIND_NAMES:
        raise CheckpointError(f"{path.name} is a safetensors file but not a kdtts student checkpoint "
                              f"(format {meta.get('format')!r}, expected one of {sorted(KIND_NAMES)}).")
    try:
        config, info = json.loads(meta.get("config", "")), json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path.name}: its config or info header is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or not isinstance(info, dict):
        raise CheckpointError(f"{path.name}: its config and info headers must be JSON objects.")
    return {"config": config, "info": info, "format": meta["format"]}
