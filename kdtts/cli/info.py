"""`info`: parameters, bytes and paths of the teacher, the student, every registered teacher and the
student vocoder, as one JSON object."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--student", help="a shipped tier (small, base) or a student checkpoint path (default: small)")


def teachers_report() -> list[dict]:
    """Every teacher: kind, what is distilled from it, and whether it can run here (else why not)."""
    from kdtts.teachers.registry import TEACHERS

    rows = []
    for entry in TEACHERS.values():
        reason = entry.availability()
        row = {"name": entry.name, "title": entry.title, "kind": entry.kind, "parameters": entry.parameters(),
               "distils": entry.student, "available": reason is None}
        if reason:
            row["unavailable_because"] = reason
        rows.append(row)
    return rows


def vocoder_student_report() -> dict:
    from kdtts.student.checkpoint import SHIPPED_VOCODER, CheckpointError, load_vocoder

    try:
        vocoder = load_vocoder()
    except CheckpointError as error:
        return {"error": str(error)}
    return {"parameters": vocoder.count_parameters()["total"], "bytes": os.path.getsize(SHIPPED_VOCODER),
            "path": str(SHIPPED_VOCODER), "steps": vocoder.info.get("steps"),
            "adversarial_steps": vocoder.info.get("adversarial_steps")}


def student_report(path: Path) -> dict:
    from kdtts.student.checkpoint import load_student

    student = load_student(path)
    return {"parameters": student.count_parameters()["total"], "modules": student.count_parameters(),
            "bytes": os.path.getsize(path), "sample_rate": student.spec.sample_rate, "path": str(path),
            "steps": student.info.get("steps")}


def run(args: argparse.Namespace) -> None:
    from kdtts.student.checkpoint import TIERS, CheckpointError, student_path
    from kdtts.teachers.piper import PiperTeacher

    try:  # the student first: a bad --student fails before the teacher is loaded
        student = student_report(student_path(args.student))
    except CheckpointError as error:
        if args.student:
            raise
        student = {"error": str(error)}
    tiers = {}
    for name, path in TIERS.items():
        try:
            tiers[name] = student_report(path)
        except CheckpointError as error:
            tiers[name] = {"error": str(error)}
    teacher = PiperTeacher.load(args.voice)
    report = {"teacher": {"parameters": teacher.parameters, "decoder_parameters": teacher.decoder_parameters,
                          "bytes": teacher.bytes_on_disk, "sample_rate": teacher.sample_rate,
                          "path": str(teacher.model_path)},
              "student": student, "tiers": tiers, "teachers": teachers_report(), "vocoder_student": vocoder_student_report()}
    print(json.dumps(report, indent=1))
