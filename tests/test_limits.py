"""Limits and back-pressure on the real server and models: a call this instance cannot take now is refused
with 4503 and a reason while the call in progress goes on; a call over the length limit is ended with 4413
keeping what was heard; a recogniser that falls behind says so (`asr_behind`) and still delivers every final."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import websockets
from support.server_process import pcm_frames

from clients.ingest_client import CallStream
from models.asr import DecodeRequest
from models.text import character_error_rate

SENTENCE = "aishell1_S0764_W0122.wav"  # 一二线城市虽然也处于调整中: measured 0 errors on the live path
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}


@pytest.fixture(scope="module")
def sentence(clip):
    return clip(SENTENCE)


@pytest.fixture(scope="module")
def sentence_frames(sentence):
    return pcm_frames(np.concatenate([sentence, np.zeros(16000, np.float32)]))


@pytest.fixture(scope="module")
def reference(manifest):
    return manifest[SENTENCE]["reference_transcript"]




async def refused_start(url: str, call_id: str) -> tuple[CallStream, list[dict]]:
    async with CallStream(url) as call:
        await call.start(call_id=call_id, agent_id="a-2", audio=AUDIO)
        results = [r async for r in call.results()]
    return call, results


async def say_and_hang_up(call: CallStream, frames: list[bytes]) -> list[dict]:
    for frame in frames:
        await call.send_audio(frame, leg=1)
    seen = await call.read_until(lambda r: r["type"] == "final")
    await call.event("hangup", by="customer")
    return seen + [r async for r in call.results()]


def sample(runtime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def assert_heard(runtime, call_id: str, reference: str, status: str, max_errors: int = 1) -> None:
    stored = runtime.store.list_utterances(call_id)
    assert stored, f"{call_id}: nothing stored"
    errors, _ = character_error_rate(reference, stored[0]["text"])
    assert errors <= max_errors, stored[0]["text"]
    assert runtime.store.get_call(call_id).status == status


async def test_over_the_live_call_limit_a_new_call_gets_4503_server_full_and_the_call_in_progress_goes_on(
    live_server, runtime, sentence_frames, reference, monkeypatch
):
    monkeypatch.setattr(runtime.settings, "max_live_calls", 1)
    refused_before = sample(runtime, "callwatch_calls_refused_total", reason="server_full", connector="ingest")
    async with CallStream(live_server.ingest_url) as first:
        await first.start(call_id="limit-live-1", agent_id="a-1", audio=AUDIO)
        await first.read_until(lambda r: r["type"] == "started")
        second, refused = await refused_start(live_server.ingest_url, "limit-live-2")
        assert second.close_code == 4503
        assert refused[-1]["code"] == "server_full" and refused[-1]["fatal"]
        assert "live-call limit" in refused[-1]["message"]
        results = await say_and_hang_up(first, sentence_frames)
    assert next(r for r in results if r["type"] == "ended")["status"] == "completed"
    assert runtime.store.get_call("limit-live-2") is None
    assert_heard(runtime, "limit-live-1", reference, "completed")
    assert sample(runtime, "callwatch_calls_refused_total", reason="server_full", connector="ingest") == refused_before + 1


async def test_with_the_recogniser_queue_too_deep_a_new_call_gets_4503_asr_queue_full_and_every_final_is_still_decoded(
    live_server, runtime, sentence, sentence_frames, reference, monkeypatch
):
    monkeypatch.setattr(runtime.settings, "max_asr_queue_depth", 1)
    async with CallStream(live_server.ingest_url) as first:
        await first.start(call_id="limit-queue-1", agent_id="a-1", audio=AUDIO)
        await first.read_until(lambda r: r["type"] == "started")
        # Real recognitions, as a burst of finals from many calls would queue them: three batches' worth.
        backlog = [runtime.scheduler.final(DecodeRequest(sentence[: 2 * 16000], runtime.options.final_decode))
                   for _ in range(3 * runtime.scheduler.max_batch)]
        assert runtime.scheduler.finals_waiting > 1
        second, refused = await refused_start(live_server.ingest_url, "limit-queue-2")
        assert second.close_code == 4503
        assert refused[-1]["code"] == "asr_queue_full" and "finals waiting" in refused[-1]["message"]
        # The call in progress is not refused anything: its sentence joins the queue and comes back.
        results = await say_and_hang_up(first, sentence_frames)
        decoded = await asyncio.wait_for(asyncio.gather(*backlog), 120)
    assert all(t is not None and t.text for t in decoded), "a queued final was dropped"
    assert next(r for r in results if r["type"] == "ended")["status"] == "completed"
    assert runtime.store.get_call("limit-queue-2") is None
    assert_heard(runtime, "limit-queue-1", reference, "completed")


async def test_a_call_over_the_length_limit_is_ended_with_4413_keeping_what_was_heard(
    live_server, runtime, sentence_frames, reference, monkeypatch
):
    monkeypatch.setattr(runtime.settings, "max_call_s", 3.0)
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="limit-length", agent_id="a-1", audio=AUDIO)
        try:
            for frame in sentence_frames:  # 5.1 s of audio against a 3 s limit
                await call.send_audio(frame, leg=1)
        except websockets.ConnectionClosed:
            pass  # the server may close before the last frames are out
        results = [r async for r in call.results()]
    assert call.close_code == 4413
    error = next(r for r in results if r["type"] == "error" and r["code"] == "call_too_long")
    assert error["fatal"] and "3 s" in error["message"]
    ended = next(r for r in results if r["type"] == "ended")
    assert ended["status"] == "dropped" and 3.0 < ended["duration"] < 3.1
    finals = [r for r in results if r["type"] == "final"]
    assert finals and finals[0]["end"] <= 3.1, "the open utterance was flushed at the cut"
    # The first 3 s of the sentence (一二线城市虽然也处…) were heard and kept.
    stored = runtime.store.list_utterances("limit-length")
    assert [u["text"] for u in stored] == [f["text"] for f in finals]
    assert len(set(stored[0]["text"]) & set(reference)) >= 6, stored[0]["text"]
    assert runtime.store.get_call("limit-length").status == "dropped"


async def test_a_recogniser_that_falls_behind_tells_the_call_once_and_still_delivers_the_final(
    live_server, runtime, sentence, sentence_frames, reference
):
    notices_before = sample(runtime, "callwatch_asr_behind_notices_total")
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="asr-behind", agent_id="a-1", audio=AUDIO)
        await call.read_until(lambda r: r["type"] == "started")
        # Finals go first: with a backlog of them the call's partials wait, are superseded and dropped.
        backlog = [runtime.scheduler.final(DecodeRequest(sentence[: 2 * 16000], runtime.options.final_decode))
                   for _ in range(2 * runtime.scheduler.max_batch)]
        results = await say_and_hang_up(call, sentence_frames)
        await asyncio.wait_for(asyncio.gather(*backlog), 120)
    behind = [r for r in results if r["type"] == "error" and r["code"] == "asr_behind"]
    assert len(behind) == 1 and not behind[0]["fatal"]
    assert "partials" in behind[0]["message"]
    assert next(r for r in results if r["type"] == "ended")["status"] == "completed"
    assert_heard(runtime, "asr-behind", reference, "completed")
    assert sample(runtime, "callwatch_asr_behind_notices_total") == notices_before + 1


def test_partial_drop_watch_fires_once_when_most_partials_are_dropped_not_on_a_few():
    from service.ingest import PartialDropWatch

    def watch() -> PartialDropWatch:
        return PartialDropWatch(drops=4, window_s=10.0, share=0.5)

    # A partial done every 0.6 s of call and one dropped every 2.5 s (waiting behind a final): normal.
    normal = watch()
    assert not any(normal.behind(t / 10, t // 25, t // 6) for t in range(600))
    # The same drops with hardly any partial done: behind, said once, when the fourth drop is in.
    starved = watch()
    fired = [starved.behind(t / 10, t // 25, 1) for t in range(600)]
    assert fired.count(True) == 1 and fired.index(True) == 100
    # A burst of drops among as many done partials: still fewer than half dropped, then more.
    mixed = watch()
    assert not mixed.behind(0.0, 0, 0) and not mixed.behind(1.0, 4, 5)
    assert mixed.behind(2.0, 10, 6)
