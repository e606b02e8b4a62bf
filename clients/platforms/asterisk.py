"""Stream a two-party call the way Asterisk does, over AudioSocket or chan_websocket.

Written from Asterisk's own specifications, not from callwatch's server:

- AudioSocket (docs.asterisk.org, Configuration/Channel-Drivers/AudioSocket; res_audiosocket.c): a TCP
  connection per channel; messages of a 1-byte type, a 2-byte big-endian length and the payload; the UUID
  message (0x01, 16 bytes) first, then signed linear 16-bit little-endian mono audio (0x10 at 8 kHz, 0x11 …
  0x18 at 12, 16, 24, 32, 44.1, 48, 96, 192 kHz), DTMF (0x03), errors (0xff); Asterisk ends by closing the
  socket (a hangup message 0x00 says the same). The server may send audio and hangup back.
- chan_websocket (docs.asterisk.org, Configuration/Channel-Drivers/WebSocket; chan_websocket.c): Asterisk
  connects as a websocket client (websocket_client.conf: `uri`, `protocols`, `username`/`password` as HTTP
  Basic), sends the TEXT notification `MEDIA_START …` then the channel's audio as BINARY messages of
  `optimal_frame_size` every `ptime` ms, `DTMF_END digit:…` for digits, and closes the websocket when the
  channel hangs up.

Each leg of the call is a channel of its own, so a call is two connections: the agent's and the customer's.
For AudioSocket they carry UUIDs that differ in the last hex digit (0 agent, 1 customer: callwatch's
pairing convention, docs/connectors.md#asterisk); for chan_websocket the dial string's `v()` option puts
`call_id`, `leg`, `agent_id` and `caller_number` in the URI.

    await play_call("tcp://127.0.0.1:9093", agent, customer, 8000, call_id=str(uuid.uuid4()), agent_id="A1")
    await play_call("ws://127.0.0.1:8000/v1/connectors/asterisk", agent, customer, 8000, call_id="c1",
                    agent_id="A1", key="cw_…", caller_number="13800000000")
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import websockets
from websockets.typing import Subprotocol

PTIME_S = 0.02  # Asterisk's 20 ms frames
# AudioSocket message types.
HANGUP, UUID_KIND, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
AUDIO_KIND = {8000: 0x10, 12000: 0x11, 16000: 0x12, 24000: 0x13, 32000: 0x14, 44100: 0x15, 48000: 0x16,
              96000: 0x17, 192000: 0x18}
# chan_websocket formats: sample rate, bytes per sample.
WS_FORMATS = {"ulaw": (8000, 1), "alaw": (8000, 1), "slin": (8000, 2), "slin16": (16000, 2)}
LEGS = ("agent", "customer")
OnMessage = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------- audio


def resample(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    if rate == to:
        return samples.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, to)
    return resample_poly(samples, to // g, rate // g).astype(np.float32)


def to_slin(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


def to_ulaw(samples: np.ndarray) -> bytes:
    """ITU-T G.711 μ-law: bias 0x84, clip 32635, sign / 3-bit segment / 4-bit mantissa, all bits inverted."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    return (~(sign | (segment << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def to_alaw(samples: np.ndarray) -> bytes:
    """ITU-T G.711 A-law: 13-bit magnitude, segment and mantissa, even bits inverted (XOR 0x55)."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32) >> 3
    sign = np.where(pcm >= 0, 0x80, 0)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.clip(np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4, 0, 7)
    mantissa = np.where(segment == 0, magnitude >> 1, magnitude >> segment) & 0x0F
    return ((sign | (segment << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()


def frames(samples: np.ndarray, rate: int, encode: Callable[[np.ndarray], bytes]) -> list[bytes]:
    step = int(round(rate * PTIME_S))
    return [encode(samples[i:i + step]) for i in range(0, len(samples), step)]


async def paced(items: Sequence[Any], speed: float, started: float) -> Any:
    """Yield each item at its time: item i at `started` + i × 20 ms / speed (monotonic clock)."""
    for i, item in enumerate(items):
        delay = started + i * PTIME_S / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield item


# ---------------------------------------------------------------- AudioSocket


def call_uuid(call_id: str) -> uuid.UUID:
    """The call's UUID: `call_id` itself when it is one, else a name-based UUID of it."""
    try:
        return uuid.UUID(call_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"callwatch:{call_id}")


