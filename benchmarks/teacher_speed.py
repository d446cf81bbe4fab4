"""The teacher's real-time factor (RTF = compute seconds / audio seconds) on the held-out sentences.

Deterministic teacher (noise scales 0), onnxruntime with 1 and 2 intra-op threads; the full graph in one
pass (`PiperTeacher.full`, the real teacher's speed) and module by module (`kdtts.voice.speak`: duration, front,
decoder, each its own session). Text front end (normalise + espeak phonemes) timed separately. One
warm-up pass, then the median of 3 timed passes over all sentences.

    nice -n 10 python benchmarks/teacher_speed.py [--threads 1 2] [--runs 3] [--limit N]

Writes benchmarks/results/teacher_speed.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.teachers import PiperTeacher  # noqa: E402
from kdtts.voice import speak  # noqa: E402

HELDOUT = ROOT / "assets" / "heldout.txt"
OUT = ROOT / "benchmarks" / "results" / "teacher_speed.json"


def one_pass(teacher: PiperTeacher, texts: list[str], ids: list[np.ndarray]) -> dict[str, float]:
    """Seconds spent per stage over all sentences, and the audio seconds produced."""
    scales = teacher.default_scales.deterministic()
    seconds = {"text": 0.0, "full": 0.0, "duration": 0.0, "front": 0.0, "decoder": 0.0, "audio": 0.0}
    start = time.perf_counter()
    for text in texts:
        teacher.phonemizer(text)
    seconds["text"] = time.perf_counter() - start
    for sentence in ids:
        start = time.perf_counter()
        out = teacher.full(sentence, scales)
        seconds["full"] += time.perf_counter() - start
        seconds["audio"] += len(out.audio) / teacher.sample_rate
        modular = speak(sentence, scales, teacher, teacher, teacher)
        for stage in ("duration", "front", "decoder"):
            seconds[stage] += modular.timings[stage]
    seconds["modules"] = seconds["duration"] + seconds["front"] + seconds["decoder"]
    return seconds


def measure(threads: int, texts: list[str], runs: int) -> dict:
    teacher = PiperTeacher.load(threads=threads)
    ids = [np.array(teacher.phonemizer.ids(text)) for text in texts]
    one_pass(teacher, texts[:5], ids[:5])  # warm-up
    passes = [one_pass(teacher, texts, ids) for _ in range(runs)]
    audio = passes[0]["audio"]
    rtf = {stage: statistics.median(p[stage] / p["audio"] for p in passes)
           for stage in ("text", "full", "modules", "duration", "front", "decoder")}
    return {"threads": threads, "audio_seconds": round(audio, 3), "runs": runs,
            "rtf_median": {k: round(v, 5) for k, v in rtf.items()},
            "rtf_runs": {stage: [round(p[stage] / p["audio"], 5) for p in passes]
                         for stage in ("full", "modules", "decoder")},
            "decoder_share_of_modules": round(rtf["decoder"] / rtf["modules"], 3),
            "end_to_end_rtf": round(rtf["text"] + rtf["full"], 5)}


def markdown(results: list[dict]) -> str:
    rows = ["| threads | text | full graph | modules (sum) | duration | front | decoder | decoder share | "
            "end to end (text + full) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        m = r["rtf_median"]
        rows.append(f"| {r['threads']} | {m['text']:.4f} | {m['full']:.4f} | {m['modules']:.4f} | "
                    f"{m['duration']:.4f} | {m['front']:.4f} | {m['decoder']:.4f} | "
                    f"{r['decoder_share_of_modules']:.0%} | {r['end_to_end_rtf']:.4f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, help="first N held-out sentences only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    texts = [line.strip() for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = texts[: args.limit] if args.limit else texts
    results = [measure(t, texts, args.runs) for t in args.threads]
    report = {
        "benchmark": "teacher_speed", "teacher": "en_US-joe-medium (PiperTeacher, deterministic scales)",
        "sentences": len(texts), "source": str(HELDOUT.relative_to(ROOT)),
        "statistic": f"median of {args.runs} passes after a warm-up; RTF = compute seconds / audio seconds",
        "machine": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
        "table": markdown(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))
    print(f"\n{len(texts)} sentences, {results[0]['audio_seconds']:.1f} s of audio; "
          f"median of {args.runs}; written to {args.out}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
