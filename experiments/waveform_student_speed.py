"""Would a waveform-domain student be fast enough? HiFi-GAN V1 against a generator of HiFi-GAN V2's shape
(128 channels instead of 512: 0.93 M parameters, within the student vocoder's 1 M budget) and the shipped
inverse-STFT student, single-thread, on the same 4 s of mel.

A student built like HiFi-GAN could in principle follow its teacher's phase, which the inverse-STFT student
cannot (`experiments/phase_sensitivity.py`); this says what that would cost in speed. Random weights: speed does
not depend on them.

    python experiments/waveform_student_speed.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.student.checkpoint import load_vocoder  # noqa: E402
from kdtts.teachers.hifigan import HiFiGANConfig, HiFiGANGenerator  # noqa: E402


def seconds(model: torch.nn.Module, mel: torch.Tensor, repeats: int = 5) -> float:
    """Fastest of `repeats` runs after one warm-up (the least disturbed by other work on the machine)."""
    with torch.inference_mode():
        model(mel)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(mel)
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mel = torch.randn(1, 80, 344)  # 4.0 s at hop 256, 22,050 Hz
    models = {"HiFi-GAN V1": HiFiGANGenerator(HiFiGANConfig()).eval(),
              "HiFi-GAN V2 shape": HiFiGANGenerator(HiFiGANConfig(upsample_initial_channel=128)).eval(),
              "student vocoder (shipped)": load_vocoder(ROOT / "assets/vocoder.safetensors").decoder}
    results = {name: {"parameters": sum(p.numel() for p in m.parameters()), "seconds": seconds(m, mel)}
               for name, m in models.items()}
    v1 = results["HiFi-GAN V1"]["seconds"]
    for row in results.values():
        row["speedup_over_v1"] = round(v1 / row["seconds"], 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
