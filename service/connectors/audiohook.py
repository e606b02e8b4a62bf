"""Genesys Cloud AudioHook (protocol version 2) at `/v1/connectors/audiohook`: a call forked from Genesys
Cloud by an AudioHook Monitor or transcription-connector integration, translated onto the one live call.

Genesys connects with `X-API-KEY` (checked against callwatch's integrator keys) and, when the integration
has a client secret, an HTTP message signature (checked when `CALLWATCH_AUDIOHOOK_CLIENT_SECRET` is set).
The session then runs as the protocol defines it: `open` → `opened` (PCMU at 8 kHz, stereo or one
channel), audio, `ping` → `pong`, `paused` / `resumed` (hold), `discarded`, `update`, and the client's
`close` → `closed`. A refusal or a fault is a `disconnect` (reason `unauthorized` or `error`, with `info`
saying why), after which the client runs its close transaction. docs/connectors.md documents each message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from service.access.guard import INGEST_ROLES, KeysDep, Refusal
from service.app_state import IngestConnectionsDep, RuntimeDep
from service.call_link import Gone, Incoming, ProtocolFault, WebSocketLink
from service.connectors.audiohook_protocol import (
    CLIENT_TYPES,
    NULL_UUID,
    ClientMessage,
    CloseParameters,
    DiscardedParameters,
    DisconnectParameters,
    ErrorParameters,
    Media,
    OpenedParameters,
    OpenParameters,
    ResumedParameters,
    ServerMessage,
    TranscriptAlternative,
    TranscriptData,
    TranscriptEntity,
    TranscriptInterpretation,
    UpdateParameters,
    duration,
    seconds_of,
)
from service.connectors.http_signature import SignatureError, verify
from service.ingest import serve_call
from wire.errors import describe_invalid
from wire.ingest import AudioFormat, CallEventMessage, CloseCode, Speaker, StartMessage

log = logging.getLogger("callwatch.connectors.audiohook")
router = APIRouter()

CONNECTOR = "audiohook"
TRANSCRIPT_LANGUAGE = "zh-CN"  # what the recogniser hears; the language a client asks for does not change it
AGENT_ID_KEY = "agentId"  # the key of the integration's customConfig that names the agent
UNKNOWN_AGENT = "unknown"
# After a `disconnect`, how long the client gets to run its close transaction, and after `closed`, to close
# the socket, before the server closes it (Genesys's own client allows itself 10 s for the transaction).
CLOSE_TRANSACTION_S = 5.0
RATE = 8000
SILENCE_FRAME_S = 1.0  # a gap (a hold, discarded audio) is filled with silence frames this long
MULAW_SILENCE = b"\xff"
# AudioHook names the two sides of a Genesys conversation by who they are to the contact centre.
CHANNEL_SPEAKER: dict[str, Speaker] = {"external": "customer", "internal": "agent"}
SPEAKER_CHANNEL = {speaker: channel for channel, speaker in CHANNEL_SPEAKER.items()}
LEG_BYTE = {"agent": 0, "customer": 1}  # v1 two_legs: the first byte of a frame says whose

State = Literal["preparing", "probe", "opening", "active", "closing", "disconnecting", "closed"]


@dataclass(frozen=True)
class SelectedMedia:
    """The offer chosen, and how its frames become v1 audio."""

    media: Media
    audio: AudioFormat
    leg: bytes  # one channel: the v1 leg byte put before each frame; both channels: nothing

    @property
    def channels(self) -> int:
        return len(self.media.channels)


def select_media(offered: list[Media]) -> SelectedMedia | None:
    """Both channels in one stream if offered (the channel order as offered), else one channel as a leg of
    its own: PCMU at 8 kHz only."""
    usable = [m for m in offered if m.type == "audio" and m.format == "PCMU" and m.rate == RATE
              and all(c in CHANNEL_SPEAKER for c in m.channels)]
    for media in usable:
        if sorted(media.channels) == ["external", "internal"]:
            channel_map = (CHANNEL_SPEAKER[media.channels[0]], CHANNEL_SPEAKER[media.channels[1]])
            audio = AudioFormat(encoding="mulaw", sample_rate=RATE, layout="stereo", channel_map=channel_map)
            return SelectedMedia(media, audio, b"")
    for media in usable:
        if len(media.channels) == 1:
            # v1 `mono` would mean both voices on one channel; this is one party alone, so it is that
            # party's leg of a two-leg call whose other leg stays silent.
            audio = AudioFormat(encoding="mulaw", sample_rate=RATE, layout="two_legs")
            return SelectedMedia(media, audio, bytes([LEG_BYTE[CHANNEL_SPEAKER[media.channels[0]]]]))
    return None


def _fault(code: str, message: str, close: CloseCode | None = CloseCode.UNREADABLE_FRAME) -> ProtocolFault:
    return ProtocolFault(code, message, close)


def _parse(model: Any, kind: str, parameters: dict[str, Any], close: CloseCode = CloseCode.UNREADABLE_FRAME) -> Any:
    try:
        return model.model_validate(parameters)
    except ValidationError as exc:
        raise _fault("invalid_message", f"'{kind}' parameters: {describe_invalid(exc, kind)}", close) from None


class AudioHookLink(WebSocketLink):
    connector = CONNECTOR

    def __init__(self, websocket: WebSocket, tenant: str | None, session_id: str | None,
                 organization_id: str | None):
        super().__init__(websocket, tenant)
        self.session_id = session_id
        self.organization_id = organization_id
        self.state: State = "preparing"
        self.seq = 0  # the last server message's seq
        self.clientseq = 0  # the last client message's seq, processed
        self.selected: SelectedMedia | None = None
        self.language: str | None = None  # set: the client asked for transcripts (see `_open`)
        self.wants_languages = False
        self.paused_at: float | None = None  # monotonic time of the client's pause, while paused
        self.filled_s = 0.0  # silence already put in for the pause in progress
        self.events_from = 0.0  # monotonic time before which no event is sent (the client's 429)
        self.clock_s = 0.0  # audio handed to the call, gaps filled included: the call's clock
        # Silence put in for pauses, (where on the call's clock, how long): Genesys's stream position does
        # not count a pause's audio, so transcript offsets leave these out to be on the client's timeline.
        self.hold_fills: list[tuple[float, float]] = []
        self._pending: deque[Incoming] = deque()
        self._send_lock = asyncio.Lock()
        self._reading = False
        self._gone = asyncio.Event()

    # ------------------------------------------------------------------ reading

    async def receive(self) -> Incoming:
        while not self._pending:
            await self._read_one()
        return self._pending.popleft()

    async def _read_one(self) -> None:
        self._reading = True
        try:
            frame = await self.receive_frame()
        finally:
            self._reading = False
        if isinstance(frame, Gone):
            self._gone.set()
            self._pending.append(frame)
        elif isinstance(frame, bytes):
            self._on_audio(frame)
        else:
            await self._on_text(frame)

    def _on_audio(self, frame: bytes) -> None:
        if self.state in ("preparing", "opening"):
            raise _fault("audio_before_open", f"binary frame of {len(frame)} bytes before the session was opened",
                         CloseCode.NO_VALID_START)
        if self.state != "active" or not frame or self.selected is None:
            return  # a probe's, or a straggler after close: nothing to hear
        if len(frame) % self.selected.channels:
            raise _fault("bad_audio_frame", f"binary frame of {len(frame)} bytes does not hold whole samples of "
                                            f"{self.selected.channels} PCMU channels")
        self._pending.append(self.selected.leg + frame)
        self.clock_s += len(frame) / self.selected.channels / RATE

    async def _on_text(self, text: str) -> None:
        # The session is ending: only the client's `close` matters now, and it is taken even when the error
        # that ended the session was in the sequence numbers themselves.
        quiet = self.state in ("disconnecting", "closed")
        try:
            message = self._checked(text, in_sequence=not quiet)
        except ProtocolFault:
            if quiet:
                return
            raise
        kind, parameters = message.type, message.parameters
        if quiet:
            if kind == "close" and self.state == "disconnecting":
                await self._closed()
            elif kind == "ping":
                await self._send("pong", {})
            return
        if kind == "open":
            await self._open(_parse(OpenParameters, kind, parameters, CloseCode.NO_VALID_START))
        elif kind == "ping":
            await self._send("pong", {})
            self._fill_pause()
        elif kind == "close":
            _parse(CloseParameters, kind, parameters)
            if self.state in ("opening", "active"):
                # The call ends here; `closed` follows once its last words are stored and sent.
                self.state = "closing"
                self._pending.append(CallEventMessage(type="event", event="hangup", by="system"))
            else:
                await self._closed()
        elif self.state in ("preparing", "opening"):
            if kind in ("paused", "resumed", "discarded", "update", "error"):
                raise _fault("not_open", f"'{kind}' before the session was opened", CloseCode.NO_VALID_START)
            raise _fault("unknown_type", f"'{kind}' is not an AudioHook client message")
        elif self.state == "probe" and kind in CLIENT_TYPES:
            return  # a probe carries no call to hold or transcribe
        elif kind == "paused":
            self._pause()
        elif kind == "resumed":
            self._resume(_parse(ResumedParameters, kind, parameters))
        elif kind == "discarded":
            gap = _parse(DiscardedParameters, kind, parameters)
            self._fill(seconds_of(gap.discarded), hold=False)
        elif kind == "update":
            self.language = _parse(UpdateParameters, kind, parameters).language or self.language
        elif kind == "error":
            error = _parse(ErrorParameters, kind, parameters)
            if error.code == 429 and error.retryAfter:
                self.events_from = time.monotonic() + seconds_of(error.retryAfter)
            raise _fault("client_error", f"the client reported error {error.code}: {error.message}", close=None)
        else:
            raise _fault("unknown_type", f"'{kind}' is not an AudioHook client message")

    def _checked(self, text: str, in_sequence: bool = True) -> ClientMessage:
        """The message, once it is one of this session's, in sequence; else the protocol error."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise _fault("malformed_json", "text frame is not JSON") from None
        if not isinstance(data, dict):
            raise _fault("malformed_json", "a text frame must be a JSON object")
        try:
            message = ClientMessage.model_validate(data)
        except ValidationError as exc:
            raise _fault("invalid_message",
                         f"not an AudioHook version 2 client message ({describe_invalid(exc)})") from None
        if in_sequence and message.seq != self.clientseq + 1:
            raise _fault("out_of_order", f"seq {message.seq} where {self.clientseq + 1} was due")
        if in_sequence and message.serverseq > self.seq:
            raise _fault("out_of_order", f"serverseq {message.serverseq} is past the last server seq {self.seq}")
        if self.session_id is None:
            self.session_id = message.id
        elif message.id != self.session_id:
            raise _fault("invalid_message", f"id {message.id!r} is not this session's ({self.session_id})")
        self.clientseq = message.seq
        return message

    async def _open(self, open_: OpenParameters) -> None:
        if self.state != "preparing":
            raise _fault("invalid_message", "a second 'open' on this session: ignored", close=None)
        if self.organization_id and open_.organizationId != self.organization_id:
            raise _fault("unauthorized", "organizationId differs from the Audiohook-Organization-Id header",
                         CloseCode.UNAUTHORIZED)
        self.selected = select_media(open_.media)
        if self.selected is None:
            offered = ", ".join(f"{m.format}/{m.rate}/{'+'.join(m.channels)}" for m in open_.media) or "nothing"
            raise _fault("unsupported_media", f"no offered media callwatch can take (offered: {offered}; "
                                              f"it takes PCMU at {RATE} Hz, external and/or internal)",
                         CloseCode.NO_VALID_START)
        # A transcription connector's session names the language to transcribe; a monitor's does not. So a
        # language in `open` (or a later `update`) is the client asking for transcripts.
        self.language = open_.language
        self.wants_languages = open_.supportedLanguages
        if open_.conversationId == NULL_UUID:
            # Genesys's connection probe: answered like a call, so it checks what a call would get, but no call.
            self.state = "probe"
            await self._send_opened()
            return
        config = open_.customConfig or {}
        agent = config.get(AGENT_ID_KEY)
        ani = (open_.participant.ani or "").removeprefix("tel:")
        try:
            start = StartMessage(type="start", call_id=open_.conversationId,
                                 agent_id=str(agent) if agent else UNKNOWN_AGENT,
                                 caller_number=ani if 0 < len(ani) <= 32 else None, audio=self.selected.audio)
        except ValidationError as exc:
            raise _fault("invalid_message", f"'open' cannot start a call: {exc.errors()[0]['msg']}",
                         CloseCode.NO_VALID_START) from None
        self.state = "opening"
        self._pending.append(start)
        # The media flows once Genesys has the conversation connected: the call is answered at its start.
        self._pending.append(CallEventMessage(type="event", event="answered", t=0))

    # ------------------------------------------------------------------ hold and gaps

    def _pause(self) -> None:
        if self.paused_at is None:
            self.paused_at, self.filled_s = time.monotonic(), 0.0
            self._pending.append(CallEventMessage(type="event", event="hold"))

    def _fill_pause(self) -> None:
        """While paused no audio comes; the pings that do come put in the silence of the hold so far, so
        the call's clock (and the hold rules) go on in real time and the idle timeout does not end it."""
        if self.paused_at is not None:
            elapsed = time.monotonic() - self.paused_at
            self._fill(elapsed - self.filled_s, hold=True)
            self.filled_s = elapsed

    def _resume(self, resumed: DiscardedParameters) -> None:
        # `discarded`: the audio of the pause the client did not send. Filling it keeps the call's clock in
        # real time, so a hold lasts as long as it did.
        self._fill(seconds_of(resumed.discarded) - self.filled_s, hold=True)
        if self.paused_at is not None:
            self.paused_at = None
            self._pending.append(CallEventMessage(type="event", event="resume"))

    def _fill(self, seconds: float, hold: bool) -> None:
        if self.selected is None or self.state != "active" or seconds <= 0:
            return
        samples = int(round(seconds * RATE))
        if hold:
            self.hold_fills.append((self.clock_s, samples / RATE))
        self.clock_s += samples / RATE
        per_frame = int(SILENCE_FRAME_S * RATE)
        while samples > 0:
            n = min(samples, per_frame)
            self._pending.append(self.selected.leg + MULAW_SILENCE * (n * self.selected.channels))
            samples -= n

    # ------------------------------------------------------------------ writing

    async def send(self, result: dict[str, Any]) -> None:
        kind = result.get("type")
        if kind == "started" and self.state == "opening":
            await self._send_opened()
            self.state = "active"
        elif kind in ("final", "partial") and self.language and self.state in ("active", "closing"):
            if time.monotonic() >= self.events_from:
                await self._send_transcript(result)
        # Prompts, moods, errors, `ended` and the report have no AudioHook message: the agent screen and the
        # calls API carry them.

    async def _send_opened(self) -> None:
        assert self.selected is not None
        opened = OpenedParameters(media=[self.selected.media],
                                  supportedLanguages=[TRANSCRIPT_LANGUAGE] if self.wants_languages else None)
        await self._send("opened", opened.model_dump(exclude_none=True))

    async def _send_transcript(self, result: dict[str, Any]) -> None:
        channel = SPEAKER_CHANNEL.get(result.get("speaker", ""))
        if channel is None:
            return
        final = result["type"] == "final"
        data = TranscriptData(
            # One id per utterance, so a final replaces the partials that came before it.
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"callwatch:{self.session_id}:{result['utterance_id']}")),
            channel=channel, isFinal=final, offset=duration(self._stream_position(result["start"])),
            duration=duration(result["end"] - result["start"]) if final else None,
            alternatives=[TranscriptAlternative(
                confidence=1.0, languages=[TRANSCRIPT_LANGUAGE],
                interpretations=[TranscriptInterpretation(transcript=result["text"])])],
        )
        entity = TranscriptEntity(data=data).model_dump(exclude_none=True)
        await self._send("event", {"entities": [entity]})

    def _stream_position(self, t: float) -> float:
        """A time on the call's clock as a position in the client's audio stream (pauses left out)."""
        held = sum(min(length, max(0.0, t - at)) for at, length in self.hold_fills)
        return t - held

    async def _send(self, kind: str, parameters: dict[str, Any]) -> None:
        # One at a time: the pipeline's results and the link's own answers must leave in `seq` order.
        async with self._send_lock:
            self.seq += 1
            message = ServerMessage(id=self.session_id or NULL_UUID, type=kind, seq=self.seq,
                                    clientseq=self.clientseq, parameters=parameters)
            await self.send_json(message.model_dump())

    async def _closed(self) -> None:
        await self._send("closed", {})
        self.state = "closed"

    # ------------------------------------------------------------------ ending

    async def close(self, code: CloseCode, reason: str) -> None:
        if not self.connected:
            return
        if self.state == "closing":
            await self._closed()  # the client's close, answered once the call is ended
        elif self.state != "closed":
            disconnect = DisconnectParameters(
                reason="unauthorized" if code == CloseCode.UNAUTHORIZED else "completed" if code == CloseCode.NORMAL
                else "error", info=reason)
            self.state = "disconnecting"
            await self._send("disconnect", disconnect.model_dump(exclude_none=True))
        await self._settle()
        await super().close(code, reason)

    async def _settle(self) -> None:
        """Give the client its close transaction and its own closing of the socket, within bounds."""
        try:
            async with asyncio.timeout(CLOSE_TRANSACTION_S):
                if self._reading:  # the call's own reader is reading (a shutdown ends calls from another task)
                    await self._gone.wait()
                    return
                while self.connected:
                    try:
                        await self._read_one()
                    except ProtocolFault:
                        continue
        except TimeoutError:
            return


