"""What one synthesis request may cost, checked before it takes a synthesis slot.

Characters are a poor measure: "^" is read as "to the power of", and "9" x 1999 as ten thousand
characters of digits. So a request is phonemised first (bounded: kdtts.text refuses a long raw text
before cleaning it, and remembers what it phonemised, so the synthesis does not do it again) and then
refused by its phoneme ids and by the audio they will make at the request's length scale.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from kdtts.text import TextError, Utterance

MAX_REQUEST_IDS = 6000
"""Phoneme ids one request may have (2,000 characters of ordinary English are about 4,400)."""
MAX_AUDIO_SECONDS = 240.0
"""Audio one request may make, estimated before synthesis (benchmarks/attack.py measures the real worst)."""
SECONDS_PER_ID = 0.025
"""Audio per phoneme id at length scale 1: the teacher's and the student's mean on the held-out
sentences is 0.0246 s (runs of punctuation reach 0.04 s, so the real worst stays under 2 x the cap)."""
MIN_PROMPT_LETTERS = 12  # a blind prompt's sentence shorter than this is too common a phrase to refuse


def estimate_seconds(n_ids: int, length_scale: float) -> float:
    return n_ids * SECONDS_PER_ID * length_scale


def check_cost(utterances: list[Utterance], length_scale: float = 1.0) -> None:
    """TextError (shown to the user) when a phonemised request would cost more than the caps."""
    n_ids = sum(len(u.ids) for u in utterances)
    if n_ids > MAX_REQUEST_IDS:
        raise TextError(f"This text reads as {n_ids:,} phonemes once numbers and symbols are spelled out; the limit "
                        f"is {MAX_REQUEST_IDS:,}. Please shorten it or split it into several requests.")
    seconds = estimate_seconds(n_ids, length_scale)
    if seconds > MAX_AUDIO_SECONDS:
        raise TextError(f"This text would make about {seconds:.0f} s of audio at length scale {length_scale:g}; "
                        f"one request may make at most {MAX_AUDIO_SECONDS:.0f} s. Please shorten it, lower the "
                        "length scale or split it into several requests.")


def _key(sentence: str) -> str:
    """A sentence's letters and digits, lower case: punctuation or case changes do not escape the guard."""
    return re.sub(r"[^0-9a-z]+", "", sentence.lower())


class BlindPrompts:
    """The blind test's prompt sentences. One synthesis of a prompt gives the very clip a student plays
    in a pair (the student is deterministic), so a request that contains one is refused."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def add(self, utterances: Iterable[Utterance]) -> None:
        self._keys |= {k for k in (_key(u.text) for u in utterances) if len(k) >= MIN_PROMPT_LETTERS}

    def check(self, utterances: list[Utterance]) -> None:
        if any(_key(u.text) in self._keys for u in utterances):
            raise TextError("This sentence is one of the blind test's prompts (the Listen tab). To keep that test "
                            "blind it cannot be synthesised here; please try another sentence.")
