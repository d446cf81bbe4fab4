"""How far a teacher decoder's own waveform moves when its input moves a little: the floor under the
sample-aligned goals (PESQ-WB, STOI against the teacher's audio).

Both teachers' decoders are HiFi-GAN-style upsampling stacks, whose output phase is a steep function of the
input. This feeds each teacher its cached input (the vocoder teacher HiFi-GAN V1 its log-mel, the Piper
teacher's decoder its z) plus white Gaussian noise of standard deviation sigma, and scores the result against
the teacher's own clean output: PESQ-WB, STOI, the log-mel L1 between the two (how much the spectrum moved),
and the wrapped instantaneous phase error (`kdtts.distill.losses.wrapped_phase_errors`; pi / 2 = unrelated).
The student rows place each shipped student on that curve: its log-mel error and its phase error on the
same inputs.

    python experiments/phase_sensitivity.py --utts 12 [--out experiments/results/phase_sensitivity.json]

With --out it also draws PESQ-WB against the noise for both teachers, with each student as a marker at its own
log-mel error (OUT with .png).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.audio import log_mel  # noqa: E402
from kdtts.distill.data import load_cache  # noqa: E402
from kdtts.distill.losses import PhaseAwareLoss, wrapped_phase_errors  # noqa: E402
from kdtts.evaluate import intrusive  # noqa: E402
from kdtts.student.checkpoint import load_checkpoint  # noqa: E402

SIGMAS = (0.01, 0.03, 0.1, 0.3)
SAMPLE_RATE = 22050


def scores(reference: np.ndarray, audio: np.ndarray) -> dict[str, float]:
    n = min(len(reference), len(audio))
    reference, audio = reference[:n], audio[:n]
    spectra = PhaseAwareLoss(1024, 256).spectra(torch.as_tensor(audio), torch.as_tensor(reference))
    return {"pesq_wb": intrusive.pesq_wb(reference, audio, SAMPLE_RATE),
            "stoi": intrusive.stoi(reference, audio, SAMPLE_RATE),
            "log_mel_l1": float((log_mel(audio) - log_mel(reference)).abs().mean()),
            "phase_error": float(wrapped_phase_errors(*spectra)[0])}


def curve(name: str, inputs: list[np.ndarray], references: list[np.ndarray],
          teacher: Callable[[np.ndarray], np.ndarray], student: Callable[[np.ndarray], np.ndarray],
          seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict[str, float]]] = {"student": [], **{f"teacher, sigma {s}": [] for s in SIGMAS}}
    for x, reference in tqdm(list(zip(inputs, references)), desc=name, unit="utt", file=sys.stderr):
        rows["student"].append(scores(reference, student(x)))
        for sigma in SIGMAS:
            noisy = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
            rows[f"teacher, sigma {sigma}"].append(scores(reference, teacher(noisy)))
    return {label: {k: round(float(np.mean([r[k] for r in found])), 3) for k in found[0]}
            for label, found in rows.items()}


def plot(report: dict, path: Path) -> None:
    """PESQ-WB against log-mel L1 for each teacher's noisy copies (a curve) and its student (a point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (name, rows), colour in zip(((k, v) for k, v in report.items() if isinstance(v, dict)), ("C0", "C1")):
        noisy = [(v["log_mel_l1"], v["pesq_wb"], k.split()[-1]) for k, v in rows.items() if k != "student"]
        ax.plot([x for x, _, _ in noisy], [y for _, y, _ in noisy], "o-", color=colour, label=f"{name}, input + noise")
        for x, y, sigma in noisy:
            ax.annotate(f"σ {sigma}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.plot(rows["student"]["log_mel_l1"], rows["student"]["pesq_wb"], "*", markersize=14, color=colour,
                label=f"{name.split(':')[0]} student, clean input")
    ax.axhline(3.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("log-mel L1 against the teacher's clean output")
    ax.set_ylabel("PESQ-WB against the teacher's clean output")
    ax.legend(fontsize=7)
    ax.set_title("How far each teacher's output moves with its input")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=12, help="the first N (validation) utterances of each cache")
    parser.add_argument("--teacher-cache", default="cache/joe-t0")
    parser.add_argument("--vocoder-cache", default="cache/hifigan-universal")
    parser.add_argument("--student", default="assets/student.safetensors")
    parser.add_argument("--vocoder", default="assets/vocoder.safetensors")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict = {"sigmas": SIGMAS, "utterances": args.utts}

    from kdtts.teachers.hifigan import HiFiGANTeacher
    from kdtts.teachers.piper import PiperTeacher

    def student_of(path: str) -> Callable[[np.ndarray], np.ndarray]:
        decoder = load_checkpoint(path).decoder

        @torch.inference_mode()
        def run(x: np.ndarray) -> np.ndarray:
            return decoder(torch.as_tensor(x, dtype=torch.float32)[None])[0].clamp(-1, 1).numpy()
        return run

    utts = load_cache(Path(args.vocoder_cache), limit=args.utts)
    report["vocoder: HiFi-GAN V1 on log-mel"] = curve(
        "vocoder", [u.z.float().numpy() for u in utts], [u.audio.numpy() for u in utts],
        HiFiGANTeacher.load("universal").vocode, student_of(args.vocoder))
    utts = load_cache(Path(args.teacher_cache), limit=args.utts)
    report["TTS decoder: Piper joe on z"] = curve(
        "tts decoder", [u.z.float().numpy() for u in utts], [u.audio.numpy() for u in utts],
        PiperTeacher.load().decode, student_of(args.student))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        plot(report, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
