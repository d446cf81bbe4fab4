"""Vocoder distillation, measured: the student vocoder against its teacher (HiFi-GAN V1) on the same mels.

Mels come from the Piper teacher's deterministic reading of held-out sentences, so both vocoders are
sample-aligned by construction: PESQ-WB and STOI compare the student with the teacher directly, DNSMOS
scores each without a reference, and the Piper teacher's own audio (the mel's source) is scored too as the
ceiling. Speed is single-thread RTF of the vocoders alone on the same mels.

    python -m kdtts evaluate --teacher hifigan [--student runs/vocoder/best.safetensors] [--limit 20]
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kdtts.evaluate import dnsmos, intrusive
from kdtts.evaluate.goals import VOCODER
from kdtts.evaluate.machine import load_average, machine
from kdtts.evaluate.speed import time_function
from kdtts.vocoding import VocoderPair


def evaluate_vocoder(pair: VocoderPair, texts: list[str], out: Path, speed_sentences: int = 5,
                     repeats: int = 3, command: str = "") -> dict:
    """Scores per sentence and their means; writes OUT/vocoder_report.json and .md."""
    if pair.student is None:
        raise FileNotFoundError("no student vocoder to evaluate; pass --student or train one")
    rows, mels = [], []
    for text in tqdm(texts, desc=f"{pair.name} vs student vocoder", unit="sent"):
        mel = pair.mel(text)
        mels.append(mel)
        teacher, student = pair.vocode(mel, "teacher").audio, pair.vocode(mel, "student").audio
        t, s = dnsmos.dnsmos(teacher, pair.sample_rate), dnsmos.dnsmos(student, pair.sample_rate)
        rows.append({"text": text, "pesq_wb": intrusive.pesq_wb(teacher, student, pair.sample_rate),
                     "stoi": intrusive.stoi(teacher, student, pair.sample_rate),
                     "teacher_p808": t["dnsmos_p808"], "teacher_ovrl": t["dnsmos_ovrl"],
                     "student_p808": s["dnsmos_p808"], "student_ovrl": s["dnsmos_ovrl"]})
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "text"}
    speed = vocoder_speed(pair, mels[:speed_sentences], repeats)
    params = pair.student.count_parameters()["total"]
    summary = {**means, **speed, "parameters": params, "teacher_parameters": pair.teacher_parameters,
               "p808_gap": means["teacher_p808"] - means["student_p808"]}
    report = {"teacher": pair.name, "student": str(pair.student.path), "student_info": pair.student.info,
              "sentences": len(rows), "summary": summary, "goals": goal_table(summary), "rows": rows,
              "machine": {**machine(), "load_average": load_average()}, "command": command}
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocoder_report.json").write_text(json.dumps(report, indent=1))
    (out / "vocoder_report.md").write_text(markdown(report))
    return report


def vocoder_speed(pair: VocoderPair, mels: list[np.ndarray], repeats: int) -> dict[str, float]:
    """Single-thread RTF of each vocoder on the same mels (median of `repeats` passes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = sum(m.shape[1] for m in mels) * pair.student.hop_length / pair.sample_rate
        teacher = time_function(lambda m: pair.vocode(m, "teacher"), mels, pair.sample_rate, repeats, seconds=seconds)
        student = time_function(lambda m: pair.vocode(m, "student"), mels, pair.sample_rate, repeats, seconds=seconds)
    finally:
        torch.set_num_threads(before)
    return {"teacher_rtf_1thread": teacher, "student_rtf_1thread": student, "speedup_1thread": teacher / student}


def goal_table(summary: dict) -> dict[str, dict]:
    """Each of the student vocoder's goals (kdtts.evaluate.goals.VOCODER) with its value and whether it is met."""
    return {g.name: {"value": summary[g.name], "goal": g.target, "met": bool(g.passes(summary[g.name], summary))}
            for g in VOCODER}


def markdown(report: dict) -> str:
    s = report["summary"]
    lines = [f"# Student vocoder vs {report['teacher']} ({report['sentences']} held-out sentences)", "",
             "| | teacher | student | goal |", "|---|---:|---:|---|",
             f"| parameters | {s['teacher_parameters'] / 1e6:.2f} M | {s['parameters'] / 1e6:.3f} M | <= 1 M |",
             f"| RTF, 1 thread | {s['teacher_rtf_1thread']:.4f} | {s['student_rtf_1thread']:.4f} | |",
             f"| speed-up, 1 thread | | {s['speedup_1thread']:.1f}x | >= 50x |",
             f"| DNSMOS P.808 | {s['teacher_p808']:.2f} | {s['student_p808']:.2f} | within 0.15 |",
             f"| DNSMOS OVRL | {s['teacher_ovrl']:.2f} | {s['student_ovrl']:.2f} | |",
             f"| PESQ-WB vs teacher | | {s['pesq_wb']:.2f} | >= 3.0 |",
             f"| STOI vs teacher | | {s['stoi']:.3f} | >= 0.95 |", "",
             "Goals: " + ", ".join(f"{k} {'met' if g['met'] else 'NOT met'}" for k, g in report["goals"].items()),
             "", f"Median per-sentence PESQ-WB {statistics.median(r['pesq_wb'] for r in report['rows']):.2f}.",
             f"Machine: {report['machine']}", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)
