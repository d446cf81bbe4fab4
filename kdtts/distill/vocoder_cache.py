"""The vocoder teacher's corpus: HiFi-GAN re-vocodes the mels of audio the project already has.

Source: a teacher corpus cache (kdtts.distill.data; the Piper teacher's audio, or aligned recordings).
For each utterance the vocoder cache stores the mel (the vocoder's input) in the `z` slot and HiFi-GAN's
audio for that mel in the `audio` slot, in the same file layout as the teacher cache, so the decoder's
segment batches (kdtts.distill.batches) and the adversarial stage read it unchanged. Resumable: the
manifest is append-only and finished utterances are skipped.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kdtts.distill.data import load_utt, read_manifest, teacher_record
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
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    (cache / "teacher.json").write_text(json.dumps(record, indent=1))
    done = {item["text"] for item in read_manifest(cache)}
    items = [item for item in read_manifest(source)[:limit] if item["text"] not in done]
    with (cache / "manifest.jsonl").open("a") as manifest:
        for item in tqdm(items, desc=f"{record['vocoder']} re-vocodes", unit="utt", disable=not progress):
            utt = load_utt(source, item)
            if utt is None:
                continue
            mel = vocoder.mel(utt.audio.numpy())
            audio = vocoder.vocode(mel)
            frames = mel.shape[1]
            np.savez(cache / "utts" / item["file"], ids=np.zeros(1, np.int16), durations=np.array([frames], np.int32),
                     z=mel.astype(np.float16), audio=(np.clip(audio, -1, 1) * 32767).astype(np.int16))
            manifest.write(json.dumps({"text": item["text"], "file": item["file"], "frames": frames, "ids": 1}) + "\n")
            manifest.flush()
    return cache
