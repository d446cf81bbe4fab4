"""Where quality is lost, per checkpoint: the student's modules swapped in one at a time.

For every checkpoint given, on the held-out sentences (teacher deterministic, same run):
  decoder        teacher durations + teacher z + student decoder
  front          teacher durations + student front + student decoder
  front_teacher  teacher durations + student front + the teacher's decoder: the front's error alone
  student        the student end to end (its own durations)
with DNSMOS P.808 / OVRL for each, PESQ-WB and STOI against the teacher where sample-aligned, MCD 0-8 kHz and
F0 errors for the two front rungs (the front's goals), the length ratio end to end, and for every rung the
prosody and loudness against the teacher (F0 SD and 5-95 % range ratios, loudness difference in LU, mean and
worst; DNSMOS P.808 difference), each with a paired 95 % bootstrap interval over sentences. Faster than the full
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
from kdtts.evaluate import dnsmos, fidelity, intrusive, loudness, prosody  # noqa: E402
from kdtts.evaluate.versus import versus_teacher  # noqa: E402
from kdtts.student.onnx_student import load_fast  # noqa: E402
from kdtts.teachers.piper import PiperTeacher  # noqa: E402

RUNGS = {"decoder": Mix("teacher", "teacher", "student"), "front": Mix("teacher", "student", "student"),
         "front_teacher": Mix("teacher", "student", "teacher"), "student": Mix.of("student")}


def measure(audio: np.ndarray) -> dict[str, float]:
    """What every rung and the teacher get: DNSMOS, prosody and loudness (what a listener hears)."""
    return {**dnsmos.dnsmos(audio), **prosody.prosody(audio),
            "loudness_lufs": loudness.integrated_loudness(audio), "samples": len(audio)}


def ladder(engine: Engine, texts: list[str]) -> dict[str, dict[str, float]]:
    scales = engine.teacher.default_scales.deterministic()
    sentences: list[dict] = []
    for text in tqdm(texts, desc="ladder", unit="sentence", file=sys.stderr):
        teacher = engine.synthesize(text, Mix.of("teacher"), scales).audio
        row = {"text": text, "teacher": measure(teacher)}
        for name, mix in RUNGS.items():
            audio = engine.synthesize(text, mix, scales).audio
            row[name] = {**measure(audio), "teacher_samples": len(teacher)}
            if name.startswith("front"):  # the front's own goals
                row[name].update(fidelity.front_goal_metrics(teacher, audio))
            elif name != "student":  # sample-aligned with the teacher
                row[name].update(pesq_wb=intrusive.pesq_wb(teacher, audio), stoi=intrusive.stoi(teacher, audio))
        sentences.append(row)
    summary = {}
    for name in ["teacher", *RUNGS]:
        rows = [s[name] for s in sentences]
        keys = [k for k in rows[0] if k not in ("samples", "teacher_samples")]
        summary[name] = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
        if name == "teacher":
            continue
        versus = versus_teacher(sentences, name)  # prosody ratios and loudness with paired 95 % intervals
        for key in ("f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "loudness_worst_lu", "dnsmos_p808"):
            if key in versus:
                label = "dnsmos_p808_diff" if key == "dnsmos_p808" else key
                summary[name][label] = versus[key]["value"]
                summary[name][f"{label}_ci95"] = versus[key]["ci95"]
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
