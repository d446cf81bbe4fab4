"""Text front end: clean and normalise text into words, then phonemise exactly as Piper does.

Normalisation happens *before* phonemisation so that every model (teacher or student) reads
the same words; espeak-ng's own number reading is never relied on, because a student trained
on our corpus must see the same spellings at inference.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kdtts.numbers import MONTHS, decimal_words, digit_words, number_to_words, ordinal_words, year_words

MAX_CHARS = 2000
"""Longest input accepted, in characters, after cleaning (about two minutes of speech)."""
MAX_CHUNK_CHARS = 250
"""Longest piece any model reads in one pass. The teacher's memory grows with the frames of a pass
(a 2,000-character sentence with no full stop needed gigabytes), so long sentences are cut at
clause marks, then between words, into pieces of at most this many characters."""
MAX_CHUNK_IDS = 400
"""Hard cap on phoneme ids per pass, for pieces whose phonemes outgrow their characters."""
MAX_RAW_FACTOR = 4
"""Raw input longer than this many times the limit is refused before it is cleaned: cleaning reads every
character (a 5 MB text took seconds), and emoji or control characters that cleaning drops never make up
three quarters of a real text."""


class TextError(ValueError):
    """Input text that cannot be spoken; the message is meant for the end user."""


# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# patterns, applied in this order
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor",
    "st": "saint", "jr": "junior", "sr": "senior", "mt": "mount", "ave": "avenue",
    "gen": "general", "capt": "captain", "lt": "lieutenant", "sgt": "sergeant", "col": "colonel",
    "gov": "governor", "rev": "reverend", "hon": "honorable", "inc": "incorporated",
    "ltd": "limited", "co": "company", "corp": "corporation", "vs": "versus", "etc": "et cetera",
    "approx": "approximately", "dept": "department", "est": "established", "no": "number",
    "jan": "January", "feb": "February", "mar": "March", "apr": "April", "aug": "August",
    "sep": "September", "sept": "September", "oct": "October", "nov": "November", "dec": "December",
}
_ABBREV_RE = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.(?=\s|$|,)", re.IGNORECASE)
_LATIN_RE = [(re.compile(r"\be\.g\.", re.I), "for example"), (re.compile(r"\bi\.e\.", re.I), "that is"),
             (re.compile(r"\ba\.m\.", re.I), "a m"), (re.compile(r"\bp\.m\.", re.I), "p m")]
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}
_CURRENCY_RE = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?(?:\s?(million|billion|trillion|thousand))?\b")
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\s*([ap])\.?\s?m\b\.?|\b([01]?\d|2[0-3]):([0-5]\d)\b", re.I)
# not part of a longer slash run ("1/2/3" is not a date)
_DATE_RE = re.compile(r"(?<![\d/])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?:/(\d{4}|\d{2}))?\b(?!/\d)")
_SLASH_RE = re.compile(r"(?<=\d)/(?=\d)")
_MINUS_RE = re.compile(r"(?<![\w.])-(?=[$£€]?\d)")  # "-0.5", "-$5": a sign, not a dash
_ORDINAL_RE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b", re.I)
_PERCENT_RE = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s?%")
_YEAR_RE = re.compile(r"(?<![\d,.$£€])\b(1[1-9]\d\d|20\d\d)(s?)\b(?![,.]\d)")
_DECIMAL_RE = re.compile(r"(?<![\d.])(\d[\d,]*)?\.(\d+)\b")
_NUMBER_RE = re.compile(r"(?<![\w.])-(?=\d)|\b\d{1,3}(?:,\d{3})+\b|\b\d+\b")
_SYMBOLS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "#": " number ",
            "°": " degrees ", "×": " times ", "~": " about ", "<": " less than ", ">": " greater than ",
            "^": " to the power of ", "½": " one half ", "¼": " one quarter ", "¾": " three quarters "}


def _currency(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole = int(m.group(2).replace(",", ""))
    scale = m.group(4)
    if scale:  # "$3 million" -> "three million dollars", "$3.5 million" -> "three point five million dollars"
        amount = decimal_words(m.group(2), m.group(3)) if m.group(3) else number_to_words(whole)
        return f"{amount} {scale} {many}"
    cents = int((m.group(3) or "0").ljust(2, "0"))
    parts = []
    if whole or not cents:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _time(m: re.Match[str]) -> str:
    hour, minute, ampm = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), None)
    h, mi = int(hour), int(minute)
    words = number_to_words(h)
    if mi == 0:
        words += "" if ampm else " o'clock"
    elif mi < 10:
        words += " oh " + number_to_words(mi)
    else:
        words += " " + number_to_words(mi)
    if ampm:
        words += " a m" if ampm.lower() == "a" else " p m"
    return words


def _date(m: re.Match[str]) -> str:
    month, day, year = int(m.group(1)), int(m.group(2)), m.group(3)
    words = f"{MONTHS[month - 1]} {ordinal_words(day)}"
    if year:
        y = int(year) if len(year) == 4 else 2000 + int(year)
        words += ", " + year_words(y)
    return words


def _year(m: re.Match[str]) -> str:
    words = year_words(int(m.group(1)))
    if m.group(2):  # the 1990s -> nineteen nineties
        words = words[:-1] + "ies" if words.endswith("y") else words + "s"
    return words


def _number(m: re.Match[str]) -> str:
    s = m.group(0)
    if s == "-":
        return "minus "
    if len(s) > 15 and "," not in s:  # an id or a long digit string: read digit by digit
        return digit_words(s)
    return number_to_words(int(s.replace(",", "")))


def clean(text: str) -> str:
    """Unicode-normalise and drop what cannot be spoken (control characters, emoji, symbols)."""
    # before NFKC, which would turn "½" into "1⁄2" (U+2044); "1½" -> "1 and one half"
    text = re.sub(r"(\d?)([½¼¾])", lambda m: (m.group(1) + " and" if m.group(1) else "") + _SYMBOLS[m.group(2)], text)
    text = unicodedata.normalize("NFKC", text).replace("\u2044", " over ")
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\t\r":
            out.append(" ")
        elif ch in _SYMBOLS or ch in _CURRENCY:
            out.append(ch)
        elif cat[0] == "C" or cat in ("So", "Sk", "Mn", "Me") or ch in "\u200d\ufe0f":
            continue  # control, format, private use, emoji, stray combining marks
        else:
            out.append(ch)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def normalize(text: str) -> str:
    """Spell out numbers, currency, times, dates, ordinals, years, abbreviations and symbols."""
    text = clean(text)
    for pattern, words in _LATIN_RE:
        text = pattern.sub(words, text)
    text = _ABBREV_RE.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    text = _MINUS_RE.sub("minus ", text)
    text = _CURRENCY_RE.sub(_currency, text)
    text = _TIME_RE.sub(_time, text)
    text = _DATE_RE.sub(_date, text)
    text = _SLASH_RE.sub(" slash ", text)
    text = _PERCENT_RE.sub(lambda m: m.group(1) + " percent", text)
    text = _ORDINAL_RE.sub(lambda m: ordinal_words(int(m.group(1).replace(",", ""))), text)
    text = _YEAR_RE.sub(_year, text)
    text = _DECIMAL_RE.sub(lambda m: decimal_words(m.group(1) or "0", m.group(2)), text)
    text = _NUMBER_RE.sub(_number, text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    return re.sub(r"\s+", " ", text).strip()


PHONEME_BLOCK = re.compile(r"(\[\[.*?\]\])")
"""Piper's inline phonemes, `[[ həlˈoʊ ]]`: passed to the phonemiser as given, never cleaned or normalised
(Unicode normalisation would turn ʰ into h, and `~` or digits into words)."""


def _outside_blocks(text: str, words: Callable[[str], str], block: Callable[[str], str] = lambda b: b) -> str:
    """`words` applied to the text between phoneme blocks and `block` to each block; a space that
    separates a block from its words is kept (Piper reads it as a word break)."""
    out = []
    for part in PHONEME_BLOCK.split(text):
        if PHONEME_BLOCK.fullmatch(part):
            out.append(block(part))
        elif part:
            done = words(part)
            out.append((" " if part[0].isspace() else "") + done + (" " if part[-1].isspace() and done else ""))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _clean_block(block: str) -> str:
    """A phoneme block as given, less control characters (no Unicode normalisation)."""
    return "".join(" " if ch.isspace() else ch for ch in block if not unicodedata.category(ch).startswith("C")
                   or ch.isspace())


def validate(text: str | None, max_chars: int = MAX_CHARS) -> str:
    """Return the normalised text, or raise TextError with a message a user can act on."""
    if text is None or not text.strip():
        raise TextError("Please enter some text to speak: the input is empty.")
    if len(text) > MAX_RAW_FACTOR * max_chars:
        raise TextError(f"The text is {len(text):,} characters long; the limit is {max_chars:,}. "
                        "Please shorten it or split it into several requests.")
    cleaned = _outside_blocks(text, clean, _clean_block)
    if len(cleaned) > max_chars:
        raise TextError(f"The text is {len(cleaned):,} characters long; the limit is {max_chars:,}. "
                        "Please shorten it or split it into several requests.")
    words = _outside_blocks(cleaned, normalize)
    if not any(ch.isalpha() for ch in words):
        raise TextError("There is nothing speakable in this text (no letters or numbers after removing "
                        "symbols, emoji and control characters).")
    return words


def split_sentences(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Split normalised text at sentence ends, then cut any sentence longer than `max_chars`
    (at commas and other clause marks first, then between words), so every pass is bounded.
    A phoneme block is never cut (a "." inside one is a syllable mark, not a sentence end)."""
    blocks: list[str] = []

    def mask(match: re.Match[str]) -> str:
        blocks.append(match.group(0))
        return f"\ue000{len(blocks) - 1}\ue001"

    def unmask(piece: str) -> str:
        return re.sub("\ue000(\\d+)\ue001", lambda m: blocks[int(m.group(1))], piece)

    # not after a single capital ("J. Smith", "U.S. Army"): initials, not a sentence end
    sentences = re.split(r"(?<=[.!?;])(?<!\b[A-Z]\.)\s+", PHONEME_BLOCK.sub(mask, text))
    pieces = [unmask(piece) for s in sentences for piece in _bounded_pieces(s, max_chars)]
    return [piece for piece in pieces if any(ch.isalpha() for ch in piece)]


