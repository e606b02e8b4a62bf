"""Twilio's side of a Media Stream, written from Twilio's published specification: the messages
(https://www.twilio.com/docs/voice/media-streams/websocket-messages), the `<Stream>` noun
(https://www.twilio.com/docs/voice/twiml/stream) and the request signature
(https://www.twilio.com/docs/usage/security). It plays a two-party call into a stream server as Twilio does
when the call's TwiML runs

    <Start>
      <Stream url="wss://HOST/v1/connectors/twilio" track="both_tracks">
        <Parameter name="callwatch_key" value="KEY"/>
        <Parameter name="agent_id" value="a-1042"/>
        <Parameter name="from" value="{{From}}"/>
      </Stream>
    </Start>

Twilio dials the wss:// URL, signing the handshake with `X-Twilio-Signature` (base64 HMAC-SHA1 of that URL
keyed with the account's auth token), sends `connected`, then `start`, then `media` messages (20 ms of
base64 μ-law at 8 kHz each, per track, stamped in milliseconds since the stream began), and at the end of
the call `stop`, and closes the socket.

    await play_call("ws://127.0.0.1:8000/v1/connectors/twilio", agent, customer, 8000,
                    call_id="CA0123…", agent_id="a-1042", key=KEY)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import soxr
import websockets

from pipelines.audio import encode_g711

RATE = 8000
CHUNK_MS = 20
CHUNK_BYTES = RATE * CHUNK_MS // 1000  # μ-law: one byte a sample
MULAW_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1}
ACCOUNT_SID = "AC" + "0" * 32


def twilio_signature(auth_token: str, url: str) -> str:
    """`X-Twilio-Signature` of a request to `url` with no POST parameters (a websocket handshake)."""
    return base64.b64encode(hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def as_twilio_dials(url: str) -> str:
    """The URL Twilio signs: it only dials wss://, so a test server's ws:// URL is signed as wss://."""
    return "wss://" + url.split("://", 1)[1] if url.startswith("ws://") else url


async def connect(url: str, *, auth_token: str | None = None, signed_url: str | None = None) -> Any:
    """Open the stream's websocket as Twilio does: signed when `auth_token` is given (over `signed_url`,
    by default `url` as Twilio dials it)."""
    headers = {}
    if auth_token is not None:
        headers["X-Twilio-Signature"] = twilio_signature(auth_token, signed_url or as_twilio_dials(url))
    return await websockets.connect(url, additional_headers=headers, max_size=2**24)


def mulaw_chunks(samples: np.ndarray, rate: int) -> list[bytes]:
    """One leg as Twilio carries it: μ-law at 8 kHz in chunks of 20 ms (the last one may be shorter)."""
    audio = np.ascontiguousarray(samples, dtype=np.float32)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    encoded = encode_g711(audio, "mulaw")
    return [encoded[i:i + CHUNK_BYTES] for i in range(0, len(encoded), CHUNK_BYTES)]


class MediaStream:
    """One stream's messages as Twilio numbers them: `sequenceNumber` counts every message after
    `connected` from 1, `chunk` counts each track's media from 1."""

    def __init__(self, ws: Any, call_sid: str, account_sid: str = ACCOUNT_SID, stream_sid: str | None = None):
        self.ws = ws
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = stream_sid or "MZ" + secrets.token_hex(16)
        self._sequence = 0
        self._chunks = {"inbound": 0, "outbound": 0}

    def _numbered(self, event: str, body: dict[str, Any]) -> dict[str, Any]:
        self._sequence += 1
        return {"event": event, "sequenceNumber": str(self._sequence), **body, "streamSid": self.stream_sid}

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def connected(self) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def start(self, tracks: Sequence[str], custom_parameters: Mapping[str, str],
                    media_format: Mapping[str, Any] = MULAW_FORMAT) -> None:
        await self.send(self._numbered("start", {"start": {
            "accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": list(tracks), "mediaFormat": dict(media_format), "customParameters": dict(custom_parameters),
        }}))

    async def media(self, track: str, audio: bytes, timestamp_ms: int) -> None:
        self._chunks[track] += 1
        await self.send(self._numbered("media", {"media": {
            "track": track, "chunk": str(self._chunks[track]), "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(audio).decode(),
        }}))

    async def dtmf(self, digit: str) -> None:
        await self.send(self._numbered("dtmf", {"dtmf": {"track": "inbound_track", "digit": digit}}))

    async def stop(self) -> None:
        await self.send(self._numbered("stop", {"stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}))


async def _read(ws: Any, on_message: Callable[[dict[str, Any]], None] | None) -> None:
    try:
        async for raw in ws:
            if on_message is not None and isinstance(raw, str):
                on_message(json.loads(raw))
    except websockets.ConnectionClosed:
        pass


def _withheld(spans: Iterable[tuple[float, float]], at_s: float) -> bool:
    return any(start <= at_s < end for start, end in spans)


async def play_call(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str, agent_id: str,
                    key: str | None = None, speed: float = 1.0,
                    on_message: Callable[[dict[str, Any]], None] | None = None,
                    caller_number: str | None = None, auth_token: str | None = None, signed_url: str | None = None,
                    inbound: str = "customer", tracks: Sequence[str] = ("inbound", "outbound"),
                    withheld: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> None:
    """Stream the call's two legs as Twilio streams `both_tracks` of call `call_id` (its CallSid), at
    `speed` times real time, then `stop` and close.

    `inbound` is whose voice the inbound track carries (the caller's, on an inbound call); `tracks` which
    tracks are streamed (`track="inbound_track"`: only the inbound). `withheld` names spans, in seconds, of
    a track whose chunks are not sent, as Twilio may skip a track's silence; the chunks after carry their
    true timestamps. `on_message` gets each JSON message the server sends back (a Media Streams server may
    send only `media`, `mark` and `clear`, on a `<Connect><Stream>`).
    """
    if not 0 < speed < math.inf:
        raise ValueError("speed must be a positive, finite multiple of real time")
    voice = {"inbound": customer if inbound == "customer" else agent,
             "outbound": agent if inbound == "customer" else customer}
    chunks = {track: mulaw_chunks(voice[track], rate) for track in tracks}
    skip = withheld or {}
    parameters = {name: value for name, value in
                  (("callwatch_key", key), ("agent_id", agent_id), ("from", caller_number)) if value is not None}
    loop = asyncio.get_running_loop()
    ws = await connect(url, auth_token=auth_token, signed_url=signed_url)
    reader = asyncio.create_task(_read(ws, on_message))
    try:
        stream = MediaStream(ws, call_sid=call_id)
        await stream.connected()
        await stream.start(list(tracks), parameters)
        began = loop.time()
        for index in range(max(len(c) for c in chunks.values())):
            at_ms = index * CHUNK_MS
            for track in tracks:
                if index < len(chunks[track]) and not _withheld(skip.get(track, ()), at_ms / 1000):
                    await stream.media(track, chunks[track][index], at_ms)
            await asyncio.sleep(max(0.0, began + (at_ms + CHUNK_MS) / 1000 / speed - loop.time()))
        await stream.stop()
    finally:
        await ws.close()
        await reader
