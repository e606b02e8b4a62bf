"""A small async client for the callwatch ingest protocol (v1), for integrators and for `callwatch stream`.

    async with CallStream(url) as call:
        await call.start(call_id="c1", agent_id="a7", audio={"encoding": "mulaw", "sample_rate": 8000})
        await call.send_audio(frame_bytes)            # stereo: agent left, customer right
        await call.event("hangup", by="customer")
        async for result in call.results():           # partial / final / event / error / ended
            ...
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TextIO

import numpy as np
import websockets

from pipelines.audio import ChannelResampler, encode_g711, encode_pcm16, load_audio_file

FRAME_SECONDS = 0.02  # 20 ms, the usual RTP packet


class CallStream:
    """One call over one websocket. Results are collected in the background as they arrive."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.url = url
        self.headers = headers or {}
        self._results: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""

    async def __aenter__(self) -> "CallStream":
        self._ws = await websockets.connect(self.url, additional_headers=self.headers, max_size=2**24)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._ws.close()
        if self._reader:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                if isinstance(raw, str):
                    await self._results.put(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
            await self._results.put(None)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message, ensure_ascii=False))

    async def start(self, *, call_id: str, agent_id: str, audio: dict[str, Any], **fields: Any) -> None:
        await self.send_json({"type": "start", "protocol": 1, "call_id": call_id, "agent_id": agent_id,
                              "audio": audio, **fields})

    async def send_audio(self, frame: bytes, leg: int | None = None) -> None:
        """Send one audio frame; with `two_legs` layout, `leg` is 0 (agent) or 1 (customer)."""
        await self._ws.send(frame if leg is None else bytes([leg]) + frame)

    async def event(self, event: str, **fields: Any) -> None:
        await self.send_json({"type": "event", "event": event, **fields})

    async def results(self) -> AsyncIterator[dict[str, Any]]:
        """Every result until the server closes the socket."""
        while (item := await self._results.get()) is not None:
            yield item

    async def read_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> list[dict[str, Any]]:
        """The results up to and including the first that `predicate` accepts (or to the close); raises
        TimeoutError if none comes within `timeout` seconds."""
        seen: list[dict[str, Any]] = []

        async def read() -> None:
            async for result in self.results():
                seen.append(result)
                if predicate(result):
                    return

        await asyncio.wait_for(read(), timeout)
        return seen


def _wire_frames(audio: np.ndarray, rate: int, encoding: str) -> tuple[list[bytes], int]:
    """Cut (frames, channels) audio into 20 ms wire frames; G.711 is sent at 8 kHz as on a trunk."""
    if encoding in ("mulaw", "alaw") and rate != 8000:
        audio = np.stack([ChannelResampler(rate, 8000)(audio[:, c], last=True) for c in range(audio.shape[1])], axis=1)
        rate = 8000
    step = int(rate * FRAME_SECONDS)
    frames = []
    for i in range(0, len(audio), step):
        chunk = audio[i : i + step].reshape(-1)  # row-major: interleaved channels
        frames.append(encode_pcm16(chunk) if encoding == "pcm_s16le" else encode_g711(chunk, encoding))
    return frames, rate


