"""A live socket is read at real time once its audio runs ahead of the wall clock by the allowed lead, so one
client flooding audio cannot take more than a real-time call's share of the recogniser."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest

from websockets.exceptions import ConnectionClosed

from clients.ingest_client import CallStream
from service.pacing import RealTimePacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_audio_within_the_lead_is_read_at_once_and_beyond_it_at_real_time():
    clock = FakeClock()
    pacer = RealTimePacer(max_lead_s=10.0, clock=clock)
    assert pacer.delay(0.02) == 0.0  # the first frame
    assert pacer.delay(10.0) == 0.0  # 10 s sent at once: within the lead
    assert pacer.delay(14.0) == pytest.approx(4.0 - 0.02)  # past the lead (the first frame counts as received)
    clock.now += 4.0
    assert pacer.delay(14.0) == 0.0  # the wall clock caught up
    clock.now += 60.0
    assert pacer.delay(15.0) == 0.0  # a call that fell behind real time is never held


def test_a_call_streamed_at_real_time_is_never_held():
    clock = FakeClock()
    pacer = RealTimePacer(max_lead_s=0.5, clock=clock)
    for frame in range(1, 500):
        clock.now += 0.02
        assert pacer.delay(frame * 0.02) == 0.0


MONO_16K = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "mono"}
SECOND = np.zeros(16000, dtype=np.int16).tobytes()


async def send_seconds(call: CallStream, seconds: float) -> None:
    """That much audio, in 0.2 s frames, as fast as the socket takes it."""
    audio = SECOND * int(seconds) + SECOND[: int(len(SECOND) * (seconds % 1)) // 2 * 2]
    for i in range(0, len(audio), 6400):
        await call.send_audio(audio[i : i + 6400])


async def test_a_client_that_sends_faster_than_real_time_is_read_at_real_time_past_the_lead(
        live_server, runtime, monkeypatch):
    monkeypatch.setattr(runtime.settings, "live_max_lead_s", 2.0)
    paced_before = runtime.metrics.ingest_paced_seconds._value.get()
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="paced-burst", agent_id="pb", audio=MONO_16K)
        began = time.monotonic()
        await send_seconds(call, 3.6)  # 1.6 s past the lead: held back, not refused
        await call.event("hangup", by="customer")
        results = [r async for r in call.results()]
        took = time.monotonic() - began
    ended = next(r for r in results if r["type"] == "ended")
    assert ended["status"] == "completed" and ended["duration"] == 3.6  # nothing lost to the pacing
    assert not [r for r in results if r["type"] == "error"]
    assert took >= 1.6 - 0.3, f"3.6 s of audio with a 2 s lead was taken in {took:.2f} s"
    assert runtime.metrics.ingest_paced_seconds._value.get() - paced_before >= 1.3


async def test_a_client_that_keeps_flooding_past_a_second_lead_is_closed_with_4429_keeping_what_was_heard(
        live_server, runtime, monkeypatch):
    monkeypatch.setattr(runtime.settings, "live_max_lead_s", 1.0)
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="paced-flood", agent_id="pf", audio=MONO_16K)
        with contextlib.suppress(ConnectionClosed):
            await send_seconds(call, 30.0)
        results = [r async for r in call.results()]
    assert call.close_code == 4429
    error = next(r for r in results if r["type"] == "error")
    assert error["code"] == "too_fast" and error["fatal"]
    ended = next(r for r in results if r["type"] == "ended")
    assert ended["status"] == "dropped" and 1.0 <= ended["duration"] <= 2.5
    record = runtime.store.get_call("paced-flood")
    assert record.status == "dropped" and record.duration == ended["duration"]


async def test_a_client_that_vanishes_while_its_audio_is_held_back_ends_its_call_as_dropped(
        live_server, runtime, monkeypatch):
    # Held-back audio is taken after the socket is gone; asking the socket again raised inside starlette, and
    # the call stayed `live` for ever.
    monkeypatch.setattr(runtime.settings, "live_max_lead_s", 1.0)
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="paced-vanish", agent_id="pv", audio=MONO_16K)
        await send_seconds(call, 1.8)  # 0.8 s past the lead: held back, within the second lead
    deadline = time.monotonic() + 15
    while ((record := runtime.store.get_call("paced-vanish")) is None or record.status == "live") \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert record is not None and record.status == "dropped" and record.duration == pytest.approx(1.8, abs=0.05)
    assert "paced-vanish" not in runtime.sessions
