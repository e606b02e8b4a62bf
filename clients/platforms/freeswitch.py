"""The FreeSWITCH side of an audio fork, as the modules' published documentation describes it, for tests and
benchmarks: mod_audio_fork (drachtio), mod_audio_stream (amigniter) and Jambonz's `listen` verb (which drives
mod_audio_fork).

What each module does on the wire:
- connects to the `wss-url` of `uuid_audio_fork <uuid> start <wss-url> <mix-type> <sampling-rate> <metadata>`
  (`uuid_audio_stream` alike), offering the subprotocol `audio.drachtio.org` (mod_audio_fork's default),
  `audio.jambonz.org` (Jambonz) or none (mod_audio_stream); with HTTP basic auth from the channel variables
  MOD_AUDIO_BASIC_AUTH_USERNAME / _PASSWORD (mod_audio_fork; Jambonz's `wsAuth`), or the headers of
  STREAM_EXTRA_HEADERS (mod_audio_stream);
- sends the metadata as the first text frame (the line's own text; Jambonz: the call's attributes with
  `sampleRate` and `mixType`, and the verb's `metadata` merged in);
- then binary frames of 16-bit little-endian PCM at the sampling rate: `mono` the caller (the channel's read
  stream), `mixed` both voices summed on one channel, `stereo` two interleaved channels, the caller left;
- `send_text` sends a text frame; `stop <text>` sends the text, then closes the socket with 1000;
- every text frame the server sends is JSON; mod_audio_fork turns it into a FreeSWITCH event.

The module's "caller" is the party on the channel the fork is attached to; in a call centre's inbound call
that is the customer, so `caller="customer"` is the default here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Module = Literal["mod_audio_fork", "mod_audio_stream", "jambonz"]
MixType = Literal["mono", "mixed", "stereo"]
FRAME_S = 0.02  # FreeSWITCH's packetization: one 20 ms frame at a time
SUBPROTOCOLS: dict[str, str | None] = {"mod_audio_fork": "audio.drachtio.org", "jambonz": "audio.jambonz.org",
                                       "mod_audio_stream": None}


def auth_headers(module: Module, key: str | None, username: str = "freeswitch") -> dict[str, str]:
    """How each module can present a key: basic auth (mod_audio_fork, Jambonz) or a header (mod_audio_stream)."""
    if not key:
        return {}
    if module == "mod_audio_stream":
        return {"Authorization": f"Bearer {key}"}
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()}


def l16(samples: np.ndarray) -> bytes:
    """float32 in [-1, 1) (frames, or frames × channels) → interleaved 16-bit little-endian PCM."""
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def resample(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    """The module resamples the channel's audio to the rate the line asked for (speex); a polyphase filter here."""
    if rate == to:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, to)
    return resample_poly(samples, to // g, rate // g).astype(np.float32)


def mix_down(caller: np.ndarray, callee: np.ndarray, mix_type: MixType) -> np.ndarray:
    """The samples the media bug hands the module for `mix_type`: (frames,) or (frames, 2)."""
    n = max(len(caller), len(callee))
    caller = np.pad(caller, (0, n - len(caller)))
    callee = np.pad(callee, (0, n - len(callee)))
    if mix_type == "mono":
        return caller
    if mix_type == "mixed":
        return caller + callee
    return np.stack([caller, callee], axis=1)


@dataclass
class ForkStream:
    """One module's websocket to the server, and every message the server sent on it."""

    ws: ClientConnection
    on_message: Callable[[dict[str, Any]], None] | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, module: Module = "mod_audio_fork", key: str | None = None,
                   on_message: Callable[[dict[str, Any]], None] | None = None) -> "ForkStream":
        subprotocol = SUBPROTOCOLS[module]
        ws = await connect(url, subprotocols=[subprotocol] if subprotocol else None,  # type: ignore[list-item]
                           additional_headers=auth_headers(module, key), open_timeout=10, max_size=None)
        stream = cls(ws, on_message)
        stream._reader = asyncio.create_task(stream._read())
        return stream

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                try:
                    message = json.loads(frame)
                except (TypeError, json.JSONDecodeError):
                    message = {"raw": frame}
                self.received.append(message)
                if self.on_message is not None:
                    self.on_message(message)
        except ConnectionClosed:
            pass

    async def send_text(self, text: str | dict[str, Any]) -> None:
        """The metadata, or `uuid_audio_fork <uuid> send_text <text>`."""
        await self.ws.send(text if isinstance(text, str) else json.dumps(text, ensure_ascii=False))

    async def send_audio(self, samples: np.ndarray, rate: int, *, speed: float = 1.0, start_s: float = 0.0,
                         texts: Sequence[tuple[float, dict[str, Any]]] = ()) -> None:
        """Stream `samples` (at `rate`, the line's sampling rate) in 20 ms frames as they would be spoken, `speed`
        times real time; each of `texts` (call time in seconds, message) is sent with `send_text` on reaching
        its time."""
        step = int(rate * FRAME_S)
        pending = sorted(texts, key=lambda item: item[0])
        began = time.monotonic() - start_s / speed
        for first in range(0, len(samples), step):
            at = first / rate
            while pending and pending[0][0] <= at:
                await self.send_text(pending.pop(0)[1])
            await self.ws.send(l16(samples[first:first + step]))
            ahead = began + (at + FRAME_S) / speed - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        for _, message in pending:
            await self.send_text(message)

    async def stop(self, text: str | dict[str, Any] | None = None) -> None:
        """`uuid_audio_fork <uuid> stop [text]`: the final text if any, then a normal close (1000)."""
        if text is not None:
            await self.send_text(text)
        await self.ws.close(1000)
        await self.finished()

    async def wait_closed(self, timeout: float = 120.0) -> None:
        """Read on until the server closes the socket."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        await self.finished()

    async def finished(self) -> None:
        if self._reader is not None:
            await self._reader

    def vanish(self) -> None:
        """The FreeSWITCH host drops off the network: the TCP connection ends with no close frame."""
        self.ws.transport.abort()


def metadata_for(module: Module, *, call_id: str, agent_id: str, mix_type: MixType, sample_rate: int,
                 caller_number: str | None, direction: str, caller: str, audio_in_url: bool) -> dict[str, Any]:
    """The first text frame. mod_audio_fork / mod_audio_stream: the JSON the `start` line carries, as
    docs/connectors.md asks for it. Jambonz: what its `listen` verb builds (the call's attributes, `sampleRate`
    and `mixType`, and the verb's `metadata` merged in at the top level)."""
    if module == "jambonz":
        number = caller_number or "anonymous"
        return {"sampleRate": sample_rate, "mixType": mix_type, "callSid": call_id, "direction": direction,
                "from": number if direction == "inbound" else "95500", "to": "95500" if direction == "inbound" else number,
                "callId": f"{call_id}@sip.example", "accountSid": "9351f46a-678c-43f5-b8a6-d4eb58d131af",
                "applicationSid": "0e1e3b9e-4a6b-4d0e-8d3c-0a1b2c3d4e5f", "callerName": "", "callStatus": "in-progress",
                "sipStatus": 200, "agent_id": agent_id, "caller_is": caller}
    metadata: dict[str, Any] = {"uuid": call_id, "agent_id": agent_id, "direction": direction}
    if caller_number:
        metadata["caller_number"] = caller_number
    if caller != "customer":
        metadata["caller_is"] = caller
    if not audio_in_url:
        metadata |= {"mix_type": mix_type, "sample_rate": sample_rate}
    return metadata


def stream_url(url: str, mix_type: MixType, sample_rate: int, audio_in_url: bool) -> str:
    if not audio_in_url:
        return url
    rate = f"{sample_rate // 1000}k" if sample_rate % 1000 == 0 else str(sample_rate)
    return f"{url}{'&' if '?' in url else '?'}mix_type={mix_type}&sample_rate={rate}"


async def play_call(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str, agent_id: str,
                    key: str | None = None, speed: float = 1.0,
                    on_message: Callable[[dict[str, Any]], None] | None = None,
                    module: Module = "mod_audio_fork", mix_type: MixType = "stereo", sample_rate: int | None = None,
                    caller: Literal["customer", "agent"] = "customer", caller_number: str | None = "13800138000",
                    direction: str = "inbound", audio_in_url: bool = False,
                    texts: Sequence[tuple[float, dict[str, Any]]] = (), hangup_by: str | None = "customer") -> None:
    """Fork one call to `url` as `module` would: metadata, then the legs as L16 in 20 ms frames at `speed` times
    real time, then the end. With `hangup_by`, the end is a `send_text` hangup event and the socket is read until
    the server closes it (so every final, `ended` and the report arrive); with None, the module is stopped
    (close 1000) as when the channel hangs up, and what the server sends after that is lost, as it is to a real
    module. `texts` are `send_text` messages at call times (`{"event": "hold"}`, ...)."""
    sample_rate = sample_rate or rate
    caller_leg, callee_leg = (customer, agent) if caller == "customer" else (agent, customer)
    samples = resample(mix_down(caller_leg, callee_leg, mix_type), rate, sample_rate)
    stream = await ForkStream.open(stream_url(url, mix_type, sample_rate, audio_in_url), module, key, on_message)
    await stream.send_text(metadata_for(module, call_id=call_id, agent_id=agent_id, mix_type=mix_type,
                                        sample_rate=sample_rate, caller_number=caller_number, direction=direction,
                                        caller=caller, audio_in_url=audio_in_url))
    await stream.send_audio(samples, sample_rate, speed=speed, texts=texts)
    if hangup_by is None:
        await stream.stop()
    else:
        await stream.send_text({"event": "hangup", "by": hangup_by})
        await stream.wait_closed()
