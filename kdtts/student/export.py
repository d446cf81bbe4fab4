"""ONNX export of the student, and an onnxruntime student with the same numpy interface.

The three networks are exported as three graphs; the decoder graph stops at the spectrum
(magnitude, phase) and the inverse STFT runs in numpy (pocketfft), which is both exact and faster
than expressing the iDFT as a matrix product inside the graph.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from kdtts.student.checkpoint import load_student
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig, istft
from kdtts.teachers.piper import session_options

OPSET = 17
DEFAULT_THREADS = 1
"""The student's graphs are small: more intra-op threads cost more in synchronisation than they
save (benchmarks/student_threads.py measures it), so the student uses one unless told otherwise."""


class _Duration(nn.Module):
    def __init__(self, student: StudentTTS) -> None:
        super().__init__()
        self.m = student.duration

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.m(ids, torch.ones_like(ids, dtype=torch.float32).unsqueeze(1))


def _front_forward(front: nn.Module, ids: torch.Tensor, durations: torch.Tensor, frame_ref: torch.Tensor) -> torch.Tensor:
    id_mask = torch.ones_like(ids, dtype=torch.float32).unsqueeze(1)
    frame_mask = torch.ones_like(frame_ref).unsqueeze(0).unsqueeze(0)
    return front(ids, durations, id_mask, frame_mask)


class _FrontByFrames(nn.Module):
    """ids, durations and a [T] frame reference (its length fixes the output length)."""

    def __init__(self, student: StudentTTS) -> None:
        super().__init__()
        self.m = student.front

    def forward(self, ids: torch.Tensor, durations: torch.Tensor, frame_ref: torch.Tensor) -> torch.Tensor:
        return _front_forward(self.m, ids, durations, frame_ref)


class _Decoder(nn.Module):
    def __init__(self, student: StudentTTS) -> None:
        super().__init__()
        self.m = student.decoder

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.m.spectrum(z)


def export_onnx(student_path: str | Path | None, out_dir: str | Path) -> dict:
    """Write duration.onnx, front.onnx, decoder.onnx (+ config.json); check them against PyTorch."""
    student = load_student(student_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.randint(3, 150, (1, 40))
    durations = torch.randint(1, 6, (1, 40))
    frames = int(durations.sum())
    z = torch.randn(1, student.config.z_channels, frames)
    common = {"opset_version": OPSET, "dynamo": False, "do_constant_folding": True}
    with torch.no_grad():
        torch.onnx.export(_Duration(student), (ids,), out / "duration.onnx", input_names=["ids"],
                          output_names=["log_durations"], dynamic_axes={"ids": {1: "n"}, "log_durations": {1: "n"}},
                          **common)
        torch.onnx.export(_FrontByFrames(student), (ids, durations, torch.zeros(frames)), out / "front.onnx",
                          input_names=["ids", "durations", "frame_ref"], output_names=["z"],
                          dynamic_axes={"ids": {1: "n"}, "durations": {1: "n"}, "frame_ref": {0: "t"}, "z": {2: "t"}},
                          **common)
        torch.onnx.export(_Decoder(student), (z,), out / "decoder.onnx", input_names=["z"],
                          output_names=["magnitude", "phase"],
                          dynamic_axes={"z": {2: "t"}, "magnitude": {2: "t"}, "phase": {2: "t"}}, **common)
    (out / "config.json").write_text(json.dumps({"config": student.config.__dict__, "info": student.info}, indent=1))
    return {"out": str(out), **parity(student, OnnxStudent(out))}


def parity(student: StudentTTS, onnx_student: "OnnxStudent", n_ids: int = 60, seed: int = 0) -> dict:
    """Max abs differences between the PyTorch and ONNX students on the same random input."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 150, n_ids)
    d_torch, d_onnx = student.durations(ids), onnx_student.durations(ids)
    durations = d_torch
    z_torch, z_onnx = student.latent(ids, durations), onnx_student.latent(ids, durations)
    a_torch, a_onnx = student.decode(z_torch), onnx_student.decode(z_torch)
    return {"durations_equal_fraction": float(np.mean(d_torch == d_onnx)),
            "z_max_abs_diff": float(np.abs(z_torch - z_onnx).max()),
            "audio_max_abs_diff": float(np.abs(a_torch - a_onnx).max())}


class OnnxStudent:
    """The exported student on onnxruntime: durations / latent / decode as numpy, like the teacher."""

    kind = "student"

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        folder = Path(folder)
        meta = json.loads((folder / "config.json").read_text())
        self.config = StudentConfig(**meta["config"])
        self.info = meta.get("info", {})
        self.sample_rate, self.hop_length = self.config.sample_rate, self.config.hop_length
        options = session_options(threads or DEFAULT_THREADS)
        self._duration = ort.InferenceSession(str(folder / "duration.onnx"), options, providers=["CPUExecutionProvider"])
        self._front = ort.InferenceSession(str(folder / "front.onnx"), options, providers=["CPUExecutionProvider"])
        self._decoder = ort.InferenceSession(str(folder / "decoder.onnx"), options, providers=["CPUExecutionProvider"])
        self.window = torch.hann_window(self.config.n_fft)

    def durations(self, ids: np.ndarray, length_scale: float = 1.0) -> np.ndarray:
        log_d = self._duration.run(None, {"ids": np.asarray(ids, dtype=np.int64)[None]})[0][0]
        return np.maximum(np.round(np.exp(log_d) * length_scale), 1).astype(np.int64)

    def latent(self, ids: np.ndarray, durations: np.ndarray) -> np.ndarray:
        durations = np.asarray(durations, dtype=np.int64)
        return self._front.run(None, {"ids": np.asarray(ids, dtype=np.int64)[None], "durations": durations[None],
                                      "frame_ref": np.zeros(int(durations.sum()), dtype=np.float32)})[0][0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        magnitude, phase = self._decoder.run(None, {"z": np.asarray(z, dtype=np.float32)[None]})
        with torch.inference_mode():
            audio = istft(torch.from_numpy(magnitude), torch.from_numpy(phase), self.window, self.hop_length)
        return audio[0].clamp(-1.0, 1.0).numpy()


def cache_root() -> Path:
    return Path(os.environ.get("KDTTS_CACHE_DIR", Path.home() / ".cache" / "kdtts"))


def accelerate(student: StudentTTS, path: Path, threads: int | None = None) -> StudentTTS:
    """Run `student`'s inference on onnxruntime (about 1.5x faster than eager PyTorch on one thread).

    The checkpoint is exported once, into a cache folder keyed by its content hash; if the export or
    the parity check fails, the student stays on PyTorch and a warning says why.
    """
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
    folder = cache_root() / "onnx" / digest
    try:
        if not (folder / "config.json").exists():
            tmp = folder.with_name(f"{digest}.tmp{os.getpid()}")
            report = export_onnx(path, tmp)
            if report["audio_max_abs_diff"] > 1e-3 or report["durations_equal_fraction"] < 1.0:
                raise RuntimeError(f"ONNX output differs from PyTorch: {report}")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        student.runtime = OnnxStudent(folder, threads)
    except Exception as error:  # noqa: BLE001 - PyTorch still works; say why we are slower
        warnings.warn(f"student stays on PyTorch (ONNX export failed: {error})")
    return student
