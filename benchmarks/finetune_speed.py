"""How long the app's Distill tab takes for a fine-tune with its default settings (issue: 200 steps < 2 min on 2 CPUs).

Runs kdtts.distill.finetune.Finetuner (the code path behind the app's Distill tab) on the built-in text set and writes
benchmarks/finetune_speed.json: the teacher's reading of the text (cold cache, a one-off per text),
the training steps, and the whole job. Usage:

    python benchmarks/finetune_speed.py [--steps 200] [--threads 2] [--out benchmarks/finetune_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--student", default=None, help="checkpoint to start from (default: shipped, else fresh)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("finetune_speed.json")))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.student.checkpoint import SHIPPED_STUDENT
    from kdtts.teachers.piper import PiperTeacher

    data = Path(tempfile.mkdtemp(prefix="kdtts-ftbench-"))
    student = Path(args.student) if args.student else (SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else None)
    checkpoints = {"shipped": student} if student else {}
    request = FinetuneRequest(name="bench", steps=args.steps, base="shipped" if student else None)  # the tab's defaults
    manager = Finetuner(PiperTeacher.load(threads=args.threads), data, lambda: checkpoints)
    results = {}
    try:
        for run in ("cold cache", "warm cache"):
            start, cpu_start = time.perf_counter(), time.process_time()
            manager.start(FinetuneRequest(**{**request.__dict__, "name": f"bench-{run.split()[0]}"}))
            manager.wait()
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            state = manager.state()
            if state["status"] != "done":
                raise SystemExit(f"fine-tune did not finish: {state}")
            info_rows = manager.job.rows
            train = info_rows[-1]["seconds"]
            results[run] = {"total_seconds": round(total, 1), "train_seconds": round(train, 1),
                            "teacher_and_setup_seconds": round(total - train, 1),
                            "seconds_per_step": round(train / args.steps, 3), "final_loss": info_rows[-1]["loss"],
                            "cpu_seconds": round(cpu, 1)}
            print(f"{run}: {total:.1f} s total, {train:.1f} s training ({train / args.steps:.3f} s/step), "
                  f"{cpu:.1f} CPU-seconds")
    finally:
        shutil.rmtree(data, ignore_errors=True)
    report = {"steps": args.steps, "threads": args.threads,
              "settings": {k: v for k, v in request.__dict__.items() if k not in ("text", "name")},
              "start_from": str(student) if student else "fresh student", "runs": results,
              "under_2_minutes": results["warm cache"]["total_seconds"] < 120,
              "machine": {"cpus": os.cpu_count(), "load_average_1min_at_end": os.getloadavg()[0],
                          "python": platform.python_version(), "torch": torch.__version__},
              "note": ("the machine may be shared with other jobs (see the load average): wall time is then inflated. "
                      "cpu_seconds is the CPU time the job used; on an idle machine with `threads` cores the "
                      "wall time is about cpu_seconds / threads .. cpu_seconds")}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
