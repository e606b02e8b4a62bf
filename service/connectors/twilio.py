"""Twilio Media Streams at /v1/connectors/twilio (docs/connectors.md#twilio-media-streams).

A call that runs `<Start><Stream>` or `<Connect><Stream>` makes Twilio open a websocket here and send JSON
text frames (service/connectors/twilio_messages.py): `connected`, `start`, `media` per track, `dtmf`,
`mark`, `stop`. Twilio can add no header of ours and the stream URL takes no query string, so the
integrator's key comes as a `<Parameter>` inside `start`: the socket is accepted, `connected` and `start`
are read, and only then is the call admitted or refused. Twilio has no error message, so a refusal is a
close code and reason, which Twilio's debugger shows. The `X-Twilio-Signature` of the handshake is checked
when the account's auth token is configured.

Results go nowhere on this socket: a `<Start><Stream>` takes no messages from the server, and a
`<Connect><Stream>` only audio to play into the call. The agent's screen and the store get them as for
any call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from service.access.guard import INGEST_ROLES, KeysDep, Refusal
from service.app_state import IngestConnectionsDep, RuntimeDep
from service.call_link import Gone, Incoming, ProtocolFault, WebSocketLink
from service.connectors.track_timeline import TrackTimeline
from service.connectors.twilio_messages import EVENTS, Connected, Media, Start, Stop, twilio_message_adapter
from service.ingest import serve_call
from service.runtime import Runtime
from service.settings import Settings
from wire.errors import describe_invalid
from wire.ingest import AudioFormat, CallEventMessage, CloseCode, StartMessage

log = logging.getLogger("callwatch.connectors.twilio")
router = APIRouter()

PATH = "/v1/connectors/twilio"
CONNECTOR = "twilio"
# The TwiML's <Parameter> names callwatch reads from `start.customParameters`.
KEY_PARAMETER = "callwatch_key"
AGENT_PARAMETER = "agent_id"
CALLER_PARAMETER = "from"
DIRECTION_PARAMETER = "direction"
# What Twilio streams, and all callwatch takes from it.
MULAW_8K = ("audio/x-mulaw", 8000, 1)
RATE = 8000
SAMPLES_PER_MS = RATE // 1000
# Twilio's stamps may wobble by a few milliseconds; a gap shorter than this is not filled.
TIMESTAMP_TOLERANCE_MS = 10
MULAW_SILENCE = b"\xff"
SILENCE_FRAME_SAMPLES = RATE  # a gap is delivered a second at a time, not as one frame of any size
LEG_NUMBER = {"agent": 0, "customer": 1}  # protocol v1, two_legs: a frame's first byte


# ---------------------------------------------------------------- the handshake's signature


def twilio_signature(auth_token: str, url: str) -> str:
    """Twilio's request signature: base64 of HMAC-SHA1 over the URL (a websocket handshake has no POST
    parameters to append), keyed with the account's auth token."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url(websocket: WebSocket, settings: Settings) -> str:
    """The URL Twilio signed: the one the TwiML names. Twilio only dials wss://, so behind a TLS proxy the
    request's own scheme (ws) is not what was signed."""
    if settings.twilio_stream_url:
        return settings.twilio_stream_url
    url = websocket.url
    host = websocket.headers.get("host", url.netloc)
    return f"wss://{host}{url.path}" + (f"?{url.query}" if url.query else "")


def signed_by_twilio(websocket: WebSocket, settings: Settings) -> bool:
    given = websocket.headers.get("x-twilio-signature", "")
    expected = twilio_signature(settings.twilio_auth_token, signed_url(websocket, settings))
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


# ---------------------------------------------------------------- before the call: connected, start


@dataclass(frozen=True)
class Refused:
    """Why a stream is closed before its call starts: a close code and a reason `code: explanation` (a
    websocket close reason holds 123 bytes: the log has it whole)."""

    close: CloseCode
    code: str
    explanation: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.explanation}"


