"""Pydantic forms of the emotion results, for the socket, the store and the CLI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .results import EmotionSample, EmotionTurn, TextSentiment

Label = Literal["angry", "upset", "neutral", "satisfied"]


class TextSentimentOut(BaseModel):
    label: Label
    valence: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    polarity: Literal["negative", "neutral", "positive"]

    @classmethod
    def of(cls, s: TextSentiment) -> "TextSentimentOut":
        return cls(
            label=s.label,
            valence=round(s.valence, 4),
            confidence=round(s.confidence, 4),
            polarity=s.polarity,
        )


class EmotionOut(BaseModel):
    """The ``emotion`` object of one customer utterance."""

    t: float
    valence: float = Field(ge=-1.0, le=1.0)
    arousal: float = Field(ge=0.0, le=1.0)
    label: Label
    confidence: float = Field(ge=0.0, le=1.0)
    smoothed_valence: float = Field(ge=-1.0, le=1.0)
    smoothed_arousal: float = Field(ge=0.0, le=1.0)
    negative: bool
    voice_arousal: float | None = None

    @classmethod
    def of(cls, s: EmotionSample) -> "EmotionOut":
        r = lambda x: round(float(x), 4)  # noqa: E731
        return cls(
            t=s.t,
            valence=r(s.valence),
            arousal=r(s.arousal),
            label=s.label,
            confidence=r(s.confidence),
            smoothed_valence=r(s.smoothed_valence),
            smoothed_arousal=r(s.smoothed_arousal),
            negative=s.negative,
            voice_arousal=None if s.voice_arousal is None else r(s.voice_arousal),
        )


class EmotionTurnOut(BaseModel):
    kind: Literal["turned_negative", "turned_angry", "recovered"]
    t: float
    valence: float
    label: Label
    index: int
    lowest_valence: float

    @classmethod
    def of(cls, e: EmotionTurn) -> "EmotionTurnOut":
        return cls(
            kind=e.kind,
            t=e.t,
            valence=round(e.valence, 4),
            label=e.label,
            index=e.index,
            lowest_valence=round(e.lowest_valence, 4),
        )
