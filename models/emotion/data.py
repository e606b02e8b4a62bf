"""The labelled call-centre utterances in ``data/emotion/utterances.tsv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT / "data" / "emotion" / "utterances.tsv"


@dataclass(frozen=True)
class Utterance:
    id: str
    split: str  # train / test
    domain: str
    polarity: str  # negative / neutral / positive
    angry: bool
    sub: str  # finer kind: angry, escalate, upset, waiting, resigned, confused, worried, ...
    text: str

    @property
    def label(self) -> str:
        """The four-way training label."""
        if self.polarity == "negative":
            return "angry" if self.angry else "upset"
        return "neutral" if self.polarity == "neutral" else "satisfied"


def load_utterances(path: Path | str = DEFAULT_DATA, split: str | None = None) -> list[Utterance]:
    rows: list[Utterance] = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            u = Utterance(
                id=r["id"],
                split=r["split"],
                domain=r["domain"],
                polarity=r["polarity"],
                angry=r["angry"] == "1",
                sub=r["sub"],
                text=r["text"],
            )
            if split is None or u.split == split:
                rows.append(u)
    return rows
