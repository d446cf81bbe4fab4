"""The shipped models' headline numbers as a shipped asset (`assets/evaluation.json`).

The app's "how it works" tab and its header quote these numbers; they come from the evaluation of the
shipped checkpoints, copied next to them, so the app never reads `benchmarks/results/` at run time.
Written after evaluating a checkpoint that is shipped:

    python -m kdtts.evaluate.headline [--report benchmarks/results/report.json]
                                      [--vocoder-report benchmarks/results/vocoder/vocoder_report.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from kdtts.student.header import ASSETS

HEADLINE = ASSETS / "evaluation.json"
ROOT = ASSETS.parent
MODEL_KEYS = ("parameters", "bytes", "dnsmos_p808", "dnsmos_ovrl", "wer", "cer", "pesq_wb", "stoi", "rtf_1thread",
              "rtf_default", "length_ratio", "f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "loudness_worst_lu")
VOCODER_KEYS = ("parameters", "teacher_parameters", "pesq_wb", "stoi", "teacher_p808", "teacher_ovrl", "student_p808",
                "student_ovrl", "teacher_rtf_1thread", "student_rtf_1thread", "speedup_1thread")


def headline(report: dict, vocoder_report: dict | None) -> dict:
    """The numbers the app quotes, from a `kdtts evaluate` report (and a vocoder report)."""
    meta = report["meta"]
    out = {"student": {"models": {name: {k: m.get(k) for k in MODEL_KEYS} for name, m in report["models"].items()},
                       "speedup_student_over_teacher": {k: v for k, v in report["speedup_student_over_teacher"].items()
                                                        if not isinstance(v, dict)},
                       "meta": {k: meta.get(k) for k in ("sentences", "date", "command", "student")}}}
    if vocoder_report:
        out["vocoder"] = {"summary": {k: vocoder_report["summary"].get(k) for k in VOCODER_KEYS},
                          "meta": {"sentences": vocoder_report.get("sentences"),
                                   "command": vocoder_report.get("command")}}
    return out


def quality_speed_points(numbers: dict) -> list[dict]:
    """The systems of the shipped evaluation as points for a quality-against-speed plot (kdtts.ui.plots)."""
    models = numbers.get("student", {}).get("models", {})
    names = {"teacher": ("Piper teacher (VITS)", "tts", "teacher"), "student": ("student", "tts", "student"),
             "griffinlim": ("Griffin-Lim on the teacher's mel", "none", "baseline")}
    points = [{"name": label, "family": family, "role": role, **{k: models[key].get(k) for k in
               ("parameters", "rtf_1thread", "dnsmos_p808")}}
              for key, (label, family, role) in names.items() if key in models]
    v = numbers.get("vocoder", {}).get("summary")
    if v:
        points += [{"name": "HiFi-GAN V1", "family": "vocoder", "role": "teacher", "parameters": v["teacher_parameters"],
                    "rtf_1thread": v["teacher_rtf_1thread"], "dnsmos_p808": v["teacher_p808"]},
                   {"name": "student vocoder", "family": "vocoder", "role": "student", "parameters": v["parameters"],
                    "rtf_1thread": v["student_rtf_1thread"], "dnsmos_p808": v["student_p808"]}]
    return points


def read_headline(path: Path = HEADLINE) -> dict:
    """The shipped numbers ({} when there are none yet)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default=str(ROOT / "benchmarks" / "results" / "report.json"))
    parser.add_argument("--vocoder-report", default=str(ROOT / "benchmarks" / "results" / "vocoder" /
                                                       "vocoder_report.json"))
    parser.add_argument("--out", default=str(HEADLINE))
    args = parser.parse_args()
    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    vocoder = Path(args.vocoder_report)
    vocoder_report = json.loads(vocoder.read_text(encoding="utf-8")) if vocoder.exists() else None
    Path(args.out).write_text(json.dumps(headline(report, vocoder_report), indent=1) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
