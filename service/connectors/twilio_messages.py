"""Twilio Media Streams' messages to a stream's websocket server, as Twilio documents them
(https://www.twilio.com/docs/voice/media-streams/websocket-messages): JSON text frames named by `event`.

Field names are Twilio's (camelCase on the wire). Twilio writes `sequenceNumber`, `chunk` and `timestamp`
as strings of digits; they are read as numbers. Fields Twilio may add later are ignored, not refused: the
platform, not callwatch, owns this format.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

Track = Literal["inbound", "outbound"]
EVENTS = ("connected", "start", "media", "dtmf", "mark", "stop")


class _FromTwilio(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


class Connected(_FromTwilio):
    """The first message on the socket: the protocol of what follows."""

    event: Literal["connected"]
    protocol: str
    version: str


class MediaFormat(_FromTwilio):
    encoding: str  # always audio/x-mulaw, says Twilio
    sample_rate: int  # always 8000
    channels: int  # always 1


class StreamMetadata(_FromTwilio):
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: list[Track] = Field(min_length=1, max_length=2)
    custom_parameters: dict[str, str] = Field(default_factory=dict)  # the TwiML's <Parameter>s
    media_format: MediaFormat


class Start(_FromTwilio):
    """Sent once, right after `connected`: which call, which tracks, the audio format, the parameters."""

    event: Literal["start"]
    sequence_number: int
    start: StreamMetadata
    stream_sid: str


class MediaChunk(_FromTwilio):
    track: Track
    chunk: int = Field(ge=1)  # counts this track's chunks from 1
    timestamp: int = Field(ge=0)  # milliseconds since the start of the stream
    payload: str  # base64 of the raw audio, no header


class Media(_FromTwilio):
    event: Literal["media"]
    sequence_number: int
    media: MediaChunk
    stream_sid: str


class DtmfKey(_FromTwilio):
    track: str  # always inbound_track
    digit: str


class Dtmf(_FromTwilio):
    """A touch-tone key pressed on the inbound track (bidirectional streams only)."""

    event: Literal["dtmf"]
    sequence_number: int
    dtmf: DtmfKey
    stream_sid: str


class MarkName(_FromTwilio):
    name: str


class Mark(_FromTwilio):
    """The echo of a `mark` the server sent on a bidirectional stream, once the audio before it played."""

    event: Literal["mark"]
    sequence_number: int
    mark: MarkName
    stream_sid: str


class StopMetadata(_FromTwilio):
    account_sid: str
    call_sid: str


class Stop(_FromTwilio):
    """The stream stopped (`<Stop><Stream>`, the Streams API) or the call ended: the last message."""

    event: Literal["stop"]
    sequence_number: int
    stop: StopMetadata
    stream_sid: str


TwilioMessage = Annotated[Union[Connected, Start, Media, Dtmf, Mark, Stop], Field(discriminator="event")]
twilio_message_adapter: TypeAdapter[Connected | Start | Media | Dtmf | Mark | Stop] = TypeAdapter(TwilioMessage)
