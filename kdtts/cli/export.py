"""`export`: a student's three ONNX graphs, checked against PyTorch on the same input."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.add_argument("--student", help="a shipped tier (small, base) or a student checkpoint path (default: small)")
    p.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> None:
    from kdtts.student.onnx_student import export_checked

    print(json.dumps(export_checked(args.student, args.out)))
