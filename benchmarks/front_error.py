"""Where a front's z error lies: in each phoneme's mean, or within the phoneme.

With both noise scales at 0 the teacher's z is its prior mean m_p (one 192-d vector per phoneme, from its text
encoder), expanded by the durations and passed through the flow. So z is nearly constant within a phoneme. This
splits a front's z error (mean squared, teacher durations) into the per-phoneme mean of the error, which a
better phoneme-rate encoder would fix, and what is left within phonemes, which is the frame-rate layers' part. It
reports the same split of the teacher's z variance.

    python benchmarks/front_error.py assets/student.safetensors runs/front_e2e/best.safetensors --utts 32
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.data import Utt, load_cache  # noqa: E402
from kdtts.student.checkpoint import load_student  # noqa: E402


def phoneme_means(x: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """x [C, T] with each phoneme's frames replaced by their mean."""
    edges = np.concatenate([[0], np.cumsum(durations)])
    out = np.empty_like(x)
    for start, end in zip(edges[:-1], edges[1:]):
        if end > start:
            out[:, start:end] = x[:, start:end].mean(1, keepdims=True)
    return out


def split(checkpoint: str, utts: list[Utt]) -> dict[str, float]:
    student = load_student(checkpoint)
    sums = {"error": 0.0, "per_phoneme": 0.0, "within": 0.0, "target": 0.0, "target_within": 0.0}
    count = 0
    for u in utts:
        frames = int(u.durations.sum())
        with torch.inference_mode():
            z = student.front(u.ids[None], u.durations[None], torch.ones(1, 1, len(u.ids)), torch.ones(1, 1, frames))
        target = u.z.float().numpy()
        error = z[0].numpy() - target
        d = u.durations.numpy()
        mean_error, mean_target = phoneme_means(error, d), phoneme_means(target, d)
        centred = target - target.mean(1, keepdims=True)
        sums["error"] += float((error ** 2).sum())
        sums["per_phoneme"] += float((mean_error ** 2).sum())
        sums["within"] += float(((error - mean_error) ** 2).sum())
        sums["target"] += float((centred ** 2).sum())
        sums["target_within"] += float(((target - mean_target) ** 2).sum())
        count += error.size
    mse = {k: v / count for k, v in sums.items()}
    return {"z_mse": mse["error"], "per_phoneme_mse": mse["per_phoneme"], "within_phoneme_mse": mse["within"],
            "per_phoneme_share": mse["per_phoneme"] / mse["error"], "explained_variance": 1 - mse["error"] / mse["target"],
            "target_variance": mse["target"], "target_within_phoneme_share": mse["target_within"] / mse["target"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--cache", default="cache/joe-t0")
    parser.add_argument("--utts", type=int, default=32, help="the first N cache utterances (the validation set)")
    args = parser.parse_args()
    utts = load_cache(Path(args.cache), limit=args.utts)
    print(json.dumps({c: {k: round(v, 4) for k, v in split(c, utts).items()} for c in args.checkpoints}, indent=1))


if __name__ == "__main__":
    main()
