"""Per-call fusion of text sentiment and voice arousal, the smoothed emotion curve, and
the moments the customer turns negative / angry and recovers."""

from __future__ import annotations

import math

from .config import POLARITY, SentimentConfig, TrackerConfig
from .results import EmotionSample, EmotionTurn, TextSentiment


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class EmotionTracker:
    """One per call. Feed customer utterances in time order with :meth:`add`."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        sentiment_config: SentimentConfig | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._arousal_prior = (sentiment_config or SentimentConfig()).arousal_prior
        self.samples: list[EmotionSample] = []
        self.events: list[EmotionTurn] = []
        self._sv: float | None = None  # smoothed valence
        self._sa: float | None = None  # smoothed arousal
        self._t: float | None = None
        self._negative = False
        self._angry_reported = False
        self._lowest = 0.0

    # ------------------------------------------------------------------ fusion
    def fuse(self, text: TextSentiment, voice_arousal: float | None) -> tuple[float, float, str, float]:
        """(valence, arousal, label, confidence) of one utterance."""
        cfg = self.config
        prior = sum(self._arousal_prior.get(k, 0.3) * p for k, p in text.probs.items()) if text.probs else 0.3
        if text.confidence <= 0.0:
            prior = self._arousal_prior.get("neutral", 0.3)
        if voice_arousal is None:
            arousal = prior
        else:
            arousal = cfg.voice_weight * voice_arousal + (1.0 - cfg.voice_weight) * prior
        arousal = _clip(arousal, 0.0, 1.0)
        label = text.label
        if (
            voice_arousal is not None
            and POLARITY.get(label) == "negative"
            and label != "angry"
            and arousal >= cfg.angry_arousal
        ):
            label = "angry"
        return _clip(text.valence, -1.0, 1.0), arousal, label, _clip(text.confidence, 0.0, 1.0)

    # ---------------------------------------------------------------- timeline
    def add(
        self, t: float, text_sentiment: TextSentiment, voice: float | None = None
    ) -> tuple[EmotionSample, list[EmotionTurn]]:
        """Add one customer utterance at time ``t`` (seconds) with its text sentiment and
        voice arousal (0..1, or None without audio). Returns the sample and any events."""
        cfg = self.config
        valence, arousal, label, conf = self.fuse(text_sentiment, voice)
        neutral_arousal = self._arousal_prior.get("neutral", 0.3)
        prev_v = 0.0 if self._sv is None else self._sv  # the curve starts at neutral
        prev_a = neutral_arousal if self._sa is None else self._sa
        # the first utterance counts as arriving one time constant after the start
        dt = cfg.smoothing_tau_s if self._t is None else max(0.0, float(t) - self._t)
        alpha = max(cfg.min_alpha, 1.0 - math.exp(-dt / max(cfg.smoothing_tau_s, 1e-6)))
        a = alpha * conf  # unsure utterances move the curve less
        sv = prev_v + a * (valence - prev_v)
        sa = prev_a + a * (arousal - prev_a)
        self._sv, self._sa, self._t = sv, sa, float(t)
        index = len(self.samples)
        events: list[EmotionTurn] = []
        self._lowest = min(self._lowest, sv)

        instant = label == "angry" and conf >= cfg.instant_turn_confidence
        if not self._negative and (sv <= cfg.turn_negative_below or instant):
            self._negative = True
            events.append(EmotionTurn("turned_negative", float(t), sv, label, index, self._lowest))
        if self._negative and label == "angry" and not self._angry_reported and conf >= 0.5:
            self._angry_reported = True
            events.append(EmotionTurn("turned_angry", float(t), sv, label, index, self._lowest))
        if (
            self._negative
            and not instant
            and POLARITY.get(label) != "negative"
            and sv >= cfg.recovered_above
        ):
            self._negative = False
            self._angry_reported = False
            events.append(EmotionTurn("recovered", float(t), sv, label, index, self._lowest))

        sample = EmotionSample(
            t=float(t),
            valence=valence,
            arousal=arousal,
            label=label,
            confidence=conf,
            smoothed_valence=_clip(sv, -1.0, 1.0),
            smoothed_arousal=_clip(sa, 0.0, 1.0),
            negative=self._negative,
            voice_arousal=voice,
            text_label=text_sentiment.label,
        )
        self.samples.append(sample)
        self.events.extend(events)
        return sample, events

    # ----------------------------------------------------------------- summary
    @property
    def negative(self) -> bool:
        return self._negative

    def curve(self) -> list[tuple[float, float, float]]:
        """(t, smoothed valence, smoothed arousal) per utterance."""
        return [(s.t, s.smoothed_valence, s.smoothed_arousal) for s in self.samples]

    def summary(self) -> dict[str, float | bool | int | None]:
        """For QA (``complaint.recovered``): worst point vs the end of the call."""
        if not self.samples:
            return {"utterances": 0, "lowest_valence": None, "final_valence": None,
                    "recovery": None, "turned_negative": False, "recovered": False}
        lowest = min(s.smoothed_valence for s in self.samples)
        final = self.samples[-1].smoothed_valence
        return {
            "utterances": len(self.samples),
            "lowest_valence": round(lowest, 4),
            "final_valence": round(final, 4),
            "recovery": round(final - lowest, 4),
            "turned_negative": any(e.kind == "turned_negative" for e in self.events),
            "recovered": any(e.kind == "recovered" for e in self.events) and not self._negative,
        }
