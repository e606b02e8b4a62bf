"""Connections that hold a place without using it are closed, on a real uvicorn server configured as
`callwatch serve` runs it, with a real keys file (two integrators) and the real models: an ingest socket
with no valid `start` in time (4401), a call whose client goes quiet (4408, `dropped`, what was heard kept),
an integrator's sockets past its limit (4503 `too_many_sockets`), and TCP connections that never finish
their HTTP request head (closed by the server). A call that streams, and a websocket open longer than those
timeouts, go on untouched. docs/security.md#connection-limits."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import websockets
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from support.server_process import pcm_frames

from clients.ingest_client import CallStream
from models.text import character_error_rate
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.app_state import app_state_of

SENTENCE = "aishell1_S0764_W0122.wav"  # 一二线城市虽然也处于调整中: measured 0 errors on the live path
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
SILENCE = bytes(640)  # 20 ms of 16 kHz pcm_s16le
HEAD_TIMEOUT_S = 1.0
MARGIN_S = 3.0  # a busy 2-core machine: a timer may fire late, never early


@dataclass
class Guarded:
    served: LiveServer
    runtime: Any
    app: Any
    keys: dict[str, str]

    @property
    def ingest_url(self) -> str:
        return f"{self.served.ws_url}/v1/ingest"

    def call(self, integrator: str) -> CallStream:
        return CallStream(self.ingest_url, {"Authorization": f"Bearer {self.keys[integrator]}"})


@pytest.fixture(scope="module")
def guarded(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    tmp: Path = tmp_path_factory.mktemp("connection-limits")
    keys = {name: f"cw_{secrets.token_urlsafe(16)}" for name in ("pbx-acme", "pbx-globex")}
    spec = KeysFile(principals=[PrincipalSpec(role="integrator", name=name, keys=[KeySpec(sha256=digest_of(key))])
                                for name, key in keys.items()])
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml", request_head_timeout_s=HEAD_TIMEOUT_S)
    app = create_app(runtime=rt)
    try:
        with LiveServer(app, settings=rt.settings) as served:
            yield Guarded(served, rt, app, keys)
    finally:
        close_private(rt)


@pytest.fixture(scope="module")
def sentence_frames(clip: Any) -> list[bytes]:
    return pcm_frames(np.concatenate([clip(SENTENCE), np.zeros(16000, np.float32)]))


async def closed_within(call: CallStream, seconds: float) -> tuple[list[dict[str, Any]], float]:
    """Every result until the server closes the socket, and when it closed (monotonic); fails if it stays
    open longer than `seconds`."""
    async def read() -> list[dict[str, Any]]:
        return [r async for r in call.results()]

    try:
        results = await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        raise AssertionError(f"the server left the socket open for more than {seconds:g} s") from None
    return results, time.monotonic()


def fatal_error(results: list[dict[str, Any]], code: str) -> dict[str, Any]:
    error = next(r for r in results if r["type"] == "error" and r["code"] == code)
    assert error["fatal"], error
    return error


async def stream_silence_and_hang_up(call: CallStream, seconds: float) -> list[dict[str, Any]]:
    """A phone system's call: audio every 20 ms, silence included, then a hangup."""
    for _ in range(int(seconds / 0.02)):
        await call.send_audio(SILENCE, leg=0)
        await asyncio.sleep(0.02)
    await call.event("hangup", by="customer")
    return [r async for r in call.results()]


