"""Intelligibility: WER and CER from the offline pocketsphinx recogniser (its en-US model ships in the wheel)."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jiwer
import numpy as np

from kdtts.audio import AudioSpec, resample
from kdtts.evaluate.optional import MissingEvaluator, require
from kdtts.text import normalize

RATE = 16000


_CONTRACTIONS = [(re.compile(p), r) for p, r in (
    (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"\bshan't\b", "shall not"), (r"n't\b", " not"),
    (r"\bi'm\b", "i am"), (r"'re\b", " are"), (r"'ve\b", " have"), (r"'ll\b", " will"), (r"'d\b", " would"))]


def normalize_transcript(text: str) -> str:
    """The same normalisation on both sides: kdtts.text.normalize (numbers, abbreviations... spelled out),
    lower case, hyphens to spaces, contractions expanded (i'm -> i am, don't -> do not; 's is kept, it is
    ambiguous), punctuation other than in-word apostrophes removed, single spaces."""
    text = normalize(text).lower().replace("-", " ").replace("’", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: (S + D + I) / words in the reference, after `normalize_transcript` on both.

    A ratio (0 = perfect; can exceed 1 with many insertions). Corpus WER is the sum of edits over the
    sum of reference words, not the mean of per-sentence WERs: use `error_counts`.
    """
    edits, words = error_counts(reference, hypothesis, unit="word")
    return edits / max(words, 1)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: character-level (S + D + I) / reference characters (spaces included),
    after `normalize_transcript` on both."""
    edits, chars = error_counts(reference, hypothesis, unit="char")
    return edits / max(chars, 1)


def error_counts(reference: str, hypothesis: str, unit: str = "word") -> tuple[int, int]:
    """(edits, reference length) in words or characters, for pooling over a corpus: the Levenshtein
    distance (substitutions + deletions + insertions; jiwer) between the normalised transcripts."""
    ref, hyp = normalize_transcript(reference), normalize_transcript(hypothesis)
    if unit == "word":
        out, length = jiwer.process_words(ref, hyp), len(ref.split())
    else:
        out, length = jiwer.process_characters(ref, hyp), len(ref)
    return out.substitutions + out.deletions + out.insertions, length


@lru_cache(maxsize=1)
def _decoder():
    pocketsphinx = require("pocketsphinx")
    model = Path(pocketsphinx.get_model_path("en-us"))
    for part in ("en-us", "en-us.lm.bin", "cmudict-en-us.dict"):
        if not (model / part).exists():
            raise MissingEvaluator(f"pocketsphinx's bundled en-US model is incomplete ({model / part} is missing); "
                                   "reinstall pocketsphinx (kdtts never downloads models at run time).")
    return pocketsphinx.Decoder(hmm=str(model / "en-us"), lm=str(model / "en-us.lm.bin"),
                                dict=str(model / "cmudict-en-us.dict"), samprate=RATE, loglevel="FATAL")


def transcribe(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate) -> str:
    """pocketsphinx (CMU Sphinx, en-US continuous model and 3-gram LM) transcript of one utterance."""
    decoder = _decoder()
    pcm = (np.clip(resample(np.asarray(audio, np.float32), sample_rate, RATE), -1.0, 1.0) * 32767).astype(np.int16)
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""
