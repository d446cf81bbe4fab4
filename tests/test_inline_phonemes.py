"""Piper's inline phonemes (`[[ həlˈoʊ ]]`) reach the model as given: not cleaned, normalised or split."""
from __future__ import annotations

import pytest

from kdtts.text import split_sentences, validate


def _contains(sequence: list[str], part: list[str]) -> bool:
    return any(sequence[i:i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


@pytest.mark.parametrize("block", ["həlˈoʊ", "tʰæŋk", "wˈɜː.ld"])  # ʰ survives (NFKC would make it h); "." too
def test_inline_phonemes_are_used_as_given(teacher, block):
    utterances = teacher.phonemizer(f"Say [[ {block} ]] to me.")
    assert len(utterances) == 1  # a "." inside a block is a syllable mark, not a sentence end
    phonemes = utterances[0].phonemes
    assert _contains(phonemes, [" ", *block, " "]), phonemes
    id_map = teacher.config["phoneme_id_map"]
    assert all(ch in id_map for ch in block)
    assert utterances[0].ids == teacher.phonemizer._voice.phonemes_to_ids(phonemes)


def test_text_around_a_block_is_still_normalised_and_the_block_is_not():
    assert validate("I owe $3 [[ tʰæŋk juː ]] 2 you.") == "I owe three dollars [[ tʰæŋk juː ]] two you."
    assert validate("[[ a~1 ]]") == "[[ a~1 ]]"  # no "about", no "one"
    assert split_sentences("First [[ ə. b ]] here. Second.") == ["First [[ ə. b ]] here.", "Second."]
