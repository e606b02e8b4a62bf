"""A two-party call streamed through a real uvicorn server on loopback with the real client and models."""

from pathlib import Path

import pytest

from clients.ingest_client import stream_file
from models.text import character_error_rate, to_simplified
from support.heard import BOUNDS, second_pass_stored, speaker_cer


@pytest.mark.parametrize("encoding", ["pcm_s16le", "mulaw"])
async def test_stereo_call_comes_back_with_both_speakers_in_simplified_chinese(
    live_server, runtime, shared_audio: Path, call_timeline, encoding
):
    name = "call_01_read_vs_spontaneous"
    results: list[dict] = []
    call_id = f"live-{encoding}"
    ended = await stream_file(
        shared_audio / "calls" / f"{name}.wav", url=live_server.ingest_url, call_id=call_id,
        encoding=encoding, on_result=results.append,
    )
    assert ended and ended["status"] == "completed"

    event_ids = [r["event_id"] for r in results]
    assert event_ids == list(range(1, len(results) + 1)), "event ids increase by one, from 1"
    finals = [r for r in results if r["type"] == "final"]
    assert {f["speaker"] for f in finals} == {"agent", "customer"}
    for final in finals:
        assert final["text"] == to_simplified(final["text"])
        assert final["text"][-1] in "。？！"

    timeline = call_timeline(name)
    for role in ("agent", "customer"):
        assert speaker_cer(finals, timeline, role) <= BOUNDS[(encoding, role)], role

    # Each final lies within a reference turn of the same speaker.
    for final in finals:
        assert any(
            t["role"] == final["speaker"] and t["start_s"] - 0.3 <= final["start"] <= t["end_s"]
            for t in timeline["turns"]
        ), final

    # Once the call has ended, the second pass hears each leg again: the stored transcript is its text, the
    # lines the agent saw are kept beside it, and the stored report is judged on it and says so.
    stored = await second_pass_stored(runtime, call_id)
    assert [(u["utterance_id"], u["live_text"]) for u in stored if u["live_text"] is not None] == [
        (f["utterance_id"], f["text"]) for f in sorted(finals, key=lambda f: f["start"])
    ]
    assert all(u["text_pass"] == "second" for u in stored)
    second = "".join(u["text"] for u in stored if u["speaker"] == "agent")
    reference = "".join(t["text"] for t in timeline["turns"] if t["role"] == "agent")
    assert character_error_rate(reference, second)[0] <= character_error_rate(
        reference, "".join(f["text"] for f in sorted(finals, key=lambda f: f["start"]) if f["speaker"] == "agent"))[0] + 2
    call = runtime.store.get_call(call_id)
    assert call.report["transcript"] == "second_pass"
    assert call.status == "completed" and abs(call.duration - timeline["duration_s"]) < 0.1
    assert [e["event"] for e in runtime.store.list_events(call_id)] == ["answered", "hangup"]

    # Every customer final is followed by the customer's mood; the agent's are not judged for it.
    emotions = {r["utterance_id"]: r for r in results if r["type"] == "emotion"}
    assert set(emotions) == {f["utterance_id"] for f in finals if f["speaker"] == "customer"}
    for utterance in (u for u in stored if u["live_text"] is not None):  # the mood follows the live finals
        assert (utterance["emotion"] is not None) == (utterance["speaker"] == "customer")
        if utterance["emotion"]:
            assert utterance["emotion"]["label"] == emotions[utterance["utterance_id"]]["label"]

    # The rules judged the call after it ended: the report follows `ended` and is stored with the call.
    kinds = [r["type"] for r in results]
    assert kinds[-2:] == ["ended", "report"]
    report = results[-1]
    assert 0 <= report["score"] <= 100
    # This assembled call has no greeting, company name or goodbye: a QA supervisor would mark those.
    assert {"opening.greeting", "closing.goodbye"} <= {f["rule_id"] for f in report["findings"]}
    assert report["transcript"] == "live" and call.report["findings"]


async def test_partials_arrive_before_the_final_when_streamed_in_real_time(live_server, runtime, shared_audio):
    # Earlier calls' second passes share the recogniser's spare lane with partials: let them finish first,
    # so what is counted is this call's own cadence.
    import asyncio

    while runtime.post_call:
        await asyncio.sleep(0.2)
    results: list[dict] = []
    await stream_file(
        shared_audio / "calls" / "call_01_read_vs_spontaneous.wav", url=live_server.ingest_url,
        call_id="live-realtime-partials", realtime=True, speed=2.0, on_result=results.append,
    )
    first_final = {}
    for r in results:
        if r["type"] == "final":
            first_final.setdefault(r["utterance_id"], r["event_id"])
    partial_before_final = [
        r for r in results if r["type"] == "partial" and r["event_id"] < first_final.get(r["utterance_id"], 0)
    ]
    assert len(partial_before_final) >= 3
    # A partial never follows the final of its utterance.
    assert all(r["event_id"] < first_final.get(r["utterance_id"], 10**9) for r in results if r["type"] == "partial")


