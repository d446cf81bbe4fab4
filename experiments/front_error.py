"""Where a front's z error lies: in each phoneme's mean, or within the phoneme.

With both noise scales at 0 the teacher's z is its prior mean m_p (one 192-d vector per phoneme, from its text
encoder), expanded by the durations and passed through the flow. So z is nearly constant within a phoneme. This
splits a front's z error (mean squared, teacher durations) into the per-phoneme mean of the error, which a
better phoneme-rate encoder would fix, and what is left within phonemes, which is the frame-rate layers' part. It
reports the same split of the teacher's z variance.

With `--decode`, it also asks what each part is worth in sound: the student's decoder renders the front's z, the
front's z with each phoneme's mean replaced by the teacher's (a perfect phoneme-rate encoder, the front's own
detail within phonemes), and the teacher's z. Each is scored against the teacher's audio (PESQ-WB, STOI, MCD
0-8 kHz, F0 RMSE; all sample-aligned, since the durations are the teacher's).

    python experiments/front_error.py assets/student.safetensors runs/front_e2e/best.safetensors --utts 32
    python experiments/front_error.py assets/student.safetensors --utts 12 --decode
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
from kdtts.student.layers import length_regulate, phoneme_means  # noqa: E402
from kdtts.student.model import StudentTTS  # noqa: E402
from kdtts.voice import Scales  # noqa: E402


def expanded_means(x: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """x [C, T] with each phoneme's frames replaced by their mean."""
    d = torch.from_numpy(durations)[None]
    means = phoneme_means(torch.from_numpy(x)[None], d)
    return length_regulate(means, d, x.shape[1])[0][0].numpy()


def front_latent(student: StudentTTS, u: Utt) -> np.ndarray:
    """The front's z for the teacher's durations."""
    return student.latent(u.ids.numpy(), u.durations.numpy(), Scales())


def split(checkpoint: str, utts: list[Utt], top: int = 10) -> dict[str, float | list[float]]:
    """The error split, plus where the per-phoneme part sits: in the `top` channels with the most per-phoneme
    variance or the others (share of the error, and the fraction of each group's variance left unexplained),
    and by position in the sentence (tenths of its phonemes)."""
    student = load_student(checkpoint)
    sums = {"error": 0.0, "per_phoneme": 0.0, "within": 0.0, "target": 0.0, "target_within": 0.0,
            "prediction": 0.0, "prediction_within": 0.0}
    channel_error, channel_variance = np.zeros(192), np.zeros(192)
    tenth_error, tenth_frames = np.zeros(10), np.zeros(10)
    count = 0
    for u in utts:
        target = u.z.float().numpy()
        prediction = front_latent(student, u)
        error = prediction - target
        d = u.durations.numpy()
        sums["prediction"] += float(((prediction - prediction.mean(1, keepdims=True)) ** 2).sum())
        sums["prediction_within"] += float(((prediction - expanded_means(prediction, d)) ** 2).sum())
        mean_error, mean_target = expanded_means(error, d), expanded_means(target, d)
        centred = target - target.mean(1, keepdims=True)
        sums["error"] += float((error ** 2).sum())
        sums["per_phoneme"] += float((mean_error ** 2).sum())
        sums["within"] += float(((error - mean_error) ** 2).sum())
        sums["target"] += float((centred ** 2).sum())
        sums["target_within"] += float(((target - mean_target) ** 2).sum())
        channel_error += (mean_error ** 2).sum(1)
        channel_variance += ((mean_target - mean_target.mean(1, keepdims=True)) ** 2).sum(1)
        tenth = np.repeat(np.arange(len(d)) * 10 // len(d), d)
        np.add.at(tenth_error, tenth, (mean_error ** 2).mean(0))
        np.add.at(tenth_frames, tenth, 1)
        count += error.size
    mse = {k: v / count for k, v in sums.items()}
    order = np.argsort(-channel_variance)
    head, rest = order[:top], order[top:]
    return {"z_mse": mse["error"], "per_phoneme_mse": mse["per_phoneme"], "within_phoneme_mse": mse["within"],
            "per_phoneme_share": mse["per_phoneme"] / mse["error"],
            "explained_variance": 1 - mse["error"] / mse["target"], "target_variance": mse["target"],
            "target_within_phoneme_share": mse["target_within"] / mse["target"],
            # how much the front's z moves compared with the teacher's: below 1 is smoother than the teacher
            "variance_ratio": mse["prediction"] / mse["target"],
            "within_phoneme_variance_ratio": mse["prediction_within"] / mse["target_within"],
            f"top{top}_channels_variance_share": channel_variance[head].sum() / channel_variance.sum(),
            f"top{top}_channels_error_share": channel_error[head].sum() / channel_error.sum(),
            f"top{top}_channels_unexplained": channel_error[head].sum() / channel_variance[head].sum(),
            "other_channels_unexplained": channel_error[rest].sum() / channel_variance[rest].sum(),
            "per_phoneme_mse_by_tenth": [round(float(x), 3) for x in tenth_error / np.maximum(tenth_frames, 1)]}


def decoded_scores(checkpoint: str, utts: list[Utt]) -> dict[str, dict[str, float]]:
    """Fidelity to the teacher's audio of the front's z, of the front's z with the teacher's per-phoneme means,
    and of the teacher's z, each through the checkpoint's decoder."""
    from kdtts.evaluate.fidelity import front_goal_metrics

    student = load_student(checkpoint)
    rows: dict[str, list[dict[str, float]]] = {"front_z": [], "front_z_teacher_phoneme_means": [], "teacher_z": []}
    for u in utts:
        d = u.durations.numpy()
        front, target = front_latent(student, u), u.z.float().numpy()
        oracle = front - expanded_means(front, d) + expanded_means(target, d)
        reference = u.audio.numpy()
        for name, latent in zip(rows, (front, oracle, target)):
            rows[name].append(front_goal_metrics(reference, student.decode(latent)))
    return {name: {k: float(np.nanmean([r[k] for r in v])) for k in v[0]} for name, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--cache", default="cache/joe-t0")
    parser.add_argument("--utts", type=int, default=32, help="the first N cache utterances (the validation set)")
    parser.add_argument("--decode", action="store_true", help="also score the decoded z against the teacher's audio")
    args = parser.parse_args()
    utts = load_cache(Path(args.cache), limit=args.utts)
    report = {c: {k: v if isinstance(v, list) else round(float(v), 4) for k, v in split(c, utts).items()}
              for c in args.checkpoints}
    if args.decode:
        for c in args.checkpoints:
            report[c]["decoded"] = {name: {k: round(v, 3) for k, v in scores.items()}
                                    for name, scores in decoded_scores(c, utts).items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
