"""Asterisk: chan_websocket at /v1/connectors/asterisk, and the AudioSocket listener's lifetime.

chan_websocket (Asterisk 20.16, 21.11, 22.6, 23 and later; docs.asterisk.org, Configuration/Channel-Drivers/
WebSocket; channels/chan_websocket.c) connects to this endpoint as a websocket client configured in
websocket_client.conf, one websocket per WebSocket channel, that is per leg. Right after the upgrade it sends
the TEXT notification `MEDIA_START` (plain text `MEDIA_START connection_id:… channel:… channel_id:… format:…
optimal_frame_size:… ptime:…`, or with `control_message_format = json` a JSON object that also carries the
channel's variables), then the channel's audio in BINARY messages in that format. Other notifications:
`DTMF_END`, `MEDIA_XOFF`/`MEDIA_XON`, `MEDIA_BUFFERING_COMPLETED`, `MEDIA_MARK_PROCESSED`, `QUEUE_DRAINED`,
`STATUS`, `ERROR`. When the channel hangs up, Asterisk closes the websocket (with the hangup cause, or 1000).

The key is checked before the upgrade: websocket_client.conf's `username`/`password` arrive as HTTP Basic
authorization, and the password is one of callwatch's integrator keys (a Bearer key works too). The call,
its leg and its metadata come from the URI's query parameters (the dial string's `v()` option) or from the
channel variables of a JSON `MEDIA_START`. Refusals after the upgrade send the `HANGUP` command (it hangs up
the WebSocket channel, not the caller's) and close the websocket with a code and reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from service.access.guard import KeysDep, bearer_key
from service.app_state import AsteriskCallsDep, IngestConnectionsDep, RuntimeDep, app_state_of
from service.call_link import Gone
from service.connectors.asterisk_call import (
    AGENT_LEG,
    CONNECTOR,
    CUSTOMER_LEG,
    CallIdentity,
    LegAudio,
    LegDigit,
    LegFault,
    LegHangup,
    LegItem,
    LegLost,
    LegMedia,
)
from service.connectors.audiosocket import audiosocket_listener
from service.ingest import admit_integrator
from service.runtime import Runtime
from wire.ingest import CloseCode

log = logging.getLogger("callwatch.connectors.asterisk")


@asynccontextmanager
async def asterisk_lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan (FastAPI merges a router's), so the app's state is built.
    async with audiosocket_listener(app_state_of(app)):
        yield


router = APIRouter(lifespan=asterisk_lifespan)

# chan_websocket's formats (Asterisk format names) callwatch takes.
FORMATS = {
    "ulaw": LegAudio("mulaw", 8000), "alaw": LegAudio("alaw", 8000), "slin": LegAudio("pcm_s16le", 8000),
    "slin12": LegAudio("pcm_s16le", 12000), "slin16": LegAudio("pcm_s16le", 16000),
    "slin24": LegAudio("pcm_s16le", 24000), "slin32": LegAudio("pcm_s16le", 32000),
    "slin44": LegAudio("pcm_s16le", 44100), "slin48": LegAudio("pcm_s16le", 48000),
}
LEG_NAMES = {"agent": AGENT_LEG, "customer": CUSTOMER_LEG}
# Notifications about the media an application sends Asterisk; callwatch sends none, so they say nothing.
MEDIA_NOTICES = {"MEDIA_XOFF", "MEDIA_XON", "MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED", "QUEUE_DRAINED",
                 "STATUS"}
# Asterisk closes a channel's websocket with its hangup cause, or 1000: always with a code. Without one (1005,
# which uvicorn also reports for a connection that ended with no close frame at all) or with 1006, the
# connection was lost.
LOST_CLOSE_CODES = (None, 1005, 1006)
UNSUPPORTED_DATA = 1003
# The metadata a leg may carry: URI query parameter → channel variable of a JSON MEDIA_START.
PARAMETERS = {"call_id": "CALLWATCH_CALL_ID", "leg": "CALLWATCH_LEG", "agent_id": "CALLWATCH_AGENT_ID",
              "caller_number": "CALLWATCH_CALLER_NUMBER", "direction": "CALLWATCH_DIRECTION"}


def parse_notification(text: str) -> dict[str, Any]:
    """A TEXT notification as a dict with `event`: JSON as it is, plain text `NAME key:value …` split up."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {"event": None, "text": text}
        return data if isinstance(data, dict) else {"event": None, "text": text}
    name, _, rest = text.partition(" ")
    fields: dict[str, Any] = {"event": name}
    for token in rest.split():
        key, sep, value = token.partition(":")
        if sep:
            fields[key] = value
    return fields


