"""Training steps per second of each stage on this CPU (the one loop against the loops it replaced).

Runs the regression stage (duration + front + decoder, the default modules) and the adversarial stage for
`--steps` steps each on the teacher's cache, on one thread, from the shipped student, and reads each run's
training seconds from its resumable state (`last.json`), so data loading is not counted. `--code DIR` runs a
different checkout of kdtts (e.g. the commit before a change) in a subprocess. Usage:

    python benchmarks/loop_speed.py [--steps 60] [--cache cache/joe-t0] [--code .] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STAGE = r"""
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
stage, cache, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
if stage == "regression":
    from kdtts.distill.config import DistillConfig
    from kdtts.distill.train import distill
    cfg = DistillConfig(cache_dir=cache, init="assets/student.safetensors", max_steps=steps, checkpoint_every=steps,
                        sample_every=10**9, validation_utts=8, sentences=200)
    distill(cfg, out, progress=False)
else:
    from kdtts.distill.adversarial import AdversarialConfig, adversarial
    cfg = AdversarialConfig(cache_dir=cache, init="assets/student.safetensors", max_steps=steps,
                            checkpoint_every=steps, snapshot_every=10**9, validation_utts=8, sentences=200)
    adversarial(cfg, out, progress=False)
meta = json.loads((out / "last.json").read_text())
print(json.dumps({"steps": meta["step"], "seconds": meta["seconds"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--cache", default="cache/joe-t0")
    parser.add_argument("--code", default=str(Path(__file__).resolve().parents[1]), help="the kdtts checkout to run")
    parser.add_argument("--out", default=None, help="also write the result here (JSON)")
    args = parser.parse_args()
    code = Path(args.code).resolve()
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    result: dict = {"code": str(code), "steps": args.steps, "load_average": os.getloadavg()[0]}
    for stage in ("regression", "adversarial"):
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", STAGE, stage, str(Path(args.cache).resolve()),
                                   str(args.steps), tmp], cwd=code, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{stage} failed:\n{done.stderr[-2000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
        result[stage] = {**row, "steps_per_second": round(row["steps"] / row["seconds"], 2)}
        print(f"{stage}: {result[stage]['steps_per_second']} steps/s ({row['steps']} steps in {row['seconds']} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
