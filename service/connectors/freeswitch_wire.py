"""What crosses the FreeSWITCH connector's websocket (mod_audio_fork, mod_audio_stream, Jambonz `listen`), as
pydantic models, and how it maps onto protocol v1. docs/connectors.md ("FreeSWITCH and Jambonz") is the prose
version with an example of each message; keep them in step.

The modules send one text frame first, the metadata, then binary L16 frames. mod_audio_fork and
mod_audio_stream send the metadata the `uuid_audio_* start` line gave them, word for word, so its fields are
ours to name (`uuid`, `agent_id`, ...); Jambonz builds it from the call (`callSid`, `from`, `to`,
`direction`, `mixType`, `sampleRate`) and merges the verb's own `metadata` object into it at the top level.
One model reads both. The modules never tell the server the mix type or the rate on their own: a
mod_audio_fork line must repeat them in the metadata or the URL's query.

Where the audio goes: a media bug's *read* stream is the voice of the party on the channel the bug is attached
to (the module's "caller"), its *write* stream what that party hears (the "callee"); in `stereo` the read
stream is the left channel, and `mono` carries the read stream alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from wire.ingest import AudioFormat, CallEventMessage, StartMessage

MixType = Literal["mono", "mixed", "stereo"]
Role = Literal["agent", "customer"]
# L16 rates the modules make (multiples of 8 kHz) that protocol v1 takes (up to 48 kHz).
SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000)
MAX_NUMBER = StartMessage.model_fields["caller_number"].metadata[0].max_length


def sample_rate_of(value: Any) -> int:
    """A rate as the command lines write it ("8k", "16k") or as a number (8000, "16000")."""
    text = str(value).strip().lower()
    try:
        rate = int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)
    except ValueError:
        raise ValueError(f"sample rate {value!r} is not a number of Hz nor '8k'/'16k'") from None
    if rate not in SAMPLE_RATES:
        raise ValueError(f"sample rate {rate} Hz is not taken; use one of {', '.join(map(str, SAMPLE_RATES))}")
    return rate


class ForkMetadata(BaseModel):
    """The first text frame. Fields this connector does not read (Jambonz sends many) are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    uuid: str | None = Field(None, description="mod_audio_fork / mod_audio_stream: the channel UUID, ${uuid}")
    call_sid: str | None = Field(None, validation_alias=AliasChoices("callSid", "call_sid"),
                                 description="Jambonz: the call's callSid")
    agent_id: str | None = None
    caller_number: str | None = None
    from_number: str | None = Field(None, validation_alias="from", description="Jambonz: the calling number")
    to_number: str | None = Field(None, validation_alias="to", description="Jambonz: the called number")
    direction: Literal["inbound", "outbound"] = "inbound"
    started_at: datetime | None = None
    mix_type: MixType | None = Field(None, validation_alias=AliasChoices("mix_type", "mixType"))
    sample_rate: int | None = Field(None, validation_alias=AliasChoices("sample_rate", "sampleRate"))
    caller_is: Role | None = Field(None, description="whose voice the module's read stream ('caller') carries")

    @field_validator("sample_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> int | None:
        return None if value is None else sample_rate_of(value)

    @field_validator("uuid", "call_sid", "agent_id", "caller_number", "from_number", "to_number", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # FreeSWITCH expands an unset channel variable to an empty string: that is "not given".
        if isinstance(value, str) and not value.strip():
            return None
        return str(value) if isinstance(value, (int, float)) else value

    @property
    def call_id(self) -> str | None:
        return self.uuid or self.call_sid

    def number(self) -> str | None:
        """The customer's number: as given, else Jambonz's `from` (inbound) or `to` (outbound). One longer than
        v1 takes (a SIP URI, say) is left out rather than refusing the call: the module cannot send it again."""
        number = self.caller_number or (self.to_number if self.direction == "outbound" else self.from_number)
        return number if number is None or len(number) <= MAX_NUMBER else None


class StreamChoice(BaseModel):
    """The URL query's say over the audio, for a line whose metadata does not carry it."""

    model_config = ConfigDict(extra="ignore")

    mix_type: MixType | None = None
    sample_rate: int | None = None
    caller_is: Role | None = None

    @field_validator("sample_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> int | None:
        return None if value in (None, "") else sample_rate_of(value)


def audio_layout(mix_type: MixType, rate: int, caller_is: Role) -> tuple[AudioFormat, int | None]:
    """The v1 format of a module's stream, and the leg byte to put before each frame (`mono`: one known leg
    as v1 `two_legs`; `mixed`: both voices on one channel, v1 `mono`, speakers unknown)."""
    callee: Role = "agent" if caller_is == "customer" else "customer"
    if mix_type == "stereo":
        return AudioFormat(encoding="pcm_s16le", sample_rate=rate, layout="stereo",
                           channel_map=(caller_is, callee)), None
    if mix_type == "mixed":
        return AudioFormat(encoding="pcm_s16le", sample_rate=rate, layout="mono"), None
    return AudioFormat(encoding="pcm_s16le", sample_rate=rate, layout="two_legs"), 0 if caller_is == "agent" else 1


def start_message(metadata: ForkMetadata, audio: AudioFormat) -> StartMessage:
    """The v1 start; raises pydantic's ValidationError for values v1 does not take (an id with spaces, ...)."""
    return StartMessage(type="start", call_id=metadata.call_id or "", agent_id=metadata.agent_id or "",
                        direction=metadata.direction, caller_number=metadata.number(),
                        started_at=metadata.started_at, audio=audio)


class CallEventText(BaseModel):
    """A later text frame carrying a call event (`uuid_audio_fork <uuid> send_text` or the `stop` line's final
    text): `{"event": "hold"}`, `{"event": "hangup", "by": "customer"}`."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["ringing", "answered", "hold", "resume", "transfer", "hangup"]
    t: float | None = None
    by: Literal["agent", "customer", "system"] | None = None
    target: str | None = None

    def v1(self) -> CallEventMessage:
        return CallEventMessage(type="event", **self.model_dump())


# Later text frames the platform sends on its own that carry nothing for the call: Jambonz's DTMF (`passDtmf`).
PLATFORM_CHATTER = frozenset({"dtmf"})


class ServerText(BaseModel):
    """A text frame callwatch sends back. mod_audio_fork turns only frames of the types it knows into events
    (`transcription` → `mod_audio_fork::transcription` with `data` as the body; `json` →
    `mod_audio_fork::json` with the whole frame as the body; `error` → `mod_audio_fork::error`);
    mod_audio_stream fires `mod_audio_stream::json` with any frame as the body."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["transcription", "json", "error"]
    data: dict[str, Any]


def server_text(result: dict[str, Any]) -> ServerText:
    """A v1 result, as it is, in the envelope the modules understand. Transcripts go as `transcription`; a fatal
    error as `error`; everything else (prompts, emotions, events, a non-fatal error, `ended`, the report) as
    `json`. A non-fatal error must not go as `error`: Jambonz ends its `listen` on `mod_audio_fork::error`."""
    kind = result.get("type")
    if kind in ("final", "partial"):
        return ServerText(type="transcription", data=result)
    if kind == "error" and result.get("fatal"):
        return ServerText(type="error", data=result)
    return ServerText(type="json", data=result)
