"""Text front end: normalisation into words, validation of bad input, Piper phonemisation."""
from __future__ import annotations

import pytest

from kdtts.text import (
    MAX_CHARS,
    TextError,
    clean,
    normalize,
    number_to_words,
    ordinal_words,
    split_sentences,
    validate,
    year_words,
)


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith paid $3.50 on 12/05 at 10:30",
     "doctor Smith paid three dollars and fifty cents on December fifth at ten thirty"),
    # ordinals
    ("the 1st, 2nd, 3rd, 4th, 12th, 21st and 112th", "the first, second, third, fourth, twelfth, twenty-first "
                                                   "and one hundred twelfth"),
    ("the 10,000th visitor", "the ten thousandth visitor"),
    # years and decades
    ("In 1999, 2005, 2010 and 1900", "In nineteen ninety-nine, two thousand five, twenty ten and nineteen hundred"),
    ("the 1990s and 1805", "the nineteen nineties and eighteen oh five"),
    # percent and decimals
    ("50% and 3.5%", "fifty percent and three point five percent"),
    ("pi is 3.14 and half is .5", "pi is three point one four and half is zero point five"),
    # currency
    ("$1, £2.01, €1,000,000 and $0.99", "one dollar, two pounds and one penny, one million euros and ninety-nine cents"),
    ("$3 million and $3.5 billion", "three million dollars and three point five billion dollars"),
    # big numbers with commas, negative numbers, long digit strings
    ("1,234,567 people", "one million two hundred thirty-four thousand five hundred sixty-seven people"),
    ("-5 degrees", "minus five degrees"),
    ("code 1234567890123456", "code one two three four five six seven eight nine oh one two three four five six"),
    # times and dates
    ("at 7:05 pm", "at seven oh five p m"),
    ("at 7:00", "at seven o'clock"),
    ("on 12/25/2024", "on December twenty-fifth, twenty twenty-four"),
    # abbreviations
    ("Mr. and Mrs. Jones vs. St. Louis etc.", "mister and missus Jones versus saint Louis et cetera"),
    ("Prof. Lee, e.g. No. 5", "professor Lee, for example number five"),
    # symbols
    ("A & B @ C + D = E", "A and B at C plus D equals E"),
    ("1½ cups, ¼ and 30°", "one and one half cups, one quarter and thirty degrees"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_number_readings():
    assert number_to_words(0) == "zero"
    assert number_to_words(101) == "one hundred one"
    assert number_to_words(2_000_017) == "two million seventeen"
    assert ordinal_words(20) == "twentieth"
    assert ordinal_words(103) == "one hundred third"
    assert year_words(2000) == "two thousand"
    assert year_words(1066) == "ten sixty-six"


@pytest.mark.parametrize("text", [None, "", "   ", " \n\t \r "])
def test_empty_input_is_a_clear_error(text):
    with pytest.raises(TextError, match="empty"):
        validate(text)


@pytest.mark.parametrize("text", ["😀😀🎉", "!!! ...", "\x00\x01\x02", "👍🏽 ❤️ \u200d"])
def test_nothing_speakable_is_a_clear_error(text):
    with pytest.raises(TextError, match="nothing speakable"):
        validate(text)


def test_too_long_is_a_clear_error():
    with pytest.raises(TextError) as info:
        validate("a" * (MAX_CHARS + 1))
    message = str(info.value)
    assert f"{MAX_CHARS + 1:,}" in message and f"{MAX_CHARS:,}" in message and "limit" in message
    assert validate("word " * (MAX_CHARS // 5))  # exactly at the limit is accepted


def test_control_characters_and_emoji_are_dropped_not_fatal():
    assert validate("hello\x00\x07 wor\u200bld\x1b 😀 there") == "hello world there"
    assert clean("tab\tnew\nline\r") == "tab new line"


@pytest.mark.parametrize("text", [
    "cafe\u0301 na\u0308ive",          # combining accents
    "\uff11\uff12\uff13 apples",       # fullwidth digits
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew (RTL)
    "\u0645\u0631\u062d\u0628\u0627 hello",  # Arabic (RTL) mixed with English
    "\u202eevil\u202c override",       # bidi control characters
    "\u0301\u0301 lone combining marks",
    "\ud800 lone surrogate",
    "ｆｕｌｌｗｉｄｔｈ letters",
    "𝐛𝐨𝐥𝐝 math letters",
    "x" * 50 + "\u00a0" * 50,
    "9" * 1999,
])
def test_odd_unicode_never_crashes(text, teacher):
    try:
        words = validate(text)
    except TextError:
        return
    assert words and words == words.strip()
    try:
        utterances = teacher.phonemizer(text)
    except TextError:
        return
    assert all(u.ids for u in utterances)


def test_odd_unicode_is_normalised():
    assert validate("\uff11\uff12\uff13 apples") == "one hundred twenty-three apples"
    assert validate("cafe\u0301") == "caf\u00e9"  # composed, not dropped
    assert validate("\u202eevil\u202c override") == "evil override"


def test_split_sentences():
    assert split_sentences("One. Two! Three? Four; five") == ["One.", "Two!", "Three?", "Four;", "five"]
    assert split_sentences("J. R. R. Tolkien wrote. Then he slept.") == ["J. R. R. Tolkien wrote.", "Then he slept."]
    assert split_sentences("Hello. ... !") == ["Hello."]


def test_phonemes_are_pipers(teacher):
    """Ids come from piper-tts's own espeak phonemisation and the voice's id map."""
    from piper.voice import PiperVoice

    [utterance] = teacher.phonemizer("Hello world.")
    id_map = teacher.config["phoneme_id_map"]
    assert utterance.ids[0] == id_map["^"][0] and utterance.ids[-1] == id_map["$"][0]
    assert all(ph in id_map for ph in utterance.phonemes)
    voice = PiperVoice(session=None, config=teacher.phonemizer._voice.config)  # type: ignore[arg-type]
    assert utterance.ids == voice.phonemes_to_ids(voice.phonemize("Hello world.")[0])


def test_numbers_are_spelled_before_phonemisation(teacher):
    assert teacher.phonemizer.ids("I have 2 dogs.") == teacher.phonemizer.ids("I have two dogs.")


def test_long_input_is_split_into_sentences(teacher):
    text = " ".join(f"This is sentence number {i}." for i in range(1, 9))
    utterances = teacher.phonemizer(text)
    assert len(utterances) == 8
    assert utterances[2].text == "This is sentence number three."


@pytest.mark.parametrize("text, spoken", [
    ("10^30", "ten to the power of thirty"),
    ("-0.5", "minus zero point five"),
    ("It fell to -3 degrees.", "It fell to minus three degrees."),
    ("Pay -$5 now", "Pay minus five dollars now"),
    ("1/2/3", "one slash two slash three"),
    ("on 3/14/2024", "on March fourteenth, twenty twenty-four"),
    ("x - 5", "x - five"),
])
def test_signs_powers_and_slash_runs(text, spoken):
    assert normalize(text) == spoken


def test_long_sentences_are_cut_into_bounded_pieces():
    from kdtts.text import MAX_CHUNK_CHARS

    words = " ".join(["alpha", "beta", "gamma", "delta"] * 120)           # no punctuation at all
    pieces = split_sentences(words)
    assert len(pieces) > 1 and all(len(p) <= MAX_CHUNK_CHARS for p in pieces)
    assert " ".join(pieces) == words                                      # nothing lost, nothing added
    clauses = split_sentences("one two three, " * 40)
    assert all(p.endswith(",") for p in clauses[:-1])                     # cut at commas when there are some
    assert all(len(p) <= MAX_CHUNK_CHARS for p in split_sentences("x" * 1000))  # even one huge "word"
