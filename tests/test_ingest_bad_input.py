"""Misbehaving clients, against the real server and models. Each test first has the server hear a real
sentence, then misbehaves, and checks the sentence was transcribed and stored all the same."""

import asyncio

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus

from clients.ingest_client import CallStream
from models.text import character_error_rate
from pipelines.audio import encode_pcm16

SENTENCE = "aishell1_S0764_W0122.wav"  # measured 0 errors through the live path
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
FRAME = 640  # 20 ms of 16-bit PCM at 16 kHz


@pytest.fixture(scope="module")
def sentence_frames(clip):
    audio = np.concatenate([clip(SENTENCE), np.zeros(16000, np.float32)])
    pcm = encode_pcm16(audio)
    return [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]


@pytest.fixture(scope="module")
def reference(manifest):
    return manifest[SENTENCE]["reference_transcript"]




def ended(results):
    return next(r for r in results if r["type"] == "ended")


def is_final(result):
    return result["type"] == "final"


async def say_sentence(call, frames, leg=0):
    for frame in frames:
        await call.send_audio(frame, leg=leg)
    return await call.read_until(is_final)


def assert_sentence_stored(runtime, call_id, reference, status):
    utterances = runtime.store.list_utterances(call_id)
    assert utterances, "the sentence heard before the error was lost"
    errors, length = character_error_rate(reference, utterances[0]["text"])
    assert errors <= 1, utterances[0]["text"]
    assert runtime.store.get_call(call_id).status == status


async def wait_for_status(runtime, call_id, status, timeout=30.0):
    for _ in range(int(timeout * 10)):
        call = runtime.store.get_call(call_id)
        if call is not None and call.status == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{call_id} never became {status}")