def leg_uuid(call_id: str, leg: str) -> uuid.UUID:
    """The leg's UUID: the call's with its last hex digit 0 (agent) or 1 (customer)."""
    text = str(call_uuid(call_id))
    return uuid.UUID(text[:-1] + ("0" if leg == "agent" else "1"))


def audiosocket_call_id(call_id: str) -> str:
    """The id callwatch stores an AudioSocket call under: the agent leg's UUID."""
    return str(leg_uuid(call_id, "agent"))


class AudioSocketConnection:
    """One AudioSocket connection, as Asterisk's AudioSocket() application or channel driver opens it."""

    def __init__(self, host: str, port: int, on_message: OnMessage | None = None, leg: str = ""):
        self.host, self.port = host, port
        self.on_message = on_message
        self.leg = leg
        self.hung_up = asyncio.Event()  # the server sent a hangup or closed

    async def connect(self) -> "AudioSocketConnection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self._listener = asyncio.create_task(self._listen())
        return self

    async def send(self, kind: int, payload: bytes = b"") -> None:
        self.writer.write(bytes([kind]) + len(payload).to_bytes(2, "big") + payload)
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_uuid(self, stream: uuid.UUID) -> None:
        await self.send(UUID_KIND, stream.bytes)

    async def send_audio(self, pcm: bytes, rate: int = 8000) -> None:
        await self.send(AUDIO_KIND[rate], pcm)

    async def close(self) -> None:
        """Asterisk's end of a channel: the socket closed."""
        if not self.writer.is_closing():
            self.writer.close()
        await asyncio.gather(self._listener, return_exceptions=True)

    async def abort(self) -> None:
        """Vanish: the connection reset (RST, as a crashed host's kernel answers), no orderly close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        await asyncio.gather(self._listener, return_exceptions=True)

    async def _listen(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(3)
                payload = await self.reader.readexactly(int.from_bytes(header[1:3], "big"))
                kind = header[0]
                if kind == HANGUP:
                    self._tell({"type": "hangup", "leg": self.leg})
                    break
                self._tell({"type": "audio" if kind in AUDIO_KIND.values() else f"0x{kind:02x}", "leg": self.leg,
                            "bytes": len(payload)})
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._tell({"type": "closed", "leg": self.leg})
        finally:
            self.hung_up.set()

    def _tell(self, message: dict[str, Any]) -> None:
        if self.on_message is not None:
            self.on_message(message)


async def play_audiosocket(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str,
                           speed: float = 1.0, on_message: OnMessage | None = None,
                           legs: Sequence[str] = LEGS, send_rate: int = 8000) -> None:
    where = urlsplit(url)
    audio = {"agent": agent, "customer": customer}
    started = time.monotonic() + 0.05
    connections = {leg: await AudioSocketConnection(where.hostname or "127.0.0.1", where.port or 0, on_message,
                                                    leg).connect() for leg in legs}

    async def stream(leg: str) -> None:
        connection = connections[leg]
        await connection.send_uuid(leg_uuid(call_id, leg))
        async for frame in paced(frames(resample(audio[leg], rate, send_rate), send_rate, to_slin), speed, started):
            if connection.hung_up.is_set():
                return
            await connection.send_audio(frame, send_rate)

    await asyncio.gather(*(stream(leg) for leg in legs))
    # The caller hangs up; the agent's channel ends as the bridge breaks up.
    for leg in sorted(legs, key=lambda name: name != "customer"):
        await connections[leg].close()
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- chan_websocket


def media_start(connection_id: str, channel_id: str, fmt: str, *, control_format: str = "plain-text",
                variables: dict[str, str] | None = None) -> str:
    rate, width = WS_FORMATS[fmt]
    fields = {"connection_id": connection_id, "channel": f"WebSocket/callwatch/0x{abs(hash(channel_id)) % 16**12:012x}",
              "channel_id": channel_id, "format": fmt, "optimal_frame_size": int(rate * PTIME_S) * width,
              "ptime": int(PTIME_S * 1000)}
    if control_format == "json":
        return json.dumps({"event": "MEDIA_START", **fields, "channel_variables": variables or {}})
    return "MEDIA_START " + " ".join(f"{k}:{v}" for k, v in fields.items())


def basic_auth(key: str | None, username: str = "asterisk") -> dict[str, str]:
    if not key:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()}


class ChanWebSocket:
    """One chan_websocket connection, as Asterisk's websocket client opens it for one WebSocket channel."""

    def __init__(self, url: str, key: str | None, on_message: OnMessage | None = None, leg: str = ""):
        self.url, self.key, self.on_message, self.leg = url, key, on_message, leg
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    async def connect(self) -> "ChanWebSocket":
        self.ws = await websockets.connect(self.url, additional_headers=basic_auth(self.key), subprotocols=[Subprotocol("media")],
                                           max_size=2**16)
        self._listener = asyncio.create_task(self._listen())
        return self

    async def _listen(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, str) and self.on_message is not None:
                    self.on_message({"type": "command", "leg": self.leg, "command": message})
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason or ""
            if self.on_message is not None:
                self.on_message({"type": "closed", "leg": self.leg, "code": self.close_code, "reason": self.close_reason})
            self.closed.set()

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def close(self, code: int = 1000) -> None:
        """The channel hung up: Asterisk closes the websocket with the hangup cause, or 1000."""
        await self.ws.close(code)
        await asyncio.gather(self._listener, return_exceptions=True)

    async def abort(self) -> None:
        """Vanish: the TCP connection dropped with no close frame."""
        self.ws.transport.abort()
        await asyncio.gather(self._listener, return_exceptions=True)


