"""A real `callwatch serve` killed outright (SIGKILL) in the middle of a call, then started again on the same
database: what was stored before the kill is there, and the call is marked `interrupted`."""

from __future__ import annotations

import asyncio
import signal
import sqlite3

import numpy as np
import pytest
from support.server_process import ServerProcess, pcm_frames

from clients.ingest_client import CallStream
from models.text import character_error_rate

SENTENCE = "aishell1_S0764_W0122.wav"  # measured 0 errors through the live path
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}


def call_row(db_path, call_id):
    with sqlite3.connect(db_path) as db:
        status = db.execute("SELECT status FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        utterances = db.execute("SELECT utterance_id, text FROM utterances WHERE call_id = ? ORDER BY start", (call_id,)).fetchall()
    return (status[0] if status else None), utterances


@pytest.mark.slow  # a process of its own, with the models
async def test_a_killed_server_leaves_what_it_stored_and_the_restart_marks_the_call_interrupted(tmp_path, clip, manifest):
    data = tmp_path / "data"
    first = ServerProcess(data, tmp_path / "first.log").start()
    try:
        audio = np.concatenate([clip(SENTENCE), np.zeros(16000, np.float32), clip(SENTENCE)[:16000]])
        call = CallStream(first.ingest_url)
        await call.__aenter__()
        await call.start(call_id="killed-call", agent_id="a-1", audio=AUDIO)
        for frame in pcm_frames(audio):
            await call.send_audio(frame, leg=0)

        async def first_final() -> dict:
            async for result in call.results():
                if result["type"] == "final":
                    return result
            raise AssertionError("the server closed before a final")

        final = await asyncio.wait_for(first_final(), 60)
        first.stop(signal.SIGKILL)  # no shutdown of any kind: the process is simply gone
        assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
        await call.__aexit__(None, None, None)
    finally:
        first.stop(signal.SIGKILL)

    status, stored = call_row(data / "callwatch.db", "killed-call")
    assert status == "live", "nobody could mark it: the process died"
    assert stored and stored[0] == (final["utterance_id"], final["text"]), "a final is stored before it is sent"

    second = ServerProcess(data, tmp_path / "second.log").start()
    try:
        status, stored_after = call_row(data / "callwatch.db", "killed-call")
        assert status == "interrupted"
        assert stored_after == stored
        errors, _ = character_error_rate(manifest[SENTENCE]["reference_transcript"], stored_after[0][1])
        assert errors <= 1, stored_after[0][1]
        # The restarted instance takes calls again, and the interrupted id stays taken.
        async with CallStream(second.ingest_url) as again:
            await again.start(call_id="killed-call", agent_id="a-1", audio=AUDIO)
            refused = [r async for r in again.results()]
        assert again.close_code == 4409 and refused[-1]["code"] == "duplicate_call"
    finally:
        second.stop(signal.SIGTERM)