def key_of(websocket: WebSocket) -> str:
    """websocket_client.conf's password (HTTP Basic), or a Bearer key."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return password
    return bearer_key(websocket)


class WebSocketLeg:
    """One chan_websocket connection after its MEDIA_START: a `LegConnection`."""

    def __init__(self, websocket: WebSocket, audio: LegAudio):
        self.ws = websocket
        self.audio = audio
        self.gone = False

    async def read(self) -> LegItem:
        while True:
            frame = await receive(self.ws)
            if isinstance(frame, Gone):
                self.gone = True
                if frame.code in LOST_CLOSE_CODES:
                    return LegLost("connection_lost", "the websocket ended without a close code")
                return LegHangup()
            if isinstance(frame, bytes):
                if not frame:
                    return LegFault("bad_audio_frame", "empty BINARY message: dropped")
                return LegMedia(frame, self.audio)
            notice = parse_notification(frame)
            event = notice.get("event")
            if event == "DTMF_END":
                return LegDigit(str(notice.get("digit", "")))
            if event in MEDIA_NOTICES:
                continue
            if event == "ERROR":
                return LegFault("asterisk_error", f"Asterisk reported: {notice.get('error_text', '')}")
            if event == "HANGUP":
                # Asterisk itself closes the websocket; a proxy in between may say HANGUP first.
                return LegHangup()
            if event == "MEDIA_START":
                return LegFault("invalid_message", "a second MEDIA_START on one websocket: ignored")
            return LegFault("unknown_type", f"unknown chan_websocket message {str(event or frame)[:60]!r}: skipped")

    async def hang_up(self, code: CloseCode, reason: str) -> None:
        await hang_up(self.ws, int(code), reason)
        self.gone = True


async def receive(websocket: WebSocket) -> str | bytes | Gone:
    try:
        message = await websocket.receive()
    except (WebSocketDisconnect, RuntimeError) as gone:
        return Gone(getattr(gone, "code", None))
    if message["type"] == "websocket.disconnect":
        return Gone(message.get("code"))
    if message.get("bytes") is not None:
        return message["bytes"]
    return message.get("text") or ""


async def hang_up(websocket: WebSocket, code: int, reason: str) -> None:
    """chan_websocket's way to end from this side: the HANGUP command, then the websocket closed."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_text("HANGUP")
        await websocket.close(code=code, reason=reason[:120])
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


def identity_of(websocket: WebSocket, start: dict[str, Any], agent_default: str) -> tuple[int, CallIdentity] | str:
    """The leg and call a MEDIA_START names (query parameters first, then channel variables); or why not."""
    given_variables = start.get("channel_variables")
    variables: dict[str, Any] = given_variables if isinstance(given_variables, dict) else {}
    given = {name: websocket.query_params.get(name) or variables.get(var) for name, var in PARAMETERS.items()}
    leg = (given["leg"] or "customer").lower()
    if leg not in LEG_NAMES:
        return f"invalid_media_start: leg {leg!r} is neither 'agent' nor 'customer'"
    call_id = given["call_id"] or start.get("channel_id") or start.get("connection_id")
    if not call_id:
        return "invalid_media_start: no call id (call_id parameter, CALLWATCH_CALL_ID, or channel_id)"
    direction = (given["direction"] or "inbound").lower()
    if direction not in ("inbound", "outbound"):
        return f"invalid_media_start: direction {direction!r} is neither 'inbound' nor 'outbound'"
    identity = CallIdentity(call_id=str(call_id), agent_id=str(given["agent_id"] or agent_default),
                            caller_number=given["caller_number"] or None, direction=direction)  # type: ignore[arg-type]
    invalid = identity.invalid()
    return f"invalid_media_start: {invalid}" if invalid else (LEG_NAMES[leg], identity)


@router.websocket("/v1/connectors/asterisk")
async def chan_websocket(websocket: WebSocket, runtime: RuntimeDep, connections: IngestConnectionsDep,
                         calls: AsteriskCallsDep, keys: KeysDep) -> None:
    principal = await admit_integrator(websocket, key_of(websocket), CONNECTOR, runtime, keys)
    if principal is None:
        return
    # websocket_client.conf's `protocols` is offered as the subprotocol; Asterisk expects one of them back.
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=("media" if "media" in offered else offered[0]) if offered else None)
    opened = await first_notification(websocket, runtime)
    if isinstance(opened, tuple):
        code, reason = opened
        runtime.metrics.calls_refused.labels(reason.split(":")[0], CONNECTOR).inc()
        log.warning("chan_websocket connection refused: %s", reason)
        await hang_up(websocket, code, reason)
        return
    if opened is None:
        return
    audio = FORMATS.get(str(opened.get("format", "")))
    if audio is None:
        reason = (f"unsupported_format: format {opened.get('format')!r} is not taken; use c(ulaw), c(alaw), c(slin) "
                  f"or c(slin16) in the dial string")
        runtime.metrics.calls_refused.labels("unsupported_format", CONNECTOR).inc()
        log.warning("chan_websocket connection refused: %s", reason)
        await hang_up(websocket, UNSUPPORTED_DATA, reason)
        return
    named = identity_of(websocket, opened, runtime.settings.asterisk_agent_id)
    if isinstance(named, str):
        runtime.metrics.calls_refused.labels("invalid_media_start", CONNECTOR).inc()
        log.warning("chan_websocket connection refused: %s", named)
        await hang_up(websocket, int(CloseCode.NO_VALID_START), named)
        return
    number, identity = named
    await calls.take_leg(number, WebSocketLeg(websocket, audio), identity, principal, runtime, connections)


async def first_notification(websocket: WebSocket, runtime: Runtime) -> dict[str, Any] | tuple[int, str] | None:
    """The MEDIA_START that opens every chan_websocket connection; (close code, reason) for anything else;
    None when the client went away first."""
    timeout = runtime.settings.ingest_start_timeout_s
    try:
        async with asyncio.timeout(timeout):
            frame = await receive(websocket)
    except TimeoutError:
        return int(CloseCode.NO_VALID_START), f"start_timeout: no MEDIA_START within {timeout:g} s of connecting"
    if isinstance(frame, Gone):
        return None
    if isinstance(frame, bytes):
        return int(CloseCode.NO_VALID_START), "media_before_start: BINARY media before MEDIA_START, which comes first"
    notice = parse_notification(frame)
    if notice.get("event") != "MEDIA_START":
        return (int(CloseCode.NO_VALID_START),
                f"media_start_first: {str(notice.get('event') or frame)[:40]!r} before MEDIA_START, which comes first")
    return notice
