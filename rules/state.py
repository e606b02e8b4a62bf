"""What the engine knows about one call so far. Rules read it; only the engine writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.findings import Evidence
from rules.timeline import CallEvent, CallHeader, EmotionSample, RelatedCall


@dataclass(frozen=True)
class UtteranceRecord:
    index: int
    speaker: str
    start: float
    end: float
    text: str
    norm: str
    level_db: float | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def evidence(self) -> Evidence:
        return Evidence(kind="utterance", t=self.start, end=self.end, speaker=self.speaker, text=self.text)


def event_evidence(e: CallEvent) -> Evidence:
    text = e.type if e.by is None else f"{e.type} by {e.by}"
    if e.ring_count is not None:
        text += f" (ring {e.ring_count})"
    return Evidence(kind="event", t=e.t, event=e.type, text=text)


def span_evidence(start: float, end: float, text: str) -> Evidence:
    return Evidence(kind="span", t=round(start, 2), end=round(end, 2), text=text)


@dataclass(frozen=True)
class NegativeOnset:
    """The customer turned negative: when, why, and when the agent has the floor to answer."""

    t: float
    floor_at: float
    evidence: Evidence
    source: str  # "emotion" or "text"


@dataclass
class RecoveryTracker:
    """Which of the six recovery steps the agent has taken since the customer turned negative."""

    step_names: list[str]
    done: set[str] = field(default_factory=set)

    def next_step(self) -> str | None:
        for name in self.step_names:
            if name not in self.done:
                return name
        return None


@dataclass
class CallState:
    header: CallHeader
    recovery: RecoveryTracker
    now: float = 0.0
    events: list[CallEvent] = field(default_factory=list)
    ringing: list[CallEvent] = field(default_factory=list)
    answered_at: float | None = None
    hangup: CallEvent | None = None
    hold_since: float | None = None
    holds: list[tuple[float, float]] = field(default_factory=list)
    last_transfer_at: float | None = None
    utterances: list[UtteranceRecord] = field(default_factory=list)
    agent: list[UtteranceRecord] = field(default_factory=list)
    customer: list[UtteranceRecord] = field(default_factory=list)
    emotion: list[EmotionSample] = field(default_factory=list)
    speaking_since: dict[str, float | None] = field(default_factory=lambda: {"agent": None, "customer": None})
    last_speech_end: dict[str, float | None] = field(default_factory=lambda: {"agent": None, "customer": None})
    negative_onsets: list[NegativeOnset] = field(default_factory=list)
    last_negative_t: float | None = None
    # Other calls with this customer, when storage supplies them (None: unknown).
    related_calls: list[RelatedCall] | None = None
    # Per-rule working memory, created by each rule; the engine only stores it.
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def on_hold(self) -> bool:
        return self.hold_since is not None

    @property
    def ended(self) -> bool:
        return self.hangup is not None

    def is_speaking(self, speaker: str) -> bool:
        return self.speaking_since[speaker] is not None

    def anyone_speaking(self) -> bool:
        return self.speaking_since["agent"] is not None or self.speaking_since["customer"] is not None