async def test_a_short_final_decoded_beside_a_long_one_waits_for_it(live_server, clip, tmp_path):
    # A long turn, a pause, then a short one, sent as fast as the socket takes them: both reach the
    # recogniser together, and the short one is decoded first. It must still arrive second.
    import numpy as np
    import soundfile as sf

    pause = np.zeros(16000, np.float32)
    long_turn = clip("mossttsd_pod_f.wav")[: 16000 * 11]
    short_turn = clip("aishell2_IT0011_W0001.wav")
    path = tmp_path / "long_then_short.wav"
    sf.write(path, np.concatenate([long_turn, pause, short_turn, pause]), 16000)
    results: list[dict] = []
    await stream_file(path, url=live_server.ingest_url, call_id="live-order", on_result=results.append)
    starts = [r["start"] for r in results if r["type"] == "final"]
    assert len(starts) >= 2 and starts[-1] > 11.5, starts
    assert starts == sorted(starts)


async def test_a_call_that_ends_right_after_speech_keeps_its_last_words(live_server, clip, tmp_path):
    # The clip cut where its last syllable fades, at no multiple of the VAD's 32 ms chunk: the call's
    # last words are in the part-chunk the VAD never judges.
    import numpy as np
    import soundfile as sf

    speech = clip("aishell1_S0764_W0122.wav")  # 一二线城市虽然也处于调整中
    loud = np.flatnonzero(np.abs(speech) > 0.05 * np.abs(speech).max())
    cut = speech[: loud[-1] + 160]
    assert len(cut) % 512 not in (0, 511)
    path = tmp_path / "ends_in_speech.wav"
    sf.write(path, np.concatenate([np.zeros(8000, np.float32), cut]), 16000)
    results: list[dict] = []
    await stream_file(path, url=live_server.ingest_url, call_id="live-ends-in-speech", on_result=results.append)
    heard = "".join(r["text"] for r in results if r["type"] == "final")
    assert "调整" in heard, heard


async def test_a_dead_air_prompt_is_cleared_as_soon_as_the_customer_speaks(live_server, clip, tmp_path):
    # The agent speaks, then neither side for 12 s, then the customer: the real VAD and rules raise dead air,
    # and take it off the screen on the customer's voice, before the recogniser has any of their words.
    import numpy as np
    import soundfile as sf

    agent = clip("aishell1_S0764_W0122.wav")  # 一二线城市虽然也处于调整中 (4.1 s)
    customer = clip("wenetspeech_TEST_NET_Y0000000000_S00000.wav")  # 我有的时候说不清楚你们知道吗 (1.8 s)
    gap, tail = np.zeros(12 * 16000, np.float32), np.zeros(2 * 16000, np.float32)
    left = np.concatenate([agent, gap, np.zeros_like(customer), tail])
    right = np.concatenate([np.zeros_like(agent), gap, customer, tail])
    path = tmp_path / "dead_air.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000)
    results: list[dict] = []
    await stream_file(path, url=live_server.ingest_url, call_id="live-dead-air-cleared", on_result=results.append)

    [prompt] = [r for r in results if r["type"] == "prompt" and r["rule_id"] == "listen.dead_air"]
    [cleared] = [r for r in results if r["type"] == "prompt_cleared"]
    words = [r for r in results if r["type"] in ("partial", "final") and r["speaker"] == "customer"]
    assert cleared["prompt_id"] == prompt["prompt_id"]
    assert words and prompt["event_id"] < cleared["event_id"] < words[0]["event_id"]
    assert [r["event_id"] for r in results] == list(range(1, len(results) + 1))
    report = results[-1]
    assert "listen.dead_air" in {f["rule_id"] for f in report["findings"]}  # cleared, still a finding


def _customer_then_quiet(clip, tmp_path, quiet_s: float):
    """A stereo call: the agent silent; the customer's 我有的时候说不清楚你们知道吗 (1.8 s) after 0.5 s, then
    `quiet_s` of silence, where the call ends. Silero hears the words end at 2.21 s, so a hangup 0.1 s after
    the clip finds the utterance open, 0.35 s after it settled (its early final decoding), 0.5 s after it
    closed."""
    import numpy as np
    import soundfile as sf

    words = clip("wenetspeech_TEST_NET_Y0000000000_S00000.wav")
    customer = np.concatenate([np.zeros(8000, np.float32), words, np.zeros(int(quiet_s * 16000), np.float32)])
    path = tmp_path / f"hangup_after_{quiet_s}.wav"
    sf.write(path, np.stack([np.zeros_like(customer), customer], axis=1), 16000)
    return path