@router.websocket("/v1/connectors/audiohook")
async def audiohook(websocket: WebSocket, runtime: RuntimeDep, connections: IngestConnectionsDep,
                    keys: KeysDep) -> None:
    headers = websocket.headers
    principal = keys.authorize(websocket, INGEST_ROLES, headers.get("x-api-key", ""))
    refusal = "the X-API-KEY is missing or not a callwatch integrator key" if isinstance(principal, Refusal) else None
    secret = runtime.settings.audiohook_client_secret
    if refusal is None and secret:
        target = (websocket.scope.get("raw_path") or websocket.scope["path"].encode()).decode("latin-1")
        if query := websocket.scope.get("query_string"):
            target += "?" + query.decode("latin-1")
        try:
            verify(headers, request_target=target, api_key=headers.get("x-api-key", ""),
                   client_secret=base64.b64decode(secret), now=time.time())
        except SignatureError as exc:
            log.warning("audiohook signature refused: %s", exc)
            refusal = "the request signature is missing or does not verify"
    link = AudioHookLink(websocket, None if isinstance(principal, Refusal) else principal.tenant,
                         headers.get("audiohook-session-id"), headers.get("audiohook-organization-id"))
    if refusal is not None or isinstance(principal, Refusal):
        runtime.metrics.calls_refused.labels("unauthorized", CONNECTOR).inc()
        await link.accept()
        await link.close(CloseCode.UNAUTHORIZED, refusal or "unauthorized")
        return
    await serve_call(link, runtime, connections, principal)
