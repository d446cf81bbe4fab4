"""The student on onnxruntime (about 1.5x faster than eager PyTorch on one thread): a `Voice`.

A checkpoint is exported once (kdtts.student.export), into a cache folder keyed by its content hash,
and the export is checked against PyTorch before it is used; if either fails, `load_fast` returns
the PyTorch student and a warning says why.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from kdtts.audio import AudioSpec
from kdtts.runtime import cpu_session
from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student
from kdtts.student.export import export_onnx
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig, istft
from kdtts.voice import Scales, Voice

DEFAULT_THREADS = 1
"""The student's graphs are small: more intra-op threads cost more in synchronisation than they save
(`python -m kdtts evaluate` times both), so the student uses one unless told otherwise."""


class OnnxStudent:
    """The exported student's three graphs, with the numpy interface of every `Voice`."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        folder = Path(folder)
        meta = json.loads((folder / "config.json").read_text())
        self.config = StudentConfig(**meta["config"])
        self.info = meta.get("info", {})
        self.parameters: dict[str, int] = meta.get("parameters", {})
        self.path: Path | None = None
        self.spec = AudioSpec(sample_rate=self.config.sample_rate, hop_length=self.config.hop_length)
        self._duration = cpu_session(folder / "duration.onnx", threads or DEFAULT_THREADS)
        self._front = cpu_session(folder / "front.onnx", threads or DEFAULT_THREADS)
        self._decoder = cpu_session(folder / "decoder.onnx", threads or DEFAULT_THREADS)
        self.window = torch.hann_window(self.config.n_fft)

    def count_parameters(self) -> dict[str, int]:
        return dict(self.parameters)

    def durations(self, ids: np.ndarray, scales: Scales) -> np.ndarray:
        log_d = self._duration.run(None, {"ids": np.asarray(ids, dtype=np.int64)[None]})[0][0]
        return np.maximum(np.round(np.exp(log_d) * scales.length), 1).astype(np.int64)

    def latent(self, ids: np.ndarray, durations: np.ndarray, scales: Scales) -> np.ndarray:
        durations = np.asarray(durations, dtype=np.int64)
        return self._front.run(None, {"ids": np.asarray(ids, dtype=np.int64)[None], "durations": durations[None],
                                      "frame_ref": np.zeros(int(durations.sum()), dtype=np.float32)})[0][0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        magnitude, phase = self._decoder.run(None, {"z": np.asarray(z, dtype=np.float32)[None]})
        with torch.inference_mode():
            audio = istft(torch.from_numpy(magnitude), torch.from_numpy(phase), self.window, self.spec.hop_length)
        return audio[0].clamp(-1.0, 1.0).numpy()


def parity(student: Voice, onnx_student: Voice, n_ids: int = 60, seed: int = 0) -> dict:
    """Max abs differences between the PyTorch and ONNX students on the same random input."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 150, n_ids)
    scales = Scales()
    d_torch, d_onnx = student.durations(ids, scales), onnx_student.durations(ids, scales)
    durations = d_torch
    z_torch, z_onnx = student.latent(ids, durations, scales), onnx_student.latent(ids, durations, scales)
    a_torch, a_onnx = student.decode(z_torch), onnx_student.decode(z_torch)
    return {"durations_equal_fraction": float(np.mean(d_torch == d_onnx)),
            "z_max_abs_diff": float(np.abs(z_torch - z_onnx).max()),
            "audio_max_abs_diff": float(np.abs(a_torch - a_onnx).max())}


def export_checked(student_path: str | Path | None, out_dir: str | Path) -> dict:
    """Export a checkpoint to ONNX and measure the export against PyTorch on the same input."""
    out = export_onnx(student_path, out_dir)
    return {"out": str(out), **parity(load_student(student_path), OnnxStudent(out))}


def check_parity(report: dict) -> None:
    """Refuse an export whose output differs from PyTorch's (RuntimeError naming the numbers)."""
    if report["audio_max_abs_diff"] > 1e-3 or report["durations_equal_fraction"] < 1.0:
        raise RuntimeError(f"ONNX output differs from PyTorch: {report}")


def cache_root() -> Path:
    return Path(os.environ.get("KDTTS_CACHE_DIR", Path.home() / ".cache" / "kdtts"))


def load_fast(path: str | Path | None = None, threads: int | None = None) -> OnnxStudent | StudentTTS:
    """The student at `path` (the shipped one by default) on onnxruntime, or on PyTorch if export fails.

    Raises CheckpointError for a file kdtts will not load (checked on PyTorch first)."""
    path = Path(path) if path else SHIPPED_STUDENT
    student = load_student(path)
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    folder = cache_root() / "onnx" / digest
    try:
        if not (folder / "config.json").exists():
            tmp = folder.with_name(f"{digest}.tmp{os.getpid()}")
            check_parity(export_checked(path, tmp))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        fast = OnnxStudent(folder, threads)
    except Exception as error:  # noqa: BLE001 - PyTorch still works; say why we are slower
        warnings.warn(f"student stays on PyTorch (ONNX export failed: {error})")
        return student
    # the checkpoint's own, even for an export cached by an older kdtts
    fast.info, fast.path, fast.parameters = student.info, path, student.count_parameters()
    return fast
