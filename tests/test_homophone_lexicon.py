"""Homophone proposals from the word-count lexicon alone (no audio)."""

import pytest

from models.homophones import HomophoneLexicon, HomophoneOptions, Proposal, apply_proposals


@pytest.fixture(scope="module")
def lexicon() -> HomophoneLexicon:
    return HomophoneLexicon.load(extra_words=["示例公司"])


def repaired(lexicon: HomophoneLexicon, text: str) -> str:
    return apply_proposals(text, lexicon.proposals(text))


@pytest.mark.parametrize("heard,meant", [
    # Whisper base's own mistakes on ../shared/audio: same syllables and tones, no word.
    ("还有一个就是要跟大家揪证一点", "还有一个就是要跟大家纠正一点"),
    ("在看到那个到西北那边的这个闪北民谣", "在看到那个到西北那边的这个陕北民谣"),
    ("过两天要带着全部加荡去景德镇", "过两天要带着全部家当去景德镇"),
])
def test_a_non_word_is_repaired_to_the_common_word_that_sounds_the_same(lexicon, heard, meant):
    assert repaired(lexicon, heard) == meant


def test_correct_sentences_get_no_proposal(lexicon, manifest):
    # The reference transcripts are what was really said; nothing in them may look like a mistake.
    for row in manifest.values():
        assert lexicon.proposals(row["reference_transcript"]) == [], row["file"]


def test_a_word_with_other_tones_is_not_proposed(lexicon):
    # 起伐 (qǐ fá) is heard for 启发 (qǐ fā): a tone apart, which a word list alone cannot settle.
    assert all(p.replacement != "启发" for p in lexicon.proposals("是不是受到了黑神话的起伐"))


def test_a_rare_word_is_not_proposed():
    strict = HomophoneLexicon.load(HomophoneOptions(min_word_count=1000))
    assert strict.proposals("要跟大家揪证一点") != [] and strict.proposals("带着全部加荡去") == []  # 纠正 is counted 1509 times, 家当 406


def test_overlapping_proposals_take_the_first_in_order():
    text = "abcdef"
    first, overlapping, apart = Proposal(1, 3, "XY", 5.0), Proposal(2, 4, "ZW", 4.0), Proposal(4, 6, "UV", 1.0)
    assert apply_proposals(text, [first, overlapping, apart]) == "aXYdUV"
