"""A bounded load test of the app, as a public Space sees it: 50 concurrent /synthesize calls, half teacher,
half student, from 10 clients. Prints p50/p95 latency per model, errors and the server's RSS growth.

    python benchmarks/load_test.py            # starts `python app.py` on a free port with a temporary data dir
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def main(calls: int = 50, clients: int = 10) -> None:
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KDTTS_DATA_DIR": tempfile.mkdtemp(prefix="kdtts-load-"), "GRADIO_SERVER_PORT": str(port),
           "KDTTS_PREWARM_FINETUNE": "0", "KDTTS_LISTEN_PROMPTS": "2", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = Path(env["KDTTS_DATA_DIR"]) / "app.log"
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log.open("w"),
                           stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(180):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        while "prewarm finished" not in log.read_text():  # a warm Space: the start-up rendering is not the load
            time.sleep(0.5)
        pool_clients = [Client(url, verbose=False, download_files=False) for _ in range(clients)]
        before = _rss_mb(app.pid)

        def call(i: int) -> tuple[str, float | None]:
            model = "teacher" if i % 2 else "student"
            start = time.perf_counter()
            try:
                pool_clients[i % clients].predict(TEXT, model, api_name="/synthesize")
            except Exception:  # counted as an error
                return model, None
            return model, time.perf_counter() - start

        with ThreadPoolExecutor(calls) as pool:
            results = list(pool.map(call, range(calls)))
        report: dict = {"calls": calls, "errors": sum(1 for _, t in results if t is None),
                        "rss_growth_mb": round(_rss_mb(app.pid) - before, 1)}
        for model in ("teacher", "student"):
            times = sorted(t for m, t in results if m == model and t is not None)
            report[model] = {"p50_s": round(statistics.median(times), 2),
                             "p95_s": round(times[int(0.95 * (len(times) - 1))], 2)}
        report["student_p95_over_teacher_p95"] = round(report["student"]["p95_s"] / report["teacher"]["p95_s"], 2)
        print(json.dumps(report))
    finally:
        app.terminate()


if __name__ == "__main__":
    main()
