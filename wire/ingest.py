"""The ingest websocket protocol, version 1: every message that crosses the wire, as pydantic models.

docs/protocol.md is the prose version of this file with an example of each message; keep them in step.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from rules.timeline import MAX_CALL_TIME_S
from wire.base import WireModel

PROTOCOL_VERSION = 1
Speaker = Literal["agent", "customer", "unknown"]


class CloseCode(IntEnum):
    """Websocket close codes the ingest endpoint uses (4000–4999 are the application's own)."""

    NORMAL = 1000
    UNAUTHORIZED = 1008  # no or wrong API key: closing before accept refuses the handshake with HTTP 403
    UNREADABLE_FRAME = 4400  # a frame that is not JSON at all, not a JSON object, or nested too deep to read
    NO_VALID_START = 4401  # no valid start after several tries, or none within the start timeout
    CLIENT_IDLE = 4408  # the client sent nothing at all for the idle timeout; the call was ended as `dropped`
    DUPLICATE_CALL = 4409  # a call with this id is live or already stored
    CALL_TOO_LONG = 4413  # the call passed the configured maximum length
    TOO_FAST = 4429  # the audio stayed more than the allowed lead ahead of real time; the call was ended as `dropped`
    SERVER_FULL = 4503  # the instance cannot take a new call now (live-call limit, recogniser queue, shutting down)
    SERVICE_RESTART = 1012  # the instance is shutting down; the call was ended as `interrupted`, reconnect elsewhere


# ---------------------------------------------------------------- client → server


class AudioFormat(WireModel):
    """How the audio bytes are laid out.

    `layout`:
      - `stereo`: one stream, two interleaved channels; `channel_map` says whose voice is on each
        (recorders store agent left, customer right).
      - `two_legs`: one mono stream per speaker; a binary frame's first byte says whose (0 agent, 1 customer).
      - `mono`: one mono stream with both voices; speakers cannot be told apart and are marked `unknown`.
    """

    encoding: Literal["pcm_s16le", "mulaw", "alaw"]
    sample_rate: int = Field(ge=8000, le=48000)
    layout: Literal["stereo", "two_legs", "mono"] = "stereo"
    channel_map: tuple[Speaker, Speaker] = ("agent", "customer")

    @property
    def channels(self) -> int:
        return 2 if self.layout == "stereo" else 1

    @property
    def bytes_per_second(self) -> int:
        """Bytes of one second of the call, every leg together (two_legs: both legs, without frame headers)."""
        sample_bytes = 2 if self.encoding == "pcm_s16le" else 1
        return self.sample_rate * sample_bytes * (1 if self.layout == "mono" else 2)

    @model_validator(mode="after")
    def _distinct_channels(self) -> "AudioFormat":
        if self.layout == "stereo" and set(self.channel_map) != {"agent", "customer"}:
            raise ValueError("channel_map must name 'agent' and 'customer' once each")
        return self

    def leg_speakers(self) -> list[Speaker]:
        """Speakers in the order of leg numbers (binary frame header byte)."""
        if self.layout == "mono":
            return ["unknown"]
        if self.layout == "two_legs":
            return ["agent", "customer"]
        return list(self.channel_map)


class StartMessage(WireModel):
    type: Literal["start"]
    protocol: Literal[1] = 1
    call_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    direction: Literal["inbound", "outbound"] = "inbound"
    agent_id: str = Field(min_length=1, max_length=128)
    caller_number: str | None = Field(None, max_length=32)
    started_at: datetime | None = Field(None, description="local start time of the call, ISO 8601")
    audio: AudioFormat


class CallEventMessage(WireModel):
    type: Literal["event"]
    event: Literal["ringing", "answered", "hold", "resume", "transfer", "hangup"]
    t: float | None = Field(None, ge=0, le=MAX_CALL_TIME_S, allow_inf_nan=False,
                            description="seconds since the start of the call's audio; default now")
    by: Literal["agent", "customer", "system"] | None = None
    target: str | None = Field(None, max_length=128, description="transfer target")

    @model_validator(mode="after")
    def _hangup_says_who(self) -> "CallEventMessage":
        if self.event == "hangup" and self.by is None:
            raise ValueError("a hangup event must say 'by': agent, customer or system")
        if self.event != "hangup" and self.by is not None:
            raise ValueError("'by' belongs to hangup events only")
        return self


ClientMessage = Annotated[Union[StartMessage, CallEventMessage], Field(discriminator="type")]
client_message_adapter: TypeAdapter[StartMessage | CallEventMessage] = TypeAdapter(ClientMessage)


# ---------------------------------------------------------------- server → client


class _Result(WireModel):
    call_id: str
    event_id: int = Field(description="increases by one with every message of the call, from 1")


class StartedResult(_Result):
    type: Literal["started"] = "started"
    protocol: int = PROTOCOL_VERSION
    legs: list[Speaker]


class PartialResult(_Result):
    type: Literal["partial"] = "partial"
    utterance_id: str
    speaker: Speaker
    start: float
    text: str


class FinalResult(_Result):
    type: Literal["final"] = "final"
    utterance_id: str
    speaker: Speaker
    start: float
    end: float
    text: str
    speaker_uncertain: bool = False
    level_db: float | None = Field(None, description="speech level of the utterance, dBFS (RMS over its speech)")


class EventResult(_Result):
    type: Literal["event"] = "event"
    event: str
    t: float
    by: str | None = None
    target: str | None = None


class ErrorResult(_Result):
    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = False


class EndedResult(_Result):
    type: Literal["ended"] = "ended"
    status: Literal["completed", "dropped", "interrupted"]
    duration: float
    utterances: int


class EmotionResult(_Result):
    """The customer's mood after one of their utterances."""

    type: Literal["emotion"] = "emotion"
    utterance_id: str
    t: float
    valence: float = Field(ge=-1, le=1, description="negative … positive")
    arousal: float = Field(ge=0, le=1, description="calm … agitated")
    label: Literal["angry", "upset", "neutral", "satisfied"]
    confidence: float = Field(ge=0, le=1)
    smoothed_valence: float = Field(ge=-1, le=1, description="the curve: valence smoothed over the call")
    turn: Literal["negative", "recovered"] | None = Field(None, description="the customer turned at this utterance")


class RecoveryStep(WireModel):
    step: Literal["感受", "道歉", "解决", "调查", "加分", "预防"]
    suggestion: str


class PromptResult(_Result):
    """An etiquette prompt for the agent, raised while the call is going."""

    type: Literal["prompt"] = "prompt"
    prompt_id: str
    rule_id: str
    severity: Literal["info", "warn", "breach"]
    t: float
    evidence: str
    text: str
    recovery: RecoveryStep | None = None


class PromptClearedResult(_Result):
    """A prompt whose condition stopped holding (the silence ended, the agent apologised …): it leaves the screen.
    Its finding stays in the report."""

    type: Literal["prompt_cleared"] = "prompt_cleared"
    prompt_id: str


class FindingOut(WireModel):
    rule_id: str
    severity: str
    t: float | None
    evidence: str
    prompt: str


class ReportResult(_Result):
    """The post-call judgement: score and findings, sent after `ended`."""

    type: Literal["report"] = "report"
    # Which text the findings used: "live" here, the finals as sent. The stored report is judged again
    # on the second pass's text once it has run, and then says "second_pass".
    transcript: Literal["live", "second_pass"] = "live"
    score: float
    findings: list[FindingOut]