def _json_object(frame: str | bytes) -> dict[str, Any] | None:
    if isinstance(frame, bytes):
        return None
    try:
        data = json.loads(frame)
    except (json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


async def read_start(link: WebSocketLink, timeout_s: float) -> Start | Refused | Gone:
    """Twilio's `connected`, then its `start`, within `timeout_s` of the socket opening."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                frame = await link.receive_frame()
                if isinstance(frame, Gone):
                    return frame
                data = _json_object(frame)
                if data is None:
                    return Refused(CloseCode.UNREADABLE_FRAME, "malformed_json",
                                   "a frame that is not a JSON object; Twilio sends JSON text frames")
                event = data.get("event")
                if event not in ("connected", "start"):
                    return Refused(CloseCode.NO_VALID_START, "not_started",
                                   f"{event!r} before start; Twilio sends connected, then start")
                try:
                    message = twilio_message_adapter.validate_python(data)
                except ValidationError as exc:
                    return Refused(CloseCode.NO_VALID_START, "invalid_start", f"{event}: {describe_invalid(exc)}")
                if isinstance(message, Start):
                    return message
    except TimeoutError:
        return Refused(CloseCode.NO_VALID_START, "start_timeout",
                       f"no start within {timeout_s:g} s of opening the socket")


@dataclass(frozen=True)
class CallPlan:
    """A stream's call in protocol v1 terms: its `start`, and each Twilio track's leg prefix (the v1 leg
    byte of the `two_legs` layout, also when one track is streamed)."""

    start: StartMessage
    legs: dict[str, bytes]


def plan_call(start: Start, inbound_speaker: str) -> CallPlan | Refused:
    meta = start.start
    fmt = meta.media_format
    if (fmt.encoding, fmt.sample_rate, fmt.channels) != MULAW_8K:
        return Refused(CloseCode.NO_VALID_START, "unsupported_media_format",
                       f"{fmt.encoding} at {fmt.sample_rate} Hz, {fmt.channels} channel(s); Twilio streams "
                       f"audio/x-mulaw at 8000 Hz, 1 channel")
    # One track streamed is still one known party's voice: a two-leg call whose other leg stays silent (v1
    # `mono` would mean both voices mixed, and the rules could not tell the agent's words from the caller's).
    speaker = {"inbound": inbound_speaker, "outbound": "agent" if inbound_speaker == "customer" else "customer"}
    legs: dict[str, bytes] = {track: bytes([LEG_NUMBER[speaker[track]]]) for track in set(meta.tracks)}
    layout = "two_legs"
    params = meta.custom_parameters
    try:
        message = StartMessage(
            type="start", call_id=meta.call_sid, agent_id=params.get(AGENT_PARAMETER, ""),
            caller_number=params.get(CALLER_PARAMETER) or None,
            direction=params.get(DIRECTION_PARAMETER, "inbound"),
            audio=AudioFormat(encoding="mulaw", sample_rate=RATE, layout=layout),
        )
    except ValidationError as exc:
        names = {"call_id": "start.callSid", "agent_id": f"customParameters.{AGENT_PARAMETER}",
                 "caller_number": f"customParameters.{CALLER_PARAMETER}",
                 "direction": f"customParameters.{DIRECTION_PARAMETER}"}
        return Refused(CloseCode.NO_VALID_START, "invalid_start", describe_invalid(exc, names=names))
    return CallPlan(message, legs)


# ---------------------------------------------------------------- the call


@dataclass
class _Silence:
    """A gap in one track, delivered as silence a second at a time."""

    prefix: bytes
    samples: int

    def take(self) -> bytes:
        taken = min(self.samples, SILENCE_FRAME_SAMPLES)
        self.samples -= taken
        return self.prefix + MULAW_SILENCE * taken


class TwilioLink(WebSocketLink):
    """A Twilio stream already accepted, its `start` read and admitted: hands the owner the call's v1
    `start`, `answered` at 0, each track's audio placed at its timestamp, and `hangup` on `stop`."""

    connector = CONNECTOR

    def __init__(self, websocket: WebSocket, tenant: str | None, plan: CallPlan):
        super().__init__(websocket, tenant)
        self.legs = plan.legs
        # The stream starts when the call's TwiML runs it: for the call, that is when it was answered.
        self._ready: deque[Incoming | _Silence] = deque(
            [plan.start, CallEventMessage(type="event", event="answered", t=0.0)])
        self._timeline = TrackTimeline(tolerance=TIMESTAMP_TOLERANCE_MS * SAMPLES_PER_MS)

    async def accept(self) -> None:
        """Accepted before `start` could be read (the key is in it)."""

    async def send(self, result: dict[str, Any]) -> None:
        """Twilio takes no results (see the module's docstring)."""

    async def receive(self) -> Incoming:
        while not self._ready:
            # Twilio closes right after `stop`; once gone, every later call answers `Gone` (WebSocketLink).
            frame = await self.receive_frame()
            if isinstance(frame, Gone):
                return frame
            self._translate(frame)
        head = self._ready[0]
        if isinstance(head, _Silence):
            frame = head.take()
            if not head.samples:
                self._ready.popleft()
            return frame
        message = self._ready.popleft()
        assert not isinstance(message, _Silence)
        return message

    def _translate(self, frame: str | bytes) -> None:
        """Queue what one Twilio frame means for the call; raise ProtocolFault for what cannot be taken."""
        if isinstance(frame, bytes):
            raise ProtocolFault("unexpected_binary", f"a binary frame of {len(frame)} bytes; Twilio sends JSON text "
                                                     "frames: dropped")
        data = _json_object(frame)
        if data is None:
            raise ProtocolFault("malformed_json", "a frame that is not a JSON object; Twilio sends JSON text frames",
                                close=CloseCode.UNREADABLE_FRAME)
        event = data.get("event")
        if event not in EVENTS:
            raise ProtocolFault("unknown_event", f"unknown event {event!r}: ignored; Twilio sends "
                                                 f"{', '.join(EVENTS)}")
        try:
            message = twilio_message_adapter.validate_python(data)
        except ValidationError as exc:
            raise ProtocolFault("invalid_message", f"{event}: {describe_invalid(exc)}") from None
        if isinstance(message, Media):
            self._media(message)
        elif isinstance(message, Stop):
            # Twilio does not say who ended the call, or whether only the stream was stopped. The stream
            # ended where its furthest track did.
            end = max(self._timeline.delivered(track) for track in self.legs) / RATE
            self._ready.append(CallEventMessage(type="event", event="hangup", by="system", t=end))
        elif isinstance(message, (Connected, Start)):
            raise ProtocolFault("already_started", f"a second {event!r} on a started stream: ignored")
        # `dtmf` and `mark` are taken and ignored: protocol v1 has no key presses, and callwatch sends no
        # marks to be echoed.

    def _media(self, message: Media) -> None:
        chunk = message.media
        prefix = self.legs.get(chunk.track)
        if prefix is None:
            raise ProtocolFault("unknown_track", f"media on the {chunk.track} track, which start did not list: dropped")
        try:
            audio = base64.b64decode(chunk.payload, validate=True)
        except binascii.Error:
            raise ProtocolFault("bad_audio_frame", f"{chunk.track} chunk {chunk.chunk}: the payload is not base64: "
                                                   "dropped") from None
        if not audio:
            return
        gap = self._timeline.place(chunk.track, chunk.timestamp * SAMPLES_PER_MS, len(audio))
        if gap is None:
            heard_ms = self._timeline.delivered(chunk.track) // SAMPLES_PER_MS
            raise ProtocolFault("media_out_of_order", f"{chunk.track} chunk {chunk.chunk} at {chunk.timestamp} ms lies "
                                                      f"within the {heard_ms} ms that track already delivered: dropped")
        if gap:
            self._ready.append(_Silence(prefix, gap))
        self._ready.append(prefix + audio)


# ---------------------------------------------------------------- the endpoint


async def _refuse(runtime: Runtime, link: WebSocketLink, refused: Refused, call_sid: str | None = None) -> None:
    runtime.metrics.ingest_errors.labels(refused.code, CONNECTOR).inc()
    log.warning("stream refused%s: %s", f" (call {call_sid})" if call_sid else "", refused.reason,
                extra={"code": refused.code, "fatal": True})
    await link.close(refused.close, refused.reason)


@router.websocket(PATH)
async def twilio_stream(websocket: WebSocket, runtime: RuntimeDep, connections: IngestConnectionsDep,
                        keys: KeysDep) -> None:
    settings = runtime.settings
    if settings.twilio_auth_token and not signed_by_twilio(websocket, settings):
        runtime.metrics.calls_refused.labels("bad_signature", CONNECTOR).inc()
        log.warning("stream refused: missing or wrong X-Twilio-Signature for %s", signed_url(websocket, settings))
        # Closed before accepting: the handshake is refused with HTTP 403.
        await websocket.close(code=int(CloseCode.UNAUTHORIZED), reason="missing or wrong X-Twilio-Signature")
        return
    await websocket.accept()
    opening = WebSocketLink(websocket, None)
    start = await read_start(opening, settings.ingest_start_timeout_s)
    if isinstance(start, Gone):
        return
    if isinstance(start, Refused):
        await _refuse(runtime, opening, start)
        return
    call_sid = start.start.call_sid
    principal = keys.authorize(websocket, INGEST_ROLES, start.start.custom_parameters.get(KEY_PARAMETER, ""))
    if isinstance(principal, Refusal):
        runtime.metrics.calls_refused.labels("unauthorized", CONNECTOR).inc()
        await opening.close(CloseCode.UNAUTHORIZED, f"unauthorized: missing or wrong {KEY_PARAMETER} parameter")
        return
    plan = plan_call(start, settings.twilio_inbound_speaker)
    if isinstance(plan, Refused):
        await _refuse(runtime, opening, plan, call_sid)
        return
    link = TwilioLink(websocket, principal.tenant, plan)
    await serve_call(link, runtime, connections, principal)
