"""What the front's fidelity goals score for a re-synthesis that listeners take for the original.

HiFi-GAN V1 "universal", fed the mel of the Piper teacher's own audio, re-vocodes it closely (it is the
vocoder teacher; `cache/hifigan-universal` holds its audio for the teacher cache's utterances). Scoring that
audio against the teacher's with the same sample-aligned metrics as the front's goals (PESQ-WB, STOI, MCD
0-8 kHz, F0 RMSE and errors) shows how far each metric sits from its ideal when only the waveform's fine
detail changes: a floor for MCD and the F0 errors that no student decoder is likely to beat.

A second row scores the teacher's audio against itself with white noise 40 dB below it (inaudible under
speech): what the metrics read when nothing a listener hears has changed. That is the pitch tracker's own
floor on this voice, whose creaky phrase ends it reads now at F0, now at half of it.

    python experiments/metric_floor.py --utts 32
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.data import load_utt, read_manifest  # noqa: E402
from kdtts.evaluate.fidelity import front_goal_metrics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-cache", default="cache/joe-t0")
    parser.add_argument("--vocoder-cache", default="cache/hifigan-universal")
    parser.add_argument("--utts", type=int, default=32, help="the first N utterances (both caches' validation set)")
    args = parser.parse_args()
    teacher, vocoded = Path(args.teacher_cache), Path(args.vocoder_cache)
    originals = {item["text"]: item for item in read_manifest(teacher)}
    rows, noisy, rng = [], [], np.random.default_rng(0)
    for item in tqdm(read_manifest(vocoded)[:args.utts], desc="scoring"):
        if item["text"] not in originals:
            continue
        a, b = load_utt(vocoded, item), load_utt(teacher, originals[item["text"]])
        if a is None or b is None:
            continue
        reference, audio = b.audio.numpy(), a.audio.numpy()
        n = min(len(reference), len(audio))
        rows.append(front_goal_metrics(reference[:n], audio[:n]))
        noise = rng.standard_normal(len(reference)).astype(np.float32) * np.sqrt(np.mean(reference ** 2)) / 100
        noisy.append(front_goal_metrics(reference, reference + noise))
    report = {"utterances": len(rows)}
    for name, found in (("hifigan_revocoded_vs_teacher", rows), ("teacher_plus_noise_40db_vs_teacher", noisy)):
        report[name] = {k: round(float(np.nanmean([r[k] for r in found])), 3) for k in found[0]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
