"""SIGTERM to a real `callwatch serve` in the middle of an utterance: the call in progress is ended properly.

The phone system hears the flushed final and `ended` (status `interrupted`), then close 1012 so it can
reconnect elsewhere; the database holds the earlier final, the flushed one and the call as `interrupted`.
The server logs JSON lines (CALLWATCH_LOG_FORMAT=json) that name the call.
"""

from __future__ import annotations

import signal
import sqlite3

import numpy as np
import pytest
from support.live_server import LiveServer
from support.server_process import ServerProcess, pcm_frames

from clients.ingest_client import CallStream
from models.text import character_error_rate

FIRST = "aishell1_S0764_W0122.wav"  # 一二线城市虽然也处于调整中: measured 0 errors on the live path
SECOND = "aishell1_S0764_W0121.wav"  # 甚至出现交易几乎停滞的情况: cut mid-sentence by the shutdown
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
CUSTOMER = 1


@pytest.fixture
def server(tmp_path):
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log", CALLWATCH_LOG_FORMAT="json").start()
    yield process
    process.stop(signal.SIGKILL)




async def test_sigterm_mid_utterance_flushes_it_ends_the_call_interrupted_and_closes_1012(server, clip, manifest, tmp_path):
    first = np.concatenate([clip(FIRST), np.zeros(16000, np.float32)])
    second = clip(SECOND)
    second_part = second[: int(2.6 * 16000)]  # about 甚至出现交易几: the speaker is still talking

    async with CallStream(server.ingest_url) as call:
        await call.start(call_id="sigterm-call", agent_id="a-7", audio=AUDIO)
        for frame in pcm_frames(first):
            await call.send_audio(frame, leg=CUSTOMER)
        before = await call.read_until(lambda r: r["type"] == "final")
        for frame in pcm_frames(second_part):
            await call.send_audio(frame, leg=CUSTOMER)
        # A partial of the second sentence proves the server has heard it and the utterance is open.
        before += await call.read_until(lambda r: r["type"] == "partial" and r["utterance_id"] == "customer-1")
        server.send_signal(signal.SIGTERM)
        after = [r async for r in call.results()]

    assert call.close_code == 1012, (call.close_code, call.close_reason)
    kinds = [r["type"] for r in after]
    assert "ended" in kinds, kinds
    ended = next(r for r in after if r["type"] == "ended")
    assert ended["status"] == "interrupted" and ended["utterances"] == 2
    flushed = [r for r in after if r["type"] == "final"]
    assert [f["utterance_id"] for f in flushed] == ["customer-1"]
    assert kinds.index("final") < kinds.index("ended") < kinds.index("report")
    event_ids = [r["event_id"] for r in before + after]
    assert event_ids == list(range(1, len(event_ids) + 1)), "nothing was lost or repeated on the way out"

    assert server.wait(60) in (0, -signal.SIGTERM)

    with sqlite3.connect(tmp_path / "data" / "callwatch.db") as db:
        status = db.execute("SELECT status FROM calls WHERE call_id = 'sigterm-call'").fetchone()[0]
        stored = db.execute("SELECT utterance_id, text FROM utterances WHERE call_id = 'sigterm-call' ORDER BY start").fetchall()
    assert status == "interrupted"
    assert [u for u, _ in stored] == ["customer-0", "customer-1"]
    errors, _ = character_error_rate(manifest[FIRST]["reference_transcript"], stored[0][1])
    assert errors <= 1, stored[0][1]
    assert stored[1][1] == flushed[0]["text"]
    # What was said of the second sentence before the cut: its first characters, not a whole invention.
    heard = set(stored[1][1]) & set(manifest[SECOND]["reference_transcript"][:8])
    assert len(heard) >= 3, stored[1][1]

    lines = server.json_log_lines()
    started = [l for l in lines if l["message"] == "call started"]
    ended_lines = [l for l in lines if l["message"] == "call ended"]
    assert started and started[0]["call_id"] == "sigterm-call" and started[0]["agent_id"] == "a-7"
    assert started[0]["logger"] == "callwatch.ingest" and started[0]["level"] == "info" and started[0]["time"].endswith("Z")
    assert ended_lines and ended_lines[0]["call_id"] == "sigterm-call" and ended_lines[0]["status"] == "interrupted"
    assert any("shutting down" in l["message"] for l in lines)


async def test_under_plain_uvicorn_a_shutdown_still_stores_the_call_interrupted_with_its_open_utterance(runtime, clip):
    """Served by uvicorn without `callwatch serve`'s ordering, the sockets are closed (1012) before the app
    hears of the shutdown: the phone system gets no `ended`, but the call and its open utterance are stored."""
    from service.app import create_app

    with LiveServer(create_app(runtime=runtime)) as server:
        async with CallStream(server.ingest_url) as call:
            await call.start(call_id="plain-uvicorn-stop", agent_id="a-7", audio=AUDIO)
            for frame in pcm_frames(clip(SECOND)[: int(2.6 * 16000)]):
                await call.send_audio(frame, leg=CUSTOMER)
            await call.read_until(lambda r: r["type"] == "partial")
            server._server.should_exit = True
            after = [r async for r in call.results()]
    runtime.metrics.draining.set(0)  # the shared runtime serves on
    assert call.close_code == 1012
    assert "ended" not in [r["type"] for r in after]
    assert runtime.store.get_call("plain-uvicorn-stop").status == "interrupted"
    stored = runtime.store.list_utterances("plain-uvicorn-stop")
    assert [u["utterance_id"] for u in stored] == ["customer-0"] and stored[0]["text"]
