"""Where quality is lost, per checkpoint: the student's modules swapped in one at a time.

For every checkpoint given, on the held-out sentences (teacher deterministic, same run):
  decoder        teacher durations + teacher z + student decoder
  front          teacher durations + student front + student decoder
  front_teacher  teacher durations + student front + the teacher's decoder: the front's error alone
  student        the student end to end (its own durations)
with DNSMOS P.808 / OVRL for each, PESQ-WB and STOI against the teacher where sample-aligned, MCD 0-8 kHz and
F0 errors for the two front rungs (the front's goals), and the length ratio end to end. Faster than the full
`python -m kdtts evaluate` (no WER, no speed), for picking among the snapshots of a training run.

    python benchmarks/decoder_ladder.py assets/student.safetensors runs/gan/step004000.safetensors --limit 20
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.corpus import read_heldout  # noqa: E402
from kdtts.engine import Engine, Mix  # noqa: E402
from kdtts.evaluate import dnsmos, fidelity, intrusive  # noqa: E402
from kdtts.student.onnx_student import load_fast  # noqa: E402
from kdtts.teachers.piper import PiperTeacher  # noqa: E402

RUNGS = {"decoder": Mix("teacher", "teacher", "student"), "front": Mix("teacher", "student", "student"),
         "front_teacher": Mix("teacher", "student", "teacher"), "student": Mix.of("student")}


def ladder(engine: Engine, texts: list[str]) -> dict[str, dict[str, float]]:
    scales = engine.teacher.default_scales.deterministic()
    scores: dict[str, list[dict]] = {name: [] for name in ["teacher", *RUNGS]}
    for text in tqdm(texts, desc="ladder", unit="sentence", file=sys.stderr):
        teacher = engine.synthesize(text, Mix.of("teacher"), scales).audio
        scores["teacher"].append({**dnsmos.dnsmos(teacher), "samples": len(teacher)})
        for name, mix in RUNGS.items():
            audio = engine.synthesize(text, mix, scales).audio
            row = {**dnsmos.dnsmos(audio), "samples": len(audio), "teacher_samples": len(teacher)}
            if name.startswith("front"):  # the front's own goals
                row.update(fidelity.front_goal_metrics(teacher, audio))
            elif name != "student":  # sample-aligned with the teacher
                row.update(pesq_wb=intrusive.pesq_wb(teacher, audio), stoi=intrusive.stoi(teacher, audio))
            scores[name].append(row)
    summary = {}
    for name, rows in scores.items():
        keys = [k for k in rows[0] if k not in ("samples", "teacher_samples")]
        summary[name] = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
        if name == "student":
            ratios = np.array([r["samples"] / r["teacher_samples"] for r in rows])
            summary[name]["length_ratio"] = sum(r["samples"] for r in rows) / sum(r["teacher_samples"] for r in rows)
            summary[name]["length_ratio_median_deviation"] = float(np.median(np.abs(ratios - 1)))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--limit", type=int, help="only the first N held-out sentences")
    parser.add_argument("--out", default="benchmarks/results/decoder_ladder.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = PiperTeacher.load(threads=1)
    texts = read_heldout()[:args.limit] if args.limit else read_heldout()
    results = {}
    for path in args.checkpoints:
        results[path] = ladder(Engine(teacher, load_fast(path, threads=1)), texts)
        print(json.dumps({path: results[path]}, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sentences": len(texts), "results": results}, indent=1))


if __name__ == "__main__":
    main()
