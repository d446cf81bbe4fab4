"""`compose`: one student from the duration, front and decoder modules of several checkpoints."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    for module in ("duration", "front", "decoder"):
        p.add_argument(f"--{module}", required=True, help=f"checkpoint whose {module} module to take")
    p.add_argument("--out", required=True, help="the new checkpoint (.safetensors)")


def run(args: argparse.Namespace) -> None:
    from kdtts.student.checkpoint import compose, save_student

    student = compose({"duration": args.duration, "front": args.front, "decoder": args.decoder})
    out = save_student(student, args.out, student.info)
    print(json.dumps({"student": str(out), "parameters": student.count_parameters()}))
