"""Start-up cost of the command line and the app, cold (a new process each time) on a warm disk.

Measures what issue 24 names, against its goals:
  * `python -m kdtts --help`: wall seconds (goal <= 1 s);
  * `python -m kdtts synth --model student --text "Hello there." --out X.wav`: wall seconds and peak RSS of
    the process (goals <= 2 s, <= 400 MB), and whether torch or onnx was imported (`-X importtime`);
  * `python app.py`: seconds until the server answers HTTP 200 on its port (goal <= 8 s), and the CPU seconds
    the app had used by then (user + system, from /proc: on a machine shared with other work the wall time
    grows with the load, the CPU time much less).
Each command runs once untimed first (it fills the ONNX/sub-graph cache and the OS's page cache: "warm
disk"), then `--runs` times; the median is reported. Peak RSS is the child's own (os.wait4).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/startup.py [--runs 3] [--skip-app]

Writes benchmarks/results/startup.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "startup.json"
GOALS = {"help_s": 1.0, "synth_s": 2.0, "synth_rss_mb": 400.0, "app_s": 8.0}


def timed(argv: list[str], env: dict) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS in MB, stderr, CPU seconds) of one process run to its end."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024, stderr, usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_seconds(env: dict, timeout: float = 120) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from `python app.py` to the first HTTP 200 on its port."""
    port = free_port()
    env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryDirectory() as data:
        env["KDTTS_DATA_DIR"] = data
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while time.perf_counter() - start < timeout:
                if proc.poll() is not None:
                    raise SystemExit(f"app.py exited with {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                        if response.status == 200:
                            return time.perf_counter() - start, cpu_seconds(proc.pid)
                except OSError:
                    time.sleep(0.05)
            raise SystemExit(f"app.py did not answer within {timeout} s")
        finally:
            proc.terminate()
            proc.wait(30)


def heavy_imports(stderr: str) -> list[str]:
    """Top-level packages among torch/onnx/gradio that `-X importtime` saw imported."""
    names = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return sorted(names & {"torch", "onnx", "torchaudio", "gradio"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-app", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wav = Path(tempfile.mkdtemp()) / "hello.wav"
    commands = {"help": [sys.executable, "-m", "kdtts", "--help"],
                "synth": [sys.executable, "-m", "kdtts", "synth", "--model", "student", "--text", "Hello there.",
                          "--out", str(wav)]}
    results: dict[str, object] = {}
    for name, argv in commands.items():
        timed(argv, env)  # warm-up: caches and page cache
        runs = [timed(argv, env) for _ in range(args.runs)]
        results[f"{name}_s"] = round(statistics.median(r[0] for r in runs), 3)
        results[f"{name}_rss_mb"] = round(statistics.median(r[1] for r in runs), 1)
        results[f"{name}_cpu_s"] = round(statistics.median(r[3] for r in runs), 3)
    _, _, stderr, _ = timed([sys.executable, "-X", "importtime", *commands["synth"][1:]], env)
    results["synth_imports"] = heavy_imports(stderr)
    if not args.skip_app:
        app_seconds(env)  # warm-up
        runs = [app_seconds(env) for _ in range(args.runs)]
        results["app_s"] = round(statistics.median(r[0] for r in runs), 2)
        results["app_cpu_s"] = round(statistics.median(r[1] for r in runs), 2)
    results["goals"] = {k: {"goal": v, "met": results[k] <= v} for k, v in GOALS.items() if k in results}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_1min": round(os.getloadavg()[0], 2),
                          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "runs": args.runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print("| measure | median | goal |\n|---|---:|---:|")
    for key, goal in GOALS.items():
        if key in results:
            print(f"| {key} | {results[key]} | <= {goal} {'(met)' if results[key] <= goal else '(MISSED)'} |")
    print(f"| torch/onnx imported by student synth | {results['synth_imports'] or 'none'} | none |")
    for name in ("help", "synth", "app"):
        if f"{name}_cpu_s" in results:
            print(f"| {name}: CPU seconds (user + system) | {results[f'{name}_cpu_s']} | |")
    print(f"\nload average (1 min) at the end: {results['machine']['load_average_1min']}")


if __name__ == "__main__":
    main()
