"""Chinese text as ASR gives it: normalisation, phrase matching, fuzzy company names.

Everything matches on normalised text: simplified characters, full-width folded to
half-width, lower case, punctuation and spaces removed. ASR punctuation is unreliable,
so no rule may depend on it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import opencc
from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

REGEX_PREFIX = "re:"
_DROP = re.compile(r"[^\w]|_", re.UNICODE)
# Stands in for a masked (excluded) phrase so that an include phrase cannot match across it.
_MASK = "\u0000"


class TextNormalizer:
    """Traditional→simplified, NFKC, lower case, no punctuation or spaces."""

    def __init__(self) -> None:
        self._t2s = opencc.OpenCC("t2s")
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        folded = unicodedata.normalize("NFKC", text)
        out = _DROP.sub("", self._t2s.convert(folded)).lower()
        if len(self._cache) < 50_000:
            self._cache[text] = out
        return out


def _compile_phrase(phrase: str, normalize: TextNormalizer) -> str:
    if phrase.startswith(REGEX_PREFIX):
        return f"(?:{phrase[len(REGEX_PREFIX):]})"
    return re.escape(normalize(phrase))


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    start: int
    end: int


@dataclass
class PhraseMatcher:
    """Finds any of a list of phrases in normalised text, ignoring excluded phrases.

    Plain phrases are normalised like the text; a phrase starting with ``re:`` is a
    regular expression over normalised text. ``exclude`` phrases are masked out before
    matching, which is how negations are handled (不能保证 must not match 保证).
    """

    phrases: Sequence[str]
    normalize: TextNormalizer
    exclude: Sequence[str] = ()
    _include_re: re.Pattern[str] | None = field(init=False, default=None)
    _exclude_re: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        inc = [_compile_phrase(p, self.normalize) for p in self.phrases if p.strip()]
        exc = [_compile_phrase(p, self.normalize) for p in self.exclude if p.strip()]
        # Longest first so the reported phrase is the most specific one.
        inc.sort(key=len, reverse=True)
        exc.sort(key=len, reverse=True)
        self._include_re = re.compile("|".join(inc)) if inc else None
        self._exclude_re = re.compile("|".join(exc)) if exc else None

    def _masked(self, norm: str) -> str:
        if self._exclude_re is None:
            return norm
        return self._exclude_re.sub(lambda m: _MASK * len(m.group(0)), norm)

    def search(self, norm: str) -> PhraseMatch | None:
        if self._include_re is None:
            return None
        m = self._include_re.search(self._masked(norm))
        if m is None:
            return None
        return PhraseMatch(norm[m.start() : m.end()], m.start(), m.end())

    def find_all(self, norm: str) -> list[PhraseMatch]:
        if self._include_re is None:
            return []
        return [PhraseMatch(norm[m.start() : m.end()], m.start(), m.end()) for m in self._include_re.finditer(self._masked(norm))]

    def __contains__(self, norm: str) -> bool:
        return self.search(norm) is not None


def is_backchannel(norm: str, tokens: Iterable[str], max_chars: int) -> bool:
    """True when normalised text is only backchannel tokens (嗯/好的/是的/对 …), repeated or combined."""
    if not norm:
        return True  # noise, a cough: nothing said
    if len(norm) > max_chars:
        return False
    rest = norm
    ordered = sorted(tokens, key=len, reverse=True)
    while rest:
        for tok in ordered:
            if tok and rest.startswith(tok):
                rest = rest[len(tok) :]
                break
        else:
            return False
    return True


@lru_cache(maxsize=8192)
def _pinyin(text: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(text, style=Style.NORMAL, errors=lambda chars: list(chars)))  # type: ignore[arg-type,return-value]  # pypinyin takes a list: one item per character


def loose_syllable(syllable: str) -> str:
    """A toneless syllable with the distinctions ASR and accents blur merged (zh/z, -ng/-n, l/n)."""
    s = syllable
    for retroflex, flat in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if s.startswith(retroflex):
            s = flat + s[2:]
            break
    if s.startswith("l"):
        s = "n" + s[1:]
    if s.endswith("ng") and len(s) > 2:
        s = s[:-1]
    return s


@dataclass
class CompanyNameMatcher:
    """Matches a company name in ASR text by sound and by spelling.

    ASR writes what it hears, so a name is often right in sound and wrong in characters
    (顺风快递 for 顺丰快递). A stretch of text matches when every syllable sounds like the
    name's (zh/z, -ng/-n and l/n merged), or when its characters are close enough to the
    name's (one wrong character in five). Sound must match syllable by syllable: a fuzzy
    score over the whole name would let 中国银行 pass for 中国移动.
    """

    names: Sequence[str]
    normalize: TextNormalizer
    char_threshold: float = 80.0
    _targets: list[tuple[str, tuple[str, ...]]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        for name in self.names:
            norm = self.normalize(name)
            if norm:
                self._targets.append((norm, tuple(loose_syllable(p) for p in _pinyin(norm))))

    def search(self, norm: str) -> str | None:
        """The stretch of text taken for the company name, or None."""
        for name_norm, _ in self._targets:
            if name_norm in norm:
                return name_norm
        syllables = tuple(loose_syllable(p) for p in _pinyin(norm))
        aligned = len(syllables) == len(norm)  # else non-Chinese runs were merged into one item
        for name_norm, name_sound in self._targets:
            n = len(name_norm)
            for i in range(len(norm) - n + 1):
                if aligned and len(name_sound) == n and syllables[i : i + n] == name_sound:
                    return norm[i : i + n]
                if n >= 5 and fuzz.ratio(norm[i : i + n], name_norm) >= self.char_threshold:
                    return norm[i : i + n]
        return None

