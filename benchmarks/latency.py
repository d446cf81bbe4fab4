"""Time to first audio and real-time factor of streaming synthesis (`Engine.stream`), student and teacher.

Texts of 1, 5 and 20 held-out sentences. Two ways of starting:
- in-process: models loaded and warmed up; the clock starts when the text is handed to `Engine.stream`
  (phonemising included) and stops at the first chunk (time to first audio: median of 21 runs) or, in
  other runs, at the last (RTF = compute seconds / audio seconds: median of 3);
- cold, from the command line: `python -m kdtts synth --output-raw` in a fresh process, the clock
  started before the process is, stopped at the first PCM byte on its stdout and at its exit.
Each at one intra-op thread and at the default (no `--threads`: the student's own default of one,
onnxruntime's default for the teacher). Deterministic teacher scales; medians over the runs.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/latency.py [--runs 21] [--rtf-runs 3] [--cold-runs 3] [--no-cold]

Writes benchmarks/results/latency.json and latency.md (the Markdown table, also printed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.corpus import read_heldout  # noqa: E402
from kdtts.engine import Engine, Mix  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
SENTENCES = (1, 5, 20)
MODELS = ("student", "teacher")
THREADS = {"default": None, "1": 1}  # default first: Engine.load(threads=1) pins torch too
GOAL_MS = 50.0  # the student's first audio, in-process, one thread


def texts() -> dict[int, str]:
    heldout = read_heldout()
    return {n: " ".join(heldout[:n]) for n in SENTENCES}


def first_audio(engine: Engine, model: str, text: str) -> float:
    """Seconds from handing over the text to the first chunk (the rest of the stream is dropped)."""
    scales = engine.teacher.default_scales.deterministic()
    start = time.perf_counter()
    stream = engine.stream(text, Mix.of(model), scales)
    next(stream)
    first = time.perf_counter() - start
    stream.close()
    return first


def whole(engine: Engine, model: str, text: str) -> dict[str, float]:
    """One streamed synthesis to the end: its compute seconds, audio seconds and RTF."""
    scales = engine.teacher.default_scales.deterministic()
    start = time.perf_counter()
    samples = sum(len(chunk.audio) for chunk in engine.stream(text, Mix.of(model), scales))
    total = time.perf_counter() - start
    audio = samples / engine.sample_rate
    return {"total_s": total, "audio_s": audio, "rtf": total / audio}


def cold(model: str, text: str, threads: int | None) -> dict[str, float]:
    """`synth --output-raw` in a new process: seconds to its first PCM byte and to its exit."""
    command = [sys.executable, "-m", "kdtts", "synth", "--model", model, "--text", text, "--output-raw",
               "--deterministic", *(["--threads", str(threads)] if threads else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    select.select([proc.stdout], [], [], 600)
    first = time.perf_counter() - start
    out, err = proc.communicate(timeout=600)
    total = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command[:6])} failed: {err.decode()[-500:]}")
    summary = json.loads(err.decode().strip().splitlines()[-1])
    return {"first_audio_s": first, "total_s": total, "audio_s": summary["audio_seconds"],
            "rtf": total / summary["audio_seconds"]}


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(runs: int, rtf_runs: int, cold_runs: int) -> list[dict]:
    rows = []
    for setting, threads in THREADS.items():
        engine = Engine.load(threads=threads, require_student=True)
        for model in MODELS:
            whole(engine, model, texts()[5])  # warm-up: lazy initialisation is start-up, not latency
            for n, text in texts().items():
                first = statistics.median(first_audio(engine, model, text) for _ in range(runs))
                rest = medians([whole(engine, model, text) for _ in range(rtf_runs)])
                rows.append({"start": "in-process", "model": model, "threads": setting, "sentences": n,
                             "runs": runs, "rtf_runs": rtf_runs, "first_audio_s": first, **rest})
                print(json.dumps(rows[-1]), file=sys.stderr)
    for setting, threads in THREADS.items():
        for model in MODELS:
            for n, text in texts().items():
                if cold_runs:
                    result = medians([cold(model, text, threads) for _ in range(cold_runs)])
                    rows.append({"start": "cold (CLI)", "model": model, "threads": setting, "sentences": n,
                                 "runs": cold_runs, "rtf_runs": cold_runs, **result})
                    print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| start | model | threads | sentences | audio (s) | first audio (ms) | total (ms) | RTF |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['start']} | {r['model']} | {r['threads']} | {r['sentences']} | {r['audio_s']:.1f} | "
                     f"{1000 * r['first_audio_s']:.0f} | {1000 * r['total_s']:.0f} | {r['rtf']:.3f} |")
    goal = [r for r in rows if (r["start"], r["model"], r["threads"]) == ("in-process", "student", "1")]
    worst = max(r["first_audio_s"] for r in goal) * 1000
    lines.append(f"\nGoal: the student's first audio <= {GOAL_MS:.0f} ms in-process on one thread: "
                 f"{'met' if worst <= GOAL_MS else 'missed'} (worst median over the texts {worst:.1f} ms).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="in-process first-audio runs per cell (median)")
    parser.add_argument("--rtf-runs", type=int, default=3, help="in-process whole-text runs per cell (median)")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh CLI processes per cell (median)")
    parser.add_argument("--no-cold", action="store_true", help="in-process only")
    args = parser.parse_args()
    rows = measure(args.runs, args.rtf_runs, 0 if args.no_cold else args.cold_runs)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    (OUT / "latency.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    markdown = table(rows)
    (OUT / "latency.md").write_text(f"# Streaming latency\n\n`benchmarks/latency.py`, {meta['cpus']} CPUs, load "
                                    f"average {meta['load_average'][0]:.1f} at the end; medians.\n\n{markdown}\n")
    print(markdown)


if __name__ == "__main__":
    main()
