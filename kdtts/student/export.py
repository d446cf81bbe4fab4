"""ONNX export of the student: three graphs, checked against PyTorch.

The decoder graph stops at the spectrum (magnitude, phase); the inverse STFT runs outside the graph
(torch.istft), which is exact and faster than an iDFT written as a matrix product inside it.
The exported student runs in kdtts.student.onnx_student.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from kdtts.student.checkpoint import load_student
from kdtts.student.model import StudentTTS

OPSET = 17


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


def export_onnx(student_path: str | Path | None, out_dir: str | Path) -> Path:
    """Write duration.onnx, front.onnx, decoder.onnx (+ config.json) into `out_dir`; return it.
    kdtts.student.onnx_student.export_checked also checks them against PyTorch."""
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
    (out / "config.json").write_text(json.dumps({"config": asdict(student.config), "info": student.info,
                                                "parameters": student.count_parameters(),
                                                "receptive_field": student.receptive_field}, indent=1))
    return out
