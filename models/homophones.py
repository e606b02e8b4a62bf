"""Homophone repairs proposed for a Mandarin transcript: characters that sound right and make no word.

Whisper base often hears a word right and writes it with the wrong characters: 揪证 for 纠正, 闪北 for 陕北,
加荡 for 家当, 经算师 for 精算师. Such a stretch makes no word, while a common word with exactly the same
syllables and tones does. `HomophoneLexicon` finds those stretches and proposes the word, scored by how
much more likely the sentence becomes under a word-frequency model (jieba's dictionary: 349,000 words with
counts). It only proposes; the recogniser checks each proposal against the audio before taking it
(`FasterWhisperBackend`), because a frequency list knows no context (it would turn 办个宽带 into 半个宽带).

Kept narrow on purpose, each limit measured on correct text (the training documents, the project's
call-centre sentences, the reference transcripts) where any change is a mistake:
  - the stretch is 2-4 characters that the best segmentation leaves as single characters, and no
    dictionary word contains any two of them side by side;
  - the replacement has the same pinyin with the same tones, is common (`min_word_count`), and raises the
    sentence's log-probability by `min_gain_per_char` for each character it changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Iterable, Sequence

from pypinyin import Style, lazy_pinyin

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class HomophoneOptions:
    min_word_count: int = 200
    min_gain_per_char: float = 3.0
    max_span: int = 4


@dataclass(frozen=True)
class Proposal:
    """Replace text[start:end] with `replacement`; `lm_gain` is the sentence's log-probability gain."""

    start: int
    end: int
    replacement: str
    lm_gain: float

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]


def _tones(text: str) -> list[str]:
    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)


def jieba_dictionary() -> Path:
    spec = find_spec("jieba")
    if spec is None or spec.origin is None:
        raise RuntimeError("the jieba package (its dict.txt word counts) is needed for homophone repair")
    return Path(spec.origin).parent / "dict.txt"


class HomophoneLexicon:
    """Word counts, the words grouped by their toned pinyin, and the proposals they support."""

    def __init__(self, counts: dict[str, int], by_sound: dict[tuple[str, ...], list[str]],
                 options: HomophoneOptions) -> None:
        self.counts = counts
        self.by_sound = by_sound
        self.options = options
        self._log_total = math.log(sum(counts.values()))
        self._longest = max(map(len, counts))

    @classmethod
    def load(cls, options: HomophoneOptions = HomophoneOptions(), extra_words: Iterable[str] = ()) -> "HomophoneLexicon":
        """jieba's dictionary plus `extra_words` (company and product names), counted as common words.
        About half a second."""
        counts: dict[str, int] = {}
        with jieba_dictionary().open(encoding="utf-8") as fh:
            for line in fh:
                word, count, *_ = line.split(" ")
                counts[word] = counts.get(word, 0) + int(count)
        by_sound: dict[tuple[str, ...], list[str]] = {}
        for word, times in counts.items():
            if times >= options.min_word_count and 2 <= len(word) <= options.max_span and _HAN_RUN.fullmatch(word):
                by_sound.setdefault(tuple(_tones(word)), []).append(word)
        lexicon = cls(counts, by_sound, options)
        lexicon.add_words(extra_words)
        return lexicon

    def add_words(self, words: Iterable[str]) -> None:
        common = max(self.options.min_word_count, 10_000)
        for word in words:
            if _HAN_RUN.fullmatch(word) and 2 <= len(word) <= self.options.max_span:
                self.counts[word] = max(self.counts.get(word, 0), common)
                sound = self.by_sound.setdefault(tuple(_tones(word)), [])
                if word not in sound:
                    sound.append(word)
        self.__dict__.pop("_pairs_in_words", None)

    @cached_property
    def _pairs_in_words(self) -> frozenset[str]:
        return frozenset(word[i : i + 2] for word in self.counts for i in range(len(word) - 1))

    def proposals(self, text: str) -> list[Proposal]:
        """Each repair the lexicon supports, on its own, best first. Overlapping ones compete; the caller
        takes at most one per stretch."""
        found: list[Proposal] = []
        for run in _HAN_RUN.finditer(text):
            found += [Proposal(run.start() + p.start, run.start() + p.end, p.replacement, p.lm_gain)
                      for p in self._run_proposals(run.group())]
        return sorted(found, key=lambda p: -p.lm_gain)

    def _run_proposals(self, run: str) -> list[Proposal]:
        base, words = self._segment(run)
        single, at = set(), 0
        for word in words:
            if len(word) == 1:
                single.add(at)
            at += len(word)
        sounds = _tones(run)
        if len(sounds) != len(run):
            return []
        found = []
        for start in range(len(run)):
            for end in range(start + 2, min(len(run), start + self.options.max_span) + 1):
                span = run[start:end]
                if not all(i in single for i in range(start, end)):
                    break
                if any(span[i : i + 2] in self._pairs_in_words for i in range(len(span) - 1)):
                    continue
                for word in self.by_sound.get(tuple(sounds[start:end]), ()):
                    changed = sum(a != b for a, b in zip(word, span))
                    if word == span or not changed:
                        continue
                    gain = self._segment(run[:start] + word + run[end:])[0] - base
                    if gain >= self.options.min_gain_per_char * changed:
                        found.append(Proposal(start, end, word, round(gain, 3)))
        return found

    def _segment(self, run: str) -> tuple[float, list[str]]:
        """The most likely split into dictionary words (unigram model) and its log-probability; a
        character the dictionary lacks counts as seen once."""
        best: list[tuple[float, int]] = [(0.0, 0)] + [(-math.inf, 0)] * len(run)
        for i in range(len(run)):
            for j in range(i + 1, min(len(run), i + self._longest) + 1):
                count = self.counts.get(run[i:j], 1 if j == i + 1 else 0)
                if count:
                    score = best[i][0] + math.log(count) - self._log_total
                    if score > best[j][0]:
                        best[j] = (score, i)
        words, j = [], len(run)
        while j > 0:
            i = best[j][1]
            words.append(run[i:j])
            j = i
        return best[-1][0], words[::-1]


def apply_proposals(text: str, accepted: Sequence[Proposal]) -> str:
    """Apply non-overlapping proposals, taking them in the given order of preference."""
    taken: list[Proposal] = []
    for proposal in accepted:
        if all(proposal.end <= t.start or proposal.start >= t.end for t in taken):
            taken.append(proposal)
    for proposal in sorted(taken, key=lambda p: -p.start):
        text = proposal.apply(text)
    return text
