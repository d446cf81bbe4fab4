"""What a student decoder gets wrong: its magnitudes or its phases?

A student decoder (the vocoder's, or the TTS student's) predicts an STFT (n_fft 1024, hop 256) and inverts it.
On held-out sentences this swaps one half of that spectrum for the teacher's (the STFT of the teacher's audio
for the same input, same window and frames) and scores each hybrid against the teacher's audio with PESQ-WB
and STOI:

  student                  the student's magnitude and phase (its real output)
  teacher phase            the student's magnitude, the teacher's phase
  teacher magnitude        the teacher's magnitude, the student's phase
  teacher                  the teacher's own STFT inverted (the ceiling of the round trip)

Whichever swap closes most of the gap is where the student's error lies, and which loss to work on. It also
reports the student's wrapped phase errors against the teacher (`kdtts.distill.losses.wrapped_phase_errors`:
instantaneous phase, group delay, instantaneous frequency; unrelated signals score about 1.57 / 1.09 / 1.09).

    python experiments/phase_or_magnitude.py [--student assets/vocoder.safetensors] [--limit 12]
    python experiments/phase_or_magnitude.py --tts assets/student.safetensors   # teacher z -> student decoder
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.corpus import read_heldout  # noqa: E402
from kdtts.distill.losses import PhaseAwareLoss, wrapped_phase_errors  # noqa: E402
from kdtts.engine import Engine, Mix  # noqa: E402
from kdtts.evaluate import intrusive  # noqa: E402
from kdtts.student.checkpoint import load_student  # noqa: E402
from kdtts.student.modules import DecoderStudent, istft  # noqa: E402
from kdtts.teachers.piper import PiperTeacher  # noqa: E402
from kdtts.vocoding import VocoderPair  # noqa: E402

HYBRIDS = ("student", "teacher phase", "teacher magnitude", "teacher")


@torch.inference_mode()
def hybrids(decoder: DecoderStudent, features: np.ndarray, teacher: np.ndarray
            ) -> tuple[np.ndarray, dict[str, np.ndarray], list[float]]:
    """The teacher's audio, the four inverted spectra (all as long as the student's output), and the student's
    wrapped phase errors against the teacher."""
    magnitude, phase = decoder.spectrum(torch.as_tensor(features, dtype=torch.float32)[None])
    frames = magnitude.shape[-1]
    teacher_audio = torch.as_tensor(teacher)[None, :frames * decoder.hop]

    def invert(m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return istft(m, p, decoder.window, decoder.hop).clamp(-1, 1)

    student = invert(magnitude, phase)
    # the same analysis the phase loss uses; the student's phase as heard (its output re-analysed)
    output, spectrum = (s[..., :frames] for s in PhaseAwareLoss(decoder.n_fft, decoder.hop).spectra(student,
                                                                                                    teacher_audio))
    errors = [float(e) for e in wrapped_phase_errors(output, spectrum)]
    t_mag, t_phase = spectrum.abs(), spectrum.angle()
    audio = {"student": student, "teacher phase": invert(magnitude, t_phase),
             "teacher magnitude": invert(t_mag, phase), "teacher": invert(t_mag, t_phase)}
    return teacher_audio[0].numpy(), {name: a[0].numpy() for name, a in audio.items()}, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default=None, help="a student vocoder (default: the shipped one)")
    parser.add_argument("--tts", default=None, help="a TTS student instead: its decoder on the Piper teacher's z")
    parser.add_argument("--limit", type=int, default=12, help="held-out sentences")
    parser.add_argument("--out", type=Path, default=None, help="write the means as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.tts:
        engine = Engine(PiperTeacher.load())
        decoder, scales = load_student(args.tts).decoder, engine.teacher.default_scales.deterministic()
        sample_rate = engine.sample_rate

        def pair_of(text: str) -> tuple[np.ndarray, np.ndarray]:
            spoken = engine.synthesize(text, Mix.of("teacher"), scales)
            return spoken.z, spoken.audio
    else:
        vocoders = VocoderPair.load("hifigan", student=args.student)
        decoder, sample_rate = vocoders.student.decoder, vocoders.sample_rate

        def pair_of(text: str) -> tuple[np.ndarray, np.ndarray]:
            mel = vocoders.mel(text)
            return mel, vocoders.vocode(mel, "teacher").audio
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in HYBRIDS}
    phase_errors = []
    for text in tqdm(read_heldout()[:args.limit], desc="hybrids", unit="sentence"):
        reference, audio, errors = hybrids(decoder, *pair_of(text))
        phase_errors.append(errors)
        for name, signal in audio.items():
            rows[name].append((intrusive.pesq_wb(reference, signal, sample_rate),
                               intrusive.stoi(reference, signal, sample_rate)))
    means = {name: {"pesq_wb": float(np.mean([r[0] for r in v])), "stoi": float(np.mean([r[1] for r in v]))}
             for name, v in rows.items()}
    print(f"{'spectrum':<20}{'PESQ-WB':>9}{'STOI':>8}")
    for name, m in means.items():
        print(f"{name:<20}{m['pesq_wb']:>9.3f}{m['stoi']:>8.4f}")
    phase = dict(zip(("instantaneous", "group_delay", "instantaneous_frequency"),
                     (float(x) for x in np.mean(phase_errors, axis=0))))
    print("student's phase error (rad): " + ", ".join(f"{k} {v:.3f}" for k, v in phase.items()))
    if args.out:
        args.out.write_text(json.dumps({"student": args.tts or args.student or "shipped", "sentences": args.limit,
                                        "means": means, "phase_error": phase}, indent=1))


if __name__ == "__main__":
    main()