@pytest.mark.parametrize("quiet_s", [0.1, 0.35, 0.5])
async def test_a_customer_who_hangs_up_right_after_speaking_gets_the_last_final_before_ended(
    live_server, clip, tmp_path, quiet_s
):
    # The hangup comes while the last utterance is open, settled or closed but still being decoded: it is
    # closed, decoded and sent before `ended`, and stored.
    import httpx

    call_id = f"live-quick-hangup-{quiet_s}"
    results: list[dict] = []
    ended = await stream_file(_customer_then_quiet(clip, tmp_path, quiet_s), url=live_server.ingest_url,
                              call_id=call_id, on_result=results.append)
    assert ended and ended["status"] == "completed" and ended["utterances"] == 1
    [final] = [r for r in results if r["type"] == "final"]
    assert final["utterance_id"] == "customer-0" and "知道" in final["text"], final
    assert final["event_id"] < ended["event_id"]
    assert [r["type"] for r in results][-2:] == ["ended", "report"]
    async with httpx.AsyncClient() as http:
        stored = (await http.get(f"{live_server.url}/v1/calls/{call_id}", timeout=10)).json()
    assert [u["utterance_id"] for u in stored["utterances"]] == ["customer-0"]


async def test_a_client_that_closes_right_after_its_hangup_still_has_the_last_words_stored(
    live_server, runtime, clip, tmp_path
):
    # A client that closes its socket right after the hangup (as FreeSWITCH's `stop` does after its text)
    # hears nothing more: its close is answered at once, below the app. What was heard is kept all the same.
    import asyncio

    import soundfile as sf

    from clients.ingest_client import CallStream
    from pipelines.audio import encode_pcm16

    call_id = "live-hangup-then-close"
    audio, rate = sf.read(_customer_then_quiet(clip, tmp_path, 0.35), dtype="float32")
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id=call_id, agent_id="a-quick", audio={"encoding": "pcm_s16le", "sample_rate": rate,
                                                                     "layout": "stereo"})
        for i in range(0, len(audio), 320):
            await call.send_audio(encode_pcm16(audio[i : i + 320].reshape(-1)))
        await call.event("hangup", by="customer")
    for _ in range(600):
        stored = runtime.store.get_call(call_id)
        if stored is not None and stored.status != "live":
            break
        await asyncio.sleep(0.1)
    assert stored.status == "completed" and stored.report is not None
    [utterance] = [u for u in runtime.store.list_utterances(call_id)]
    assert utterance["utterance_id"] == "customer-0" and "知道" in (utterance["live_text"] or utterance["text"])


async def test_past_the_second_pass_backlog_a_call_keeps_its_live_transcript(live_server, runtime, clip, tmp_path):
    # Ended calls wait for the second pass holding their speech; the backlog is bounded in seconds of speech
    # (service/post_call.py). With room for less than this call holds, the call is not queued: it keeps its live
    # transcript and report, and the skip is counted.
    import asyncio

    import numpy as np
    import soundfile as sf

    speech = clip("aishell1_S0764_W0122.wav")  # 4.1 s
    path = tmp_path / "one_turn.wav"
    sf.write(path, np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000, np.float32)]), 16000)
    while runtime.post_call:
        await asyncio.sleep(0.2)
    skipped_before = runtime.metrics.second_pass_skipped._value.get()
    limit = runtime.post_call.limit_s
    runtime.post_call.limit_s = 1.0
    try:
        results: list[dict] = []
        await stream_file(path, url=live_server.ingest_url, call_id="live-backlog-full", on_result=results.append)
        assert any(r["type"] == "final" for r in results)
        assert not runtime.post_call and runtime.post_call.speech_s == 0.0
        assert runtime.metrics.second_pass_skipped._value.get() == skipped_before + 1
    finally:
        runtime.post_call.limit_s = limit
    call = runtime.store.get_call("live-backlog-full")
    assert call.report["transcript"] == "live"
    assert all(u["text_pass"] == "live" for u in runtime.store.list_utterances("live-backlog-full"))

    # With room again, the next call is heard a second time, and the backlog is empty once it has been.
    await stream_file(path, url=live_server.ingest_url, call_id="live-backlog-room", on_result=lambda r: None)
    stored = await second_pass_stored(runtime, "live-backlog-room")
    assert all(u["text_pass"] == "second" for u in stored)
    while runtime.post_call:
        await asyncio.sleep(0.2)
    assert runtime.post_call.speech_s == 0.0