async def test_a_socket_without_a_valid_start_in_time_is_closed_with_4401_and_a_streaming_call_goes_on(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = guarded.runtime.settings
    monkeypatch.setattr(settings, "ingest_start_timeout_s", 1.0)
    monkeypatch.setattr(settings, "ingest_idle_timeout_s", 1.0)
    opened = time.monotonic()
    async with guarded.call("pbx-acme") as silent, guarded.call("pbx-acme") as chatty, \
            guarded.call("pbx-acme") as streaming:

        async def chatter() -> None:
            # Frames all the time, but never a valid start: the deadline runs from the opening, not the last frame.
            try:
                while chatty.close_code is None:
                    await chatty.send_audio(SILENCE, leg=0)
                    await chatty.send_json({"type": "event", "event": "answered"})
                    await asyncio.sleep(0.1)
            except websockets.ConnectionClosed:
                pass

        await streaming.start(call_id="limits-streaming", agent_id="a1", audio=AUDIO)
        # The streaming call goes on past both the start and the idle timeout while the others are closed.
        streamed, (silent_results, silent_at), (chatty_results, chatty_at), _ = await asyncio.gather(
            stream_silence_and_hang_up(streaming, 2.5),
            closed_within(silent, 1.0 + MARGIN_S), closed_within(chatty, 1.0 + MARGIN_S), chatter())
    for call, results, closed_at in ((silent, silent_results, silent_at), (chatty, chatty_results, chatty_at)):
        assert call.close_code == 4401 and call.close_reason.startswith("start_timeout:"), call.close_reason
        assert "1 s" in fatal_error(results, "start_timeout")["message"]
        assert closed_at - opened >= 1.0
    assert next(r for r in streamed if r["type"] == "ended")["status"] == "completed"
    assert streaming.close_code == 1000
    assert guarded.runtime.store.get_call("limits-streaming").status == "completed"


async def test_a_call_whose_client_goes_quiet_is_ended_dropped_with_4408_keeping_what_was_heard(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch, sentence_frames: list[bytes], manifest: Any
) -> None:
    idle_s = 3.0
    monkeypatch.setattr(guarded.runtime.settings, "ingest_idle_timeout_s", idle_s)
    async with guarded.call("pbx-acme") as call:
        await call.start(call_id="limits-idle", agent_id="a1", audio=AUDIO)
        for frame in sentence_frames:
            await call.send_audio(frame, leg=1)
        quiet_from = time.monotonic()
        # The final may take a while on a busy machine; the call is cut only after idle_s of quiet.
        results, closed_at = await closed_within(call, idle_s + 60)
    assert closed_at - quiet_from >= idle_s
    assert call.close_code == 4408 and call.close_reason.startswith("client_idle:"), call.close_reason
    assert "3 s" in fatal_error(results, "client_idle")["message"]
    assert next(r for r in results if r["type"] == "ended")["status"] == "dropped"
    store = guarded.runtime.store
    assert store.get_call("limits-idle").status == "dropped"
    stored = store.list_utterances("limits-idle")
    assert stored, "what was heard before the client went quiet was lost"
    errors, _ = character_error_rate(manifest[SENTENCE]["reference_transcript"], stored[0]["text"])
    assert errors <= 1, stored[0]["text"]


async def test_past_its_socket_limit_an_integrators_next_socket_is_closed_with_4503_too_many_sockets(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guarded.runtime.settings, "max_ingest_sockets_per_integrator", 3)
    def refused() -> float:
        return guarded.runtime.metrics.registry.get_sample_value(
            "callwatch_calls_refused_total", {"reason": "too_many_sockets", "connector": "ingest"}) or 0.0

    refused_before = refused()
    connections = app_state_of(guarded.app).ingest_connections
    async with AsyncExitStack() as stack:
        held = [await stack.enter_async_context(guarded.call("pbx-acme")) for _ in range(3)]
        async with guarded.call("pbx-acme") as over:
            results, _ = await closed_within(over, MARGIN_S)
        assert over.close_code == 4503 and over.close_reason.startswith("too_many_sockets:"), over.close_reason
        assert "3 ingest sockets" in fatal_error(results, "too_many_sockets")["message"]
        assert refused() == refused_before + 1
        # Another integrator's calls are not held back by acme's sockets.
        async with guarded.call("pbx-globex") as other:
            await other.start(call_id="limits-globex", agent_id="g1", audio=AUDIO)
            assert next(r for r in await stream_silence_and_hang_up(other, 0.2) if r["type"] == "ended")["status"] == "completed"
        # A socket closed gives its place back.
        await held[0]._ws.close()
        for _ in range(50):
            if len(connections) == 2:
                break
            await asyncio.sleep(0.1)
        async with guarded.call("pbx-acme") as again:
            await again.start(call_id="limits-acme-again", agent_id="a1", audio=AUDIO)
            assert next(r for r in await stream_silence_and_hang_up(again, 0.2) if r["type"] == "ended")["status"] == "completed"
        for call in held[1:]:
            assert call.close_code is None, "a socket within the limit was closed"


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return head


def closed_by_server(sock: socket.socket, deadline: float) -> float | None:
    """When the server closed `sock` (monotonic), or None if it was still open at `deadline`."""
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(4096):
                return time.monotonic()
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic()
    except (TimeoutError, socket.timeout):
        return None


async def test_tcp_connections_that_never_finish_their_request_head_are_closed_at_the_head_timeout(
    guarded: Guarded,
) -> None:
    address = ("127.0.0.1", guarded.served.port)
    async with guarded.call("pbx-acme") as websocket:  # open past the head timeout, and still served
        opened = time.monotonic()
        quiet = [socket.create_connection(address) for _ in range(20)]
        half_line = socket.create_connection(address)
        half_line.sendall(b"GET /heal")
        half_head = socket.create_connection(address)
        half_head.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # A kept-alive connection: the first request is answered, the second never finishes its head.
        kept = socket.create_connection(address)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(kept).startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 1")
        answered = time.monotonic()
        deadline = time.monotonic() + HEAD_TIMEOUT_S + MARGIN_S
        closes = {f"quiet-{i}": closed_by_server(s, deadline) for i, s in enumerate(quiet)}
        closes |= {"half request line": closed_by_server(half_line, deadline),
                   "half head": closed_by_server(half_head, deadline),
                   "kept alive, half a second head": closed_by_server(kept, deadline)}
        for sock in [*quiet, half_line, half_head, kept]:
            sock.close()
        still_open = [name for name, at in closes.items() if at is None]
        assert not still_open, f"open {HEAD_TIMEOUT_S + MARGIN_S:g} s after connecting: {still_open}"
        first_close = min(at for name, at in closes.items() if name != "kept alive, half a second head")
        assert first_close - opened >= HEAD_TIMEOUT_S * 0.9
        assert closes["kept alive, half a second head"] - answered >= HEAD_TIMEOUT_S * 0.5
        await websocket.start(call_id="limits-websocket-past-head-timeout", agent_id="a1", audio=AUDIO)
        streamed = await stream_silence_and_hang_up(websocket, 0.2)
    assert next(r for r in streamed if r["type"] == "ended")["status"] == "completed"
