"""Turning what Whisper emits into the simplified-Chinese text callwatch shows and stores.

Whisper base often answers Mandarin in traditional characters, with ASCII punctuation and spaces between
Chinese words, and reads digits out as Chinese numerals. Agents and QA staff want simplified script, Chinese
punctuation, and phone or order numbers as digits they can copy.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import opencc

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_ASCII_TO_CHINESE_PUNCT = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；", ".": "。"}
_SENTENCE_END = "。？！…"
# Runs of spoken digits this long are numbers read out digit by digit (phone, order, card numbers), not
# words like 一二线 or 三三两两.
_DIGIT_READING = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                  "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_DIGIT_RUN = re.compile(f"[{''.join(_DIGIT_READING)}]{{5,}}")
_PUNCT_AND_SPACE = re.compile(r"[\s\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
                              r"!-/:-@\[-`{-~\u2010-\u206f\u00b7]+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    # Taiwan-standard input: Whisper learnt Chinese largely from Taiwanese subtitles, and plain "t2s" keeps
    # the particle 著 (带著, 看著) that simplified Chinese writes 着; "tw2s" knows those phrases.
    return opencc.OpenCC("tw2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def _chinese_punctuation(text: str) -> str:
    # ASCII punctuation next to Chinese becomes full-width; inside Latin words or numbers ("3.5", "U.S.") it
    # stays, so product names and amounts survive.
    def swap(match: re.Match[str]) -> str:
        return _ASCII_TO_CHINESE_PUNCT[match.group(0)]

    text = re.sub(f"(?<=[{_CJK}])[,?!:;.](?=[{_CJK}]|$|\\s)", swap, text)
    text = re.sub(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])", "", text)
    text = re.sub("\\s*([，。？！：；])\\s*", r"\1", text)
    return text


def _digits(text: str) -> str:
    return _DIGIT_RUN.sub(lambda m: "".join(_DIGIT_READING[c] for c in m.group(0)), text)


def normalise_transcript(text: str, *, final: bool) -> str:
    """Simplified script, Chinese punctuation, digit strings as digits; a final ends with punctuation."""
    text = to_simplified(text.strip())
    text = _chinese_punctuation(text)
    text = _digits(text)
    text = re.sub(r"\s{2,}", " ", text).strip()
    if final and text and text[-1] not in _SENTENCE_END and re.search(f"[{_CJK}]$", text):
        text = text.rstrip("，、：；") + "。"
    return text


def strip_for_scoring(text: str) -> str:
    """The form both sides of a CER are compared in: simplified, numbers as Arabic numerals, lower case,
    no punctuation or spaces."""
    import cn2an

    text = to_simplified(text)
    text = _PUNCT_AND_SPACE.sub("", text)
    with warnings.catch_warnings():
        # cn2an warns on text it leaves alone (a lone 百); that is the answer we want.
        warnings.simplefilter("ignore")
        text = cn2an.transform(text, "cn2an")
    return text.lower()


def character_error_rate(reference: str, hypothesis: str) -> tuple[int, int]:
    """Edit distance and reference length in characters, after `strip_for_scoring` on both sides.

    Returned as counts so a benchmark can pool them over clips (a total CER weighted by length).
    """
    from rapidfuzz.distance import Levenshtein

    ref = strip_for_scoring(reference)
    hyp = strip_for_scoring(hypothesis)
    return Levenshtein.distance(ref, hyp), len(ref)
