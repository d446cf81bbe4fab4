"""Where a measurement was taken: the machine, how busy it was, and the code's git revision."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def machine() -> dict[str, str | int]:
    """Where the numbers come from: CPU model, cores, OS, Python, library versions."""
    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count() or 0, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "torch_default_threads": torch.get_num_threads()}


def load_average() -> float | None:
    """1-minute load average (how busy the shared machine was), None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def git_head() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