async def play_call(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str, agent_id: str,
                    key: str | None = None, speed: float = 1.0,
                    on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Stream two float32 legs as a v1 call (μ-law 8 kHz stereo, as from a SIP trunk) at `speed` times real
    time, then hang up; the same shape as the platform clients in `clients/platforms/`."""
    audio = np.stack([agent, customer], axis=1)
    frames, wire_rate = _wire_frames(audio, rate, "mulaw")
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with CallStream(url, headers) as call:
        await call.start(call_id=call_id, agent_id=agent_id, audio={"encoding": "mulaw", "sample_rate": wire_rate})
        await call.event("answered", t=0.0)

        async def collect() -> None:
            async for result in call.results():
                if on_message:
                    on_message(result)

        collector = asyncio.create_task(collect())
        t0 = time.monotonic()
        for i, frame in enumerate(frames):
            if (delay := t0 + i * FRAME_SECONDS / speed - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            await call.send_audio(frame)
        await call.event("hangup", by="customer")
        await collector


async def stream_file(
    path: Path,
    *,
    url: str,
    realtime: bool = False,
    speed: float = 1.0,
    ahead_s: float | None = 5.0,
    call_id: str | None = None,
    agent_id: str = "agent-demo",
    swap_channels: bool = False,
    encoding: str = "pcm_s16le",
    on_result: Callable[[dict[str, Any]], None] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Play a recording as a live call: answered at once, hung up by the customer at the end. `realtime`: at
    the pace it was spoken (`speed` times faster); otherwise as fast as the socket takes it up to `ahead_s`
    ahead of real time (a server holds a live call to 10 s ahead and closes one that keeps running further;
    None: no limit, for a server that allows it).

    Returns the server's `ended` message (None if the server closed without one)."""
    audio, rate = load_audio_file(str(path))
    if audio.shape[1] > 2:
        raise ValueError(f"{path}: {audio.shape[1]} channels; expected mono or stereo")
    layout = "stereo" if audio.shape[1] == 2 else "mono"
    frames, wire_rate = _wire_frames(audio, rate, encoding)
    call_id = call_id or f"{path.stem}-{datetime.now():%Y%m%d%H%M%S}"
    audio_format: dict[str, Any] = {"encoding": encoding, "sample_rate": wire_rate, "layout": layout}
    if layout == "stereo":
        audio_format["channel_map"] = ["customer", "agent"] if swap_channels else ["agent", "customer"]
    ended: dict[str, Any] | None = None
    async with CallStream(url, headers) as call:
        await call.start(call_id=call_id, agent_id=agent_id, audio=audio_format,
                         started_at=datetime.now().astimezone().isoformat(timespec="seconds"))
        await call.event("answered", t=0.0)

        async def collect() -> None:
            nonlocal ended
            async for result in call.results():
                if on_result:
                    on_result(result)
                if result.get("type") == "ended":
                    ended = result

        collector = asyncio.create_task(collect())
        t0 = time.monotonic()
        for i, frame in enumerate(frames):
            due = (t0 + i * FRAME_SECONDS / speed if realtime
                   else t0 + i * FRAME_SECONDS - ahead_s if ahead_s is not None else None)
            if due is not None and (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            elif i % 50 == 0:
                await asyncio.sleep(0)  # let results in while sending as fast as the socket takes it
            await call.send_audio(frame)
        await call.event("hangup", by="customer")
        await collector
    return ended


class TranscriptPrinter:
    """Prints results for a person: finals as lines, the open partial rewritten in place on a terminal."""

    LABELS = {"agent": "坐席", "customer": "客户", "unknown": "说话人"}

    def __init__(self, as_json: bool = False, out: TextIO = sys.stdout):
        self.as_json = as_json
        self.out = out
        self._partial_shown = False

    def __call__(self, result: dict[str, Any]) -> None:
        if self.as_json:
            self.out.write(json.dumps(result, ensure_ascii=False) + "\n")
            self.out.flush()
            return
        kind = result.get("type")
        tty = self.out.isatty()
        if kind == "partial" and tty:
            label = self.LABELS.get(result["speaker"], result["speaker"])
            self.out.write(f"\r\033[K  … {label}: {result['text']}")
            self._partial_shown = True
        elif kind in ("final", "event", "error", "ended", "prompt", "prompt_cleared"):
            if self._partial_shown:
                self.out.write("\r\033[K")
                self._partial_shown = False
            self.out.write(self._line(result) + "\n")
        self.out.flush()

    def _line(self, r: dict[str, Any]) -> str:
        kind = r["type"]
        if kind == "final":
            label = self.LABELS.get(r["speaker"], r["speaker"])
            return f"[{r['start']:7.2f}s] {label}: {r['text']}"
        if kind == "event":
            by = f" by {r['by']}" if r.get("by") else ""
            return f"[{r['t']:7.2f}s] ({r['event']}{by})"
        if kind == "error":
            return f"error {r['code']}: {r['message']}"
        if kind == "prompt":
            return f"  ⚠ 提示 [{r.get('rule_id')}]: {r.get('text', '')}"
        if kind == "prompt_cleared":
            return f"  ✓ 提示已解除 [{r.get('prompt_id')}]"
        return f"call {r['call_id']} {r['status']}: {r['utterances']} utterances, {r['duration']:.1f}s"
