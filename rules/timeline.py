"""The call timeline: what the live pipeline stores and what a post-call audit reads.

Times are seconds from the start of the call (the first telephony event, usually the
first ring). The same models are fed one by one to the live engine.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Speaker = Literal["agent", "customer"]
EventType = Literal["ringing", "answered", "hold", "resume", "transfer", "hangup"]
HangupBy = Literal["agent", "customer", "system"]
EmotionLabel = Literal["angry", "upset", "neutral", "satisfied"]

# No call lasts a day. Every time is bounded so that replaying a timeline (the engine ticks through the
# whole call) always ends: one `1e308` once pinned a core for good.
MAX_CALL_TIME_S = 86_400.0
Seconds = Annotated[float, Field(ge=0.0, le=MAX_CALL_TIME_S, allow_inf_nan=False)]

# Keys a labelled timeline file may carry for people and benchmarks; the engine ignores them.
ANNOTATION_KEYS = frozenset({"expected", "rules_file", "notes", "title"})


class TimelineError(ValueError):
    """A timeline that cannot be audited; the message names the offending place."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallEvent(_Strict):
    type: EventType
    t: Seconds
    by: HangupBy | None = None
    ring_count: Annotated[int, Field(ge=1)] | None = None
    target: str | None = None  # transfer destination, informational only

    @model_validator(mode="after")
    def _hangup_needs_by(self) -> "CallEvent":
        if self.type == "hangup" and self.by is None:
            raise ValueError("a hangup event needs 'by' (agent, customer or system)")
        return self


class Utterance(_Strict):
    speaker: Speaker
    start: Seconds
    end: Seconds
    text: str
    partial: bool = False
    # Agent RMS level in dBFS when the pipeline measured it; speech.volume needs it.
    level_db: Annotated[float, Field(ge=-200.0, le=20.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Utterance":
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class EmotionSample(_Strict):
    t: Seconds
    valence: Annotated[float, Field(ge=-1.0, le=1.0)]
    arousal: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    label: EmotionLabel | None = None
    speaker: Speaker = "customer"


class VoiceSegment(_Strict):
    """Voice activity of one speaker. ``end`` is None while the speaker is still talking
    (the live pipeline feeds the open segment when speech starts, the closed one when it stops)."""

    speaker: Speaker
    start: Seconds
    end: Seconds | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "VoiceSegment":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class RelatedCall(_Strict):
    """Another call with the same customer, as storage knows it (for closing.redial_dropped)."""

    call_id: str | None = None
    direction: Literal["inbound", "outbound"]
    started_at: datetime
    number: str | None = None


class CallHeader(_Strict):
    call_id: str
    direction: Literal["inbound", "outbound"]
    started_at: datetime
    agent_id: str | None = None
    caller_number: str | None = None  # the customer's number: caller (inbound) or callee (outbound)


class CallTimeline(CallHeader):
    events: list[CallEvent] = Field(default_factory=list)
    utterances: list[Utterance] = Field(default_factory=list)
    emotion: list[EmotionSample] = Field(default_factory=list)
    voice_activity: list[VoiceSegment] = Field(default_factory=list)
    # None = storage did not say; [] = it looked and found no other call.
    related_calls: list[RelatedCall] | None = None

    @model_validator(mode="after")
    def _events_in_order(self) -> "CallTimeline":
        for i in range(1, len(self.events)):
            if self.events[i].t < self.events[i - 1].t:
                raise ValueError(
                    f"events out of order: events[{i}] ({self.events[i].type} at t={self.events[i].t}) "
                    f"comes before events[{i - 1}] ({self.events[i - 1].type} at t={self.events[i - 1].t})"
                )
        hangups = [i for i, e in enumerate(self.events) if e.type == "hangup"]
        if hangups and hangups[0] != len(self.events) - 1:
            raise ValueError(f"events[{hangups[0]}] is a hangup but events follow it")
        for i, u in enumerate(self.utterances):
            if u.partial:
                raise ValueError(f"utterances[{i}] is partial; a stored timeline holds final utterances only")
        return self

    def header(self) -> CallHeader:
        return CallHeader(**{k: getattr(self, k) for k in CallHeader.model_fields})


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid call timeline"]
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"]
        if e["type"] == "literal_error":
            msg = f"{msg} (got {e.get('input')!r})"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"  {_format_loc(loc)}: {msg}")
    return "\n".join(lines)


def parse_timeline(data: Any, source: str = "timeline") -> CallTimeline:
    if not isinstance(data, dict):
        raise TimelineError(f"{source}: a call timeline is a JSON object, got {type(data).__name__}")
    payload = {k: v for k, v in data.items() if k not in ANNOTATION_KEYS}
    try:
        return CallTimeline.model_validate(payload)
    except ValidationError as err:
        raise TimelineError(format_validation_error(err, source)) from None


def load_timeline(path: Path) -> CallTimeline:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TimelineError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TimelineError(f"{path}, line {err.lineno} column {err.colno}: not valid JSON: {err.msg}") from None
    return parse_timeline(data, str(path))