def _bounded_pieces(sentence: str, max_chars: int) -> list[str]:
    """Whole clauses packed greedily up to `max_chars`; a clause longer than that is packed by words."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in re.split(r"(?<=[,:\u2013\u2014])\s+|\s+(?=-\s)", sentence):
        for part in _pack(clause.split(), max_chars) if len(clause) > max_chars else [clause]:
            if pieces and len(pieces[-1]) + 1 + len(part) <= max_chars:
                pieces[-1] += " " + part
            else:
                pieces.append(part)
    return pieces


def _pack(words: list[str], max_chars: int) -> list[str]:
    """Words joined greedily into pieces of at most `max_chars`; a longer single word is cut."""
    pieces: list[str] = []
    for word in (w[i:i + max_chars] for w in words for i in range(0, len(w), max_chars)):
        if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
            pieces[-1] += " " + word
        else:
            pieces.append(word)
    return pieces


# ---------------------------------------------------------------------------------------------
RECENT_TEXTS = 32  # phonemised texts remembered (each at most MAX_CHARS: a few hundred KB in all)


@dataclass(frozen=True)
class Utterance:
    """One sentence as Piper phonemises it."""

    text: str
    phonemes: list[str]
    ids: list[int]


class Phonemizer:
    """Piper's own espeak-ng phonemisation and id mapping for a given voice config."""

    def __init__(self, voice_config: dict) -> None:
        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        # PiperVoice.phonemize only needs the config; the ONNX session is ours, not Piper's.
        self._voice = PiperVoice(session=None, config=PiperConfig.from_dict(voice_config))  # type: ignore[arg-type]
        self.id_map: dict[str, list[int]] = voice_config["phoneme_id_map"]
        self._recent: OrderedDict[tuple[str, int], tuple[Utterance, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, text: str, max_chars: int = MAX_CHARS) -> list[Utterance]:
        """Validate, normalise and split into sentences; raise TextError if nothing is left.

        The last few texts are remembered, so a server can phonemise (and check the cost of) a request
        before it takes a synthesis slot, and the synthesis inside the slot does not do it again."""
        key = (text, max_chars)
        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return list(self._recent[key])
        utterances = list(self.stream(text, max_chars))
        with self._lock:
            self._recent[key] = tuple(utterances)
            while len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)
        return utterances

    def stream(self, text: str, max_chars: int = MAX_CHARS) -> Iterator[Utterance]:
        """The same utterances, each phonemised only when asked for (a stream's first sentence does not
        wait for the others). The text is validated first; TextError if no utterance comes of it. A text
        phonemised a moment ago (a server prices a request before its slot) is not phonemised again."""
        with self._lock:
            known = self._recent.get((text, max_chars))
        if known is not None:
            yield from known
            return
        step = MAX_CHUNK_IDS // 2  # Piper puts a pad id after every phoneme
        spoken = False
        for sentence in split_sentences(validate(text, max_chars)):
            for phonemes in self._voice.phonemize(sentence):
                if not any(ph.strip() for ph in phonemes):
                    continue
                for i in range(0, len(phonemes), step):
                    piece = phonemes[i:i + step]
                    spoken = True
                    yield Utterance(sentence, piece, self._voice.phonemes_to_ids(piece))
        if not spoken:
            raise TextError("There is nothing speakable in this text.")

    def ids(self, text: str) -> list[int]:
        """Ids of a single sentence (all sentences concatenated, for short inputs)."""
        return [i for u in self(text) for i in u.ids]
