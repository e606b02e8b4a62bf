"""No near-duplicates across the fixed train / test split (see data/emotion/README.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.emotion.data import load_utterances


def _bigrams(t: str) -> set[str]:
    t = re.sub(r"[\s，。！？、,.!?…：:；;“”\"]", "", t)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def test_no_wording_near_duplicates() -> None:
    train = [_bigrams(u.text) for u in load_utterances(split="train")]
    for u in load_utterances(split="test"):
        b = _bigrams(u.text)
        worst = max(len(b & t) / len(b | t) for t in train)
        assert worst < 0.5, u.text


@pytest.mark.slow
def test_no_meaning_near_duplicates(e5_dir: Path) -> None:
    from models.emotion.text import PooledEncoder

    enc = PooledEncoder.load(str(e5_dir), prefix="passage: ")
    a = enc([u.text for u in load_utterances(split="train")], batch_size=64)
    b = enc([u.text for u in load_utterances(split="test")], batch_size=64)
    assert float((b @ a.T).max()) < 0.975 + 1e-3  # batch padding moves cosines by ~1e-4
