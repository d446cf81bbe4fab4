"""The vocoder teacher's corpus: HiFi-GAN re-vocodes the mels of audio the project already has.

Source: a teacher corpus cache (kdtts.distill.data; the Piper teacher's audio, or aligned recordings).
For each utterance the vocoder cache stores the mel (the vocoder's input) in the `z` slot and HiFi-GAN's
audio for that mel in the `audio` slot, in the same file layout as the teacher cache, so the decoder's
segment batches (kdtts.distill.batches) and the adversarial stage read it unchanged. Resumable: the
manifest is append-only and finished utterances are skipped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdtts.distill.data import Utt, derive_cache, read_manifest, teacher_record
from kdtts.teachers.hifigan import HiFiGANTeacher


def build_vocoder_cache(source: Path, cache: Path, vocoder: HiFiGANTeacher, limit: int,
                        progress: bool = True) -> Path:
    """Vocode the first `limit` utterances of `source` into `cache` (skipping those already there)."""
    source, cache = Path(source), Path(cache)
    if not read_manifest(source):
        raise FileNotFoundError(f"{source} holds no teacher audio to re-vocode; build the teacher cache first "
                                "(python -m kdtts distill builds it)")
    source_record = teacher_record(source)
    record = {"vocoder": f"hifigan-{vocoder.name}", "source": str(source),
              "source_voice": source_record.get("voice_name") or Path(source_record.get("voice", "")).stem or None,
              "sample_rate": vocoder.spec.sample_rate, "hop_length": vocoder.spec.hop_length}
    old = teacher_record(cache)
    if old and old.get("vocoder") != record["vocoder"]:
        raise ValueError(f"{cache} holds {old.get('vocoder')}'s audio, not {record['vocoder']}'s; use another folder")
    if vocoder.spec.sample_rate != source_record.get("sample_rate", vocoder.spec.sample_rate):
        raise ValueError(f"{source} is at {source_record['sample_rate']} Hz; "
                         f"HiFi-GAN expects {vocoder.spec.sample_rate} Hz")

    def derive(utt: Utt) -> tuple[np.ndarray, ...]:
        mel = vocoder.mel(utt.audio.numpy())
        return np.zeros(1, np.int64), np.array([mel.shape[1]]), mel, vocoder.vocode(mel)

    return derive_cache(source, cache, record, derive, limit, f"{record['vocoder']} re-vocodes", progress)
