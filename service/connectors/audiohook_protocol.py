"""Genesys Cloud AudioHook, protocol version 2: every message that crosses the wire, as pydantic models.

The shapes follow Genesys's protocol reference (developer.genesys.cloud, "AudioHook protocol") and its
reference implementation (purecloudlabs/audiohook-reference-implementation). Every message carries
`version` "2", the session `id` (the `Audiohook-Session-Id` header), its `type`, `seq` (1, 2, 3 … per
sender) and `parameters`; the client's also carry `serverseq` (the last server `seq` it saw) and `position`
(the audio stream's position, an ISO 8601 duration), the server's `clientseq` (the last client `seq` it
processed).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VERSION: Literal["2"] = "2"
NULL_UUID = "00000000-0000-0000-0000-000000000000"  # the conversation id of Genesys's connection probe
CLIENT_TYPES = ("open", "close", "discarded", "error", "paused", "ping", "resumed", "update")

_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")


def duration(seconds: float) -> str:
    """Seconds as the protocol writes a position or a length: `PT12.34S`."""
    return f"PT{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "S"


def seconds_of(value: str) -> float:
    """A protocol duration (`PT1.5S`) in seconds; ValueError for anything else."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration like PT1.5S")
    return float(match.group(1))


Duration = str  # validated where it is used: a duration the client sends wrongly is a protocol error


class _Wire(BaseModel):
    # Genesys adds optional fields over time; a field this side does not know is not an error.
    model_config = ConfigDict(extra="ignore")


class ClientMessage(_Wire):
    version: Literal["2"]
    id: str
    type: str
    seq: int = Field(ge=1)
    serverseq: int = Field(ge=0)
    position: Duration = Field(pattern=_DURATION.pattern)
    parameters: dict[str, Any]


class ServerMessage(_Wire):
    version: Literal["2"] = VERSION
    id: str
    type: Literal["opened", "closed", "disconnect", "event", "pause", "pong", "resume"]
    seq: int
    clientseq: int
    parameters: dict[str, Any]


# ---------------------------------------------------------------- client → server parameters


class Media(_Wire):
    type: str
    format: str
    channels: list[str]
    rate: int


class Participant(_Wire):
    id: str | None = None
    ani: str | None = None
    aniName: str | None = None
    dnis: str | None = None


class OpenParameters(_Wire):
    organizationId: str
    conversationId: str
    participant: Participant
    media: list[Media]
    language: str | None = None
    supportedLanguages: bool = False
    customConfig: dict[str, Any] | None = None


class CloseParameters(_Wire):
    reason: Literal["end", "error", "disconnect", "reconnect"]


class DiscardedParameters(_Wire):
    start: Duration = Field(pattern=_DURATION.pattern)
    discarded: Duration = Field(pattern=_DURATION.pattern)


ResumedParameters = DiscardedParameters  # the same two fields: where the gap began and how long it was


class UpdateParameters(_Wire):
    language: str | None = None


class ErrorParameters(_Wire):
    code: int
    message: str
    retryAfter: Duration | None = Field(None, pattern=_DURATION.pattern)


# ---------------------------------------------------------------- server → client parameters


class OpenedParameters(_Wire):
    media: list[Media]
    startPaused: bool = False
    supportedLanguages: list[str] | None = None


class DisconnectParameters(_Wire):
    reason: Literal["completed", "unauthorized", "error"]
    info: str | None = None


class TranscriptInterpretation(_Wire):
    type: Literal["display"] = "display"
    transcript: str


class TranscriptAlternative(_Wire):
    confidence: float = Field(ge=0, le=1)
    languages: list[str]
    interpretations: list[TranscriptInterpretation]


class TranscriptData(_Wire):
    id: str
    channel: Literal["external", "internal"]
    isFinal: bool
    offset: Duration
    duration: Duration | None = None  # a partial's end is not known yet
    alternatives: list[TranscriptAlternative]


class TranscriptEntity(_Wire):
    type: Literal["transcript"] = "transcript"
    data: TranscriptData
