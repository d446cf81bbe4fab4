"""The student on onnxruntime (about 1.5x faster than eager PyTorch on one thread): a `Voice`.

A checkpoint is exported once (kdtts.student.export), into a cache folder keyed by its content hash
(kdtts.cache), and the export is checked against PyTorch before it is used; if either fails, `load_fast`
returns the PyTorch student and a warning says why. Once the export is cached, loading and running the
student imports neither torch nor onnx (the inverse STFT is numpy's), so the command line starts fast.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kdtts.audio import AudioSpec
from kdtts.cache import cached_folder
from kdtts.runtime import cpu_session
from kdtts.student.header import FORMAT, KIND_NAMES, CheckpointError, read_metadata, student_path
from kdtts.voice import Scales, Voice

if TYPE_CHECKING:
    from kdtts.student.model import StudentTTS
    from kdtts.student.modules import StudentConfig

DEFAULT_THREADS = 1
"""The student's graphs are small: more intra-op threads cost more in synchronisation than they save
(`python -m kdtts evaluate` times both), so the student uses one unless told otherwise."""


class OnnxStudent:
    """The exported student's three graphs, with the numpy interface of every `Voice`."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        folder = Path(folder)
        meta = json.loads((folder / "config.json").read_text())
        self._config: dict = meta["config"]
        self.info = meta.get("info", {})
        self.parameters: dict[str, int] = meta.get("parameters", {})
        self._receptive_field: int | None = meta.get("receptive_field")  # exports before streaming lack it
        self.path: Path | None = None
        self.spec = AudioSpec(sample_rate=self._config["sample_rate"], hop_length=self._config["hop_length"])
        self._duration = cpu_session(folder / "duration.onnx", threads or DEFAULT_THREADS)
        self._front = cpu_session(folder / "front.onnx", threads or DEFAULT_THREADS)
        self._decoder = cpu_session(folder / "decoder.onnx", threads or DEFAULT_THREADS)
        self.window = hann_window(self._config["n_fft"])

    @property
    def config(self) -> StudentConfig:
        from kdtts.student.modules import StudentConfig

        return StudentConfig(**self._config)

    @property
    def receptive_field(self) -> int:
        """Frames of z either side that a frame's audio depends on (kdtts.streaming's window overlap)."""
        if self._receptive_field is None:
            from kdtts.streaming import receptive_field

            self._receptive_field = receptive_field(self.config)
        return self._receptive_field

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
        return np.clip(istft(magnitude[0], phase[0], self.window, self.spec.hop_length), -1.0, 1.0)


def hann_window(n_fft: int) -> np.ndarray:
    """torch.hann_window's periodic Hann window."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def istft(magnitude: np.ndarray, phase: np.ndarray, window: np.ndarray, hop: int) -> np.ndarray:
    """[n_fft/2+1, T] magnitude and phase -> [T * hop] audio: kdtts.student.modules.istft (torch.istft,
    centred frames) in numpy, so the exported student runs without torch."""
    n_fft, frames = window.shape[0], magnitude.shape[-1]
    segments = np.fft.irfft(magnitude * np.exp(1j * phase), n=n_fft, axis=0).T * window  # [T, n_fft]
    length = n_fft + hop * (frames - 1)
    audio, envelope = np.zeros(length, dtype=np.float64), np.zeros(length, dtype=np.float64)
    square = window.astype(np.float64) ** 2
    for t in range(frames):
        audio[t * hop:t * hop + n_fft] += segments[t]
        envelope[t * hop:t * hop + n_fft] += square
    start = n_fft // 2
    audio, envelope = audio[start:start + frames * hop], envelope[start:start + frames * hop]
    return (audio / np.where(envelope > 1e-11, envelope, 1.0)).astype(np.float32)


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
    from kdtts.student.checkpoint import load_student
    from kdtts.student.export import export_onnx

    out = export_onnx(student_path, out_dir)
    return {"out": str(out), **parity(load_student(student_path), OnnxStudent(out))}


def check_parity(report: dict) -> None:
    """Refuse an export whose output differs from PyTorch's (RuntimeError naming the numbers)."""
    if report["audio_max_abs_diff"] > 1e-3 or report["durations_equal_fraction"] < 1.0:
        raise RuntimeError(f"ONNX output differs from PyTorch: {report}")


def _export_into(path: Path) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        check_parity(export_checked(path, folder))
    return build


def load_fast(path: str | Path | None = None, threads: int | None = None) -> OnnxStudent | StudentTTS:
    """The student at `path` (a tier name or a path; the shipped small tier by default) on onnxruntime, or on PyTorch if export fails.

    Raises CheckpointError for a file kdtts will not load: checked on PyTorch before its first export;
    a cached export is of the same bytes (the cache is keyed by content), so only its header is read."""
    path = student_path(path)
    meta = read_metadata(path)  # a missing, pickled or foreign file fails here, before any export
    if meta["format"] != FORMAT:
        raise CheckpointError(f"{path.name} is {KIND_NAMES[meta['format']]}, not {KIND_NAMES[FORMAT]}.")
    try:
        fast = OnnxStudent(cached_folder("onnx", path, _export_into(path), marker="config.json"), threads)
    except Exception as error:
        from kdtts.student.checkpoint import load_student

        if isinstance(error, CheckpointError):
            raise
        warnings.warn(f"student stays on PyTorch (ONNX export failed: {error})", stacklevel=2)
        return load_student(path)
    fast.info, fast.path = meta["info"], path  # the checkpoint's own, even for an export cached by an older kdtts
    return fast
