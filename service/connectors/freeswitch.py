"""FreeSWITCH mod_audio_fork (drachtio), mod_audio_stream (amigniter) and Jambonz's `listen` verb, at
`/v1/connectors/freeswitch`: one text frame of metadata, then binary L16 frames (service/connectors/
freeswitch_wire.py says how they map onto protocol v1), and the call ends when the module closes the socket.

Admission: an integrator key, as `Authorization: Bearer KEY` (mod_audio_stream's STREAM_EXTRA_HEADERS) or as
the password of HTTP basic auth (mod_audio_fork's MOD_AUDIO_BASIC_AUTH_* channel variables, Jambonz's
`wsAuth`), checked before the handshake is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from service.access.guard import KeysDep, bearer_key
from service.app_state import IngestConnectionsDep, RuntimeDep
from service.call_link import Gone, Incoming, ProtocolFault, WebSocketLink
from service.connectors.freeswitch_wire import (
    PLATFORM_CHATTER,
    CallEventText,
    ForkMetadata,
    StreamChoice,
    audio_layout,
    server_text,
    start_message,
)
from service.ingest import admit_integrator, serve_call
from service.settings import Settings
from wire.errors import describe_invalid
from wire.ingest import CallEventMessage, CloseCode

log = logging.getLogger("callwatch.connectors.freeswitch")
router = APIRouter()
CONNECTOR = "freeswitch"


def connector_key(websocket: WebSocket) -> str:
    """The integrator key: a bearer token, or the password of HTTP basic auth (the user name is free)."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return bearer_key(websocket)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


class ForkLink(WebSocketLink):
    """One module's socket, carrying one call."""

    connector = CONNECTOR

    def __init__(self, websocket: WebSocket, tenant: str | None, settings: Settings):
        super().__init__(websocket, tenant)
        self.settings = settings
        self.started = False
        self._leg: bytes = b""  # `mono`: the leg byte put before every frame (v1 `two_legs`)
        self._closed: Gone | None = None  # the module's close, handed on after the hangup it stands for

    async def accept(self) -> None:
        # mod_audio_fork offers one subprotocol (audio.drachtio.org by default, MOD_AUDIO_FORK_SUBPROTOCOL_NAME),
        # Jambonz audio.jambonz.org; libwebsockets wants the one it offered back. mod_audio_stream offers none.
        offered = self.ws.scope.get("subprotocols") or []
        await self.ws.accept(subprotocol=offered[0] if offered else None)

    async def receive(self) -> Incoming:
        if self._closed is not None:
            return self._closed
        while True:
            frame = await self.receive_frame()
            if isinstance(frame, Gone):
                # The module closes with 1000 when it is stopped (`uuid_audio_fork stop`, the channel hung up,
                # Jambonz's listen ended): the call is over. Any other end (no close frame: 1006) is a dropped link.
                if self.started and frame.code == CloseCode.NORMAL:
                    self._closed = frame
                    return CallEventMessage(type="event", event="hangup", by="system")
                return frame
            if isinstance(frame, bytes):
                if not self.started:
                    raise ProtocolFault("no_metadata", f"a binary frame of {len(frame)} bytes came before the "
                                                       "metadata; the first frame must be the metadata JSON text",
                                        close=CloseCode.NO_VALID_START)
                if frame:  # mod_audio_fork's graceful-shutdown sends an empty one to flush the last results
                    return self._leg + frame
                continue
            if not self.started:
                return self._start(frame)
            message = self._later_text(frame)
            if message is not None:
                return message

    def _start(self, text: str) -> Incoming:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise ProtocolFault("malformed_json", "the metadata (the first text frame) is not JSON",
                                close=CloseCode.UNREADABLE_FRAME) from None
        if not isinstance(data, dict):
            raise ProtocolFault("malformed_json", "the metadata (the first text frame) must be a JSON object",
                                close=CloseCode.UNREADABLE_FRAME)
        try:
            metadata = ForkMetadata.model_validate(data)
            choice = StreamChoice.model_validate(dict(self.ws.query_params))
        except ValidationError as exc:
            raise ProtocolFault("invalid_metadata", describe_invalid(exc, "metadata"), close=CloseCode.NO_VALID_START) from None
        missing = [name for name, value in (("uuid (or Jambonz callSid)", metadata.call_id),
                                            ("agent_id", metadata.agent_id)) if not value]
        if missing:
            raise ProtocolFault("invalid_metadata", f"the metadata has no {' and no '.join(missing)}",
                                close=CloseCode.NO_VALID_START)
        settings = self.settings
        audio, leg = audio_layout(
            metadata.mix_type or choice.mix_type or settings.freeswitch_mix_type,
            metadata.sample_rate or choice.sample_rate or settings.freeswitch_sample_rate,
            metadata.caller_is or choice.caller_is or settings.freeswitch_caller_is,
        )
        try:
            start = start_message(metadata, audio)
        except ValidationError as exc:
            raise ProtocolFault("invalid_metadata", describe_invalid(exc, "metadata"), close=CloseCode.NO_VALID_START) from None
        self.started = True
        self._leg = b"" if leg is None else bytes([leg])
        return start

    def _later_text(self, text: str) -> CallEventMessage | None:
        """A `send_text` (or the `stop` line's final text): a call event, the platform's own chatter (None:
        passed over), or a fault the call survives."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise ProtocolFault("unknown_message", "a text frame after the metadata that is not a JSON object: ignored")
        if data.get("event") in PLATFORM_CHATTER:
            return None
        try:
            return CallEventText.model_validate(data).v1()
        except ValidationError as exc:
            if "event" not in data:
                raise ProtocolFault("unknown_message", "a text frame after the metadata with no `event`: ignored; "
                                                       "send {\"event\": \"hold\"} and the like") from None
            raise ProtocolFault("invalid_message", describe_invalid(exc, "event")) from None

    async def send(self, result: dict[str, Any]) -> None:
        await self.send_json(server_text(result).model_dump(mode="json"))


@router.websocket("/v1/connectors/freeswitch")
async def freeswitch(websocket: WebSocket, runtime: RuntimeDep, connections: IngestConnectionsDep,
                     keys: KeysDep) -> None:
    # Before accept: the module sees the handshake refused with HTTP 403.
    principal = await admit_integrator(websocket, connector_key(websocket), CONNECTOR, runtime, keys)
    if principal is None:
        return
    link = ForkLink(websocket, principal.tenant, runtime.settings)
    await serve_call(link, runtime, connections, principal)