async def test_malformed_json_closes_with_4400_and_keeps_what_was_heard(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="bad-json", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call._ws.send("{this is not json")
        rest = [r async for r in call.results()]
    error = next(r for r in rest if r["type"] == "error")
    assert error["code"] == "malformed_json" and error["fatal"]
    assert call.close_code == 4400
    await wait_for_status(runtime, "bad-json", "dropped")
    assert_sentence_stored(runtime, "bad-json", reference, "dropped")


async def test_json_nested_too_deep_closes_with_4400_and_keeps_what_was_heard(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="deep-json", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call._ws.send("[" * 100_000 + "]" * 100_000)  # valid JSON, deeper than any parser's stack
        rest = [r async for r in call.results()]
    error = next(r for r in rest if r["type"] == "error")
    assert error["code"] == "malformed_json" and error["fatal"] and "too deeply" in error["message"]
    assert call.close_code == 4400 and "too deeply" in call.close_reason
    await wait_for_status(runtime, "deep-json", "dropped")
    assert_sentence_stored(runtime, "deep-json", reference, "dropped")


async def test_unknown_message_type_is_reported_and_the_call_goes_on(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="unknown-type", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call.send_json({"type": "dance", "style": "waltz"})
        errors = await call.read_until(lambda r: r["type"] == "error")
        assert errors[-1]["code"] == "unknown_type" and "dance" in errors[-1]["message"]
        await call.event("hangup", by="customer")
        rest = [r async for r in call.results()]
    assert ended(rest)["status"] == "completed"
    assert call.close_code == 1000
    assert_sentence_stored(runtime, "unknown-type", reference, "completed")


async def test_audio_before_start_is_refused_then_the_call_works(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as call:
        await call.send_audio(sentence_frames[0], leg=0)
        first = await call.read_until(lambda r: r["type"] == "error")
        assert first[-1]["code"] == "audio_before_start"
        await call.start(call_id="audio-first", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call.event("hangup", by="agent")
        [r async for r in call.results()]
    assert_sentence_stored(runtime, "audio-first", reference, "completed")


async def test_a_wrong_sample_rate_is_named_and_earlier_audio_kept(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="bad-rate", agent_id="a1", audio={**AUDIO, "sample_rate": 4000})
        refused = await call.read_until(lambda r: r["type"] == "error")
        assert refused[-1]["code"] == "invalid_message"
        assert "audio.sample_rate" in refused[-1]["message"]
        await call.start(call_id="bad-rate", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        # A phone system that tries to change the format mid-call is told so; the call keeps its format.
        await call.start(call_id="bad-rate", agent_id="a1", audio={**AUDIO, "sample_rate": 96000})
        again = await call.read_until(lambda r: r["type"] == "error")
        assert "sample_rate" in again[-1]["message"]
        await call.event("hangup", by="customer")
        [r async for r in call.results()]
    assert_sentence_stored(runtime, "bad-rate", reference, "completed")


async def test_odd_length_pcm_is_reported_and_the_sentence_still_transcribed(live_server, runtime, sentence_frames, reference):
    frames = list(sentence_frames)
    frames[40] = frames[40] + b"\x00"  # one stray byte in the middle of the sentence
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="odd-pcm", agent_id="a1", audio=AUDIO)
        seen = await say_sentence(call, frames)
        await call.event("hangup", by="customer")
        [r async for r in call.results()]
    errors = [r for r in seen if r["type"] == "error"]
    assert errors and errors[0]["code"] == "bad_audio_frame" and not errors[0]["fatal"]
    assert_sentence_stored(runtime, "odd-pcm", reference, "completed")


async def test_a_frame_over_the_size_limit_is_dropped_with_an_error(live_server, runtime, sentence_frames, reference):
    limit = runtime.settings.max_frame_bytes
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id="huge-frame", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call.send_audio(b"\x00" * (limit + 2), leg=1)
        errors = await call.read_until(lambda r: r["type"] == "error")
        assert errors[-1]["code"] == "frame_too_large"
        await call.event("hangup", by="customer")
        rest = [r async for r in call.results()]
    assert ended(rest)["status"] == "completed"
    assert_sentence_stored(runtime, "huge-frame", reference, "completed")


async def test_a_client_that_vanishes_mid_utterance_leaves_a_dropped_call_with_the_utterance(
    live_server, runtime, sentence_frames, reference
):
    speech_only = sentence_frames[: len(sentence_frames) - 50]  # the sentence, cut before its trailing silence
    call = CallStream(live_server.ingest_url)
    await call.__aenter__()
    await call.start(call_id="vanished", agent_id="a1", audio=AUDIO)
    for frame in speech_only:
        await call.send_audio(frame, leg=1)
    await asyncio.sleep(0.2)
    call._ws.transport.abort()  # no close handshake, no hangup: the phone system just went away
    await wait_for_status(runtime, "vanished", "dropped")
    utterances = runtime.store.list_utterances("vanished")
    assert utterances and utterances[0]["speaker"] == "customer"
    errors, _ = character_error_rate(reference, utterances[0]["text"])
    assert errors <= 2, utterances[0]["text"]


async def test_a_second_call_with_a_live_call_id_is_refused_with_4409(live_server, runtime, sentence_frames, reference):
    async with CallStream(live_server.ingest_url) as first:
        await first.start(call_id="same-id", agent_id="a1", audio=AUDIO)
        await say_sentence(first, sentence_frames)
        async with CallStream(live_server.ingest_url) as second:
            await second.start(call_id="same-id", agent_id="a2", audio=AUDIO)
            refused = [r async for r in second.results()]
        assert refused[-1]["code"] == "duplicate_call" and refused[-1]["fatal"]
        assert second.close_code == 4409
        await first.event("hangup", by="customer")
        rest = [r async for r in first.results()]
    assert ended(rest)["status"] == "completed"
    assert runtime.store.get_call("same-id").agent_id == "a1"
    assert_sentence_stored(runtime, "same-id", reference, "completed")

    async with CallStream(live_server.ingest_url) as late:  # also once the first call is over
        await late.start(call_id="same-id", agent_id="a3", audio=AUDIO)
        [r async for r in late.results()]
    assert late.close_code == 4409


async def test_with_ingest_keys_a_missing_or_wrong_key_is_refused_and_the_right_one_admitted(
    live_server, runtime, sentence_frames, reference, monkeypatch
):
    monkeypatch.setattr(runtime.settings, "ingest_keys", {"pbx-east": "k-east-123"})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "k-east-123"}):
        # Closing before accepting refuses the websocket handshake itself: HTTP 403, nothing read.
        with pytest.raises(InvalidStatus) as refused:
            async with CallStream(live_server.ingest_url, headers) as call:
                await call.start(call_id="keyed-refused", agent_id="a1", audio=AUDIO)
        assert refused.value.response.status_code == 403, headers
    assert runtime.store.get_call("keyed-refused") is None

    async with CallStream(live_server.ingest_url, {"Authorization": "Bearer k-east-123"}) as call:
        await call.start(call_id="keyed-ok", agent_id="a1", audio=AUDIO)
        await say_sentence(call, sentence_frames)
        await call.event("hangup", by="customer")
        [r async for r in call.results()]
    assert_sentence_stored(runtime, "keyed-ok", reference, "completed")
