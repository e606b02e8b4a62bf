"""The customer's mood following a call: each customer final is read (text model) and listened to (voice
arousal against this caller's own first seconds), fused onto the call's curve, and sent as an `emotion`
result. The rules observer reads those results like any other, so the complaint rules hang on them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from models.emotion import EmotionConfig, EmotionTracker, SentimentClassifier, VoiceArousal
from models.emotion.results import EmotionTurn, TextSentiment
from pipelines.call_session import CallObserver, CallSession
from wire.ingest import EmotionResult

_TURNS = {"turned_negative": "negative", "recovered": "recovered"}


class EmotionObserver(CallObserver):
    def __init__(self, classifier: SentimentClassifier, config: EmotionConfig):
        self._classifier = classifier
        self.tracker = EmotionTracker(config.tracker, config.sentiment)
        self._voice = VoiceArousal(config.voice)

    def _measure(self, text: str, audio: np.ndarray | None) -> tuple[TextSentiment, float | None]:
        sentiment = self._classifier.predict_one(text)
        arousal = self._voice.measure(audio, text)[1] if audio is not None else None
        return sentiment, arousal

    async def on_result(self, result: Any, call: CallSession) -> None:
        if getattr(result, "type", None) != "final" or result.speaker != "customer":
            return
        # Off the event loop: the text model takes ~15 ms and Praat a little more; audio of other calls
        # keeps flowing meanwhile.
        sentiment, arousal = await asyncio.to_thread(self._measure, result.text, call.utterance_audio(result.utterance_id))
        sample, turns = self.tracker.add(result.end, sentiment, arousal)
        await call.emit(EmotionResult(
            call_id=call.call_id, event_id=0, utterance_id=result.utterance_id, t=result.end,
            valence=round(sample.valence, 3), arousal=round(sample.arousal, 3), label=sample.label,
            confidence=round(sample.confidence, 3), smoothed_valence=round(sample.smoothed_valence, 3),
            turn=_turn(turns),
        ))


def _turn(turns: list[EmotionTurn]) -> str | None:
    kinds = [_TURNS[t.kind] for t in turns if t.kind in _TURNS]
    return kinds[-1] if kinds else None
