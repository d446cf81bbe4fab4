"""The shipped models' headline numbers as a shipped asset (`assets/evaluation.json`).

The app's "how it works" tab and its header quote these numbers; they come from the evaluation of the
shipped checkpoints, copied next to them, so the app never reads `benchmarks/results/` at run time.
Written after evaluating a checkpoint that is shipped:

    python -m kdtts.evaluate.headline [--report benchmarks/results/report.json]
                                      [--base-report benchmarks/results/base/report.json]
                                      [--vocoder-report benchmarks/results/vocoder/vocoder_report.json]

`student` is the small tier's evaluation (teacher and Griffin-Lim in the same run), `base` the base tier's.
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


def _evaluation(report: dict) -> dict:
    meta = report["meta"]
    return {"models": {name: {k: m.get(k) for k in MODEL_KEYS} for name, m in report["models"].items()},
            "speedup_student_over_teacher": {k: v for k, v in report["speedup_student_over_teacher"].items()
                                             if not isinstance(v, dict)},
            "meta": {k: meta.get(k) for k in ("sentences", "date", "command", "student")}}


def headline(report: dict, vocoder_report: dict | None, base_report: dict | None = None) -> dict:
    """The numbers the app quotes, from a `kdtts evaluate` report of the small tier (and of the base tier,
    and a vocoder report)."""
    out = {"student": _evaluation(report)}
    if base_report:
        out["base"] = _evaluation(base_report)
    if vocoder_report:
        out["vocoder"] = {"summary": {k: vocoder_report["summary"].get(k) for k in VOCODER_KEYS},
                          "meta": {"sentences": vocoder_report.get("sentences"),
                                   "command": vocoder_report.get("command")}}
    return out


def quality_speed_points(numbers: dict) -> list[dict]:
    """The systems of the shipped evaluation as points for a quality-against-speed plot (kdtts.ui.plots)."""
    models = numbers.get("student", {}).get("models", {})
    base = base_on_small_run(numbers)
    names = {"teacher": ("Piper teacher (VITS)", "tts", "teacher"),
             "student": ("student, small tier" if base else "student", "tts", "student"),
             "griffinlim": ("Griffin-Lim on the teacher's mel", "none", "baseline")}
    keys = ("parameters", "rtf_1thread", "dnsmos_p808")
    points = [{"name": label, "family": family, "role": role, **{k: models[key].get(k) for k in keys}}
              for key, (label, family, role) in names.items() if key in models]
    if base:
        points.append({"name": "student, base tier", "family": "tts", "role": "student", **{k: base.get(k) for k in keys}})
    v = numbers.get("vocoder", {}).get("summary")
    if v:
        points += [{"name": "HiFi-GAN V1", "family": "vocoder", "role": "teacher", "parameters": v["teacher_parameters"],
                    "rtf_1thread": v["teacher_rtf_1thread"], "dnsmos_p808": v["teacher_p808"]},
                   {"name": "student vocoder", "family": "vocoder", "role": "student", "parameters": v["parameters"],
                    "rtf_1thread": v["student_rtf_1thread"], "dnsmos_p808": v["student_p808"]}]
    return points


def base_on_small_run(numbers: dict) -> dict | None:
    """The base tier's numbers with its real-time factor put on the small tier's run: the teacher's RTF there
    divided by base's speed-up over the teacher in its own run. The two runs may be on different machines or
    loads, and the speed-up is what compares across them; None without a base tier."""
    base = numbers.get("base", {})
    student = base.get("models", {}).get("student")
    if not student:
        return None
    teacher_rtf = numbers.get("student", {}).get("models", {}).get("teacher", {}).get("rtf_1thread")
    speedup = base.get("speedup_student_over_teacher", {}).get("1thread")
    return {**student, "rtf_1thread": teacher_rtf / speedup if teacher_rtf and speedup else student.get("rtf_1thread")}


def read_headline(path: Path = HEADLINE) -> dict:
    """The shipped numbers ({} when there are none yet)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default=str(ROOT / "benchmarks" / "results" / "report.json"))
    parser.add_argument("--base-report", default=str(ROOT / "benchmarks" / "results" / "base" / "report.json"))
    parser.add_argument("--vocoder-report", default=str(ROOT / "benchmarks" / "results" / "vocoder" /
                                                       "vocoder_report.json"))
    parser.add_argument("--out", default=str(HEADLINE))
    args = parser.parse_args()
    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    vocoder = Path(args.vocoder_report)
    vocoder_report = json.loads(vocoder.read_text(encoding="utf-8")) if vocoder.exists() else None
    base = Path(args.base_report)
    base_report = json.loads(base.read_text(encoding="utf-8")) if base.exists() else None
    Path(args.out).write_text(json.dumps(headline(report, vocoder_report, base_report), indent=1) + "\n",
                              encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