def leg_url(url: str, call_id: str, leg: str, agent_id: str, caller_number: str | None) -> str:
    """The URI chan_websocket connects to with `v(call_id=…,leg=…,agent_id=…,caller_number=…)` in the dial string."""
    params = {"call_id": call_id, "leg": leg, "agent_id": agent_id}
    if caller_number:
        params["caller_number"] = caller_number
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


async def play_chan_websocket(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str,
                              agent_id: str, key: str | None = None, speed: float = 1.0,
                              on_message: OnMessage | None = None, fmt: str = "ulaw",
                              caller_number: str | None = None, legs: Sequence[str] = LEGS,
                              control_format: str = "plain-text") -> None:
    send_rate, _ = WS_FORMATS[fmt]
    encode = {"ulaw": to_ulaw, "alaw": to_alaw}.get(fmt, to_slin)
    audio = {"agent": agent, "customer": customer}
    connections: dict[str, ChanWebSocket] = {}
    for leg in legs:
        if control_format == "json":
            # ARI externalMedia or a dial plan sets channel variables; JSON MEDIA_START carries them.
            target = url
            variables = {"CALLWATCH_CALL_ID": call_id, "CALLWATCH_LEG": leg, "CALLWATCH_AGENT_ID": agent_id,
                         **({"CALLWATCH_CALLER_NUMBER": caller_number} if caller_number else {})}
        else:
            target, variables = leg_url(url, call_id, leg, agent_id, caller_number), {}
        connections[leg] = await ChanWebSocket(target, key, on_message, leg).connect()
        await connections[leg].send(media_start(str(uuid.uuid4()), f"{time.time():.6f}", fmt,
                                                control_format=control_format, variables=variables))
    started = time.monotonic() + 0.05

    async def stream(leg: str) -> None:
        connection = connections[leg]
        async for frame in paced(frames(resample(audio[leg], rate, send_rate), send_rate, encode), speed, started):
            if connection.closed.is_set():
                return
            await connection.send(frame)

    await asyncio.gather(*(stream(leg) for leg in legs))
    for leg in sorted(legs, key=lambda name: name != "customer"):
        if not connections[leg].closed.is_set():
            await connections[leg].close()
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- either


async def play_call(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str, agent_id: str,
                    key: str | None = None, speed: float = 1.0,
                    on_message: Callable[[dict[str, Any]], None] | None = None, **platform_options: Any) -> None:
    """Stream the two legs as Asterisk would, in real time at `speed`: AudioSocket for `tcp://HOST:PORT` (no key,
    no agent id: AudioSocket carries neither; the call is stored under `audiosocket_call_id(call_id)`), chan_websocket
    for `ws://…/v1/connectors/asterisk` (`key` as the Basic password; options `fmt`, `caller_number`, `legs`,
    `control_format`)."""
    if speed <= 0:
        raise ValueError("speed must be positive: Asterisk streams in real time")
    if url.startswith("tcp://"):
        await play_audiosocket(url, agent, customer, rate, call_id=call_id, speed=speed, on_message=on_message,
                               **platform_options)
    elif url.startswith(("ws://", "wss://")):
        await play_chan_websocket(url, agent, customer, rate, call_id=call_id, agent_id=agent_id, key=key,
                                  speed=speed, on_message=on_message, **platform_options)
    else:
        raise ValueError(f"{url!r}: tcp://HOST:PORT for AudioSocket, ws:// or wss:// for chan_websocket")
