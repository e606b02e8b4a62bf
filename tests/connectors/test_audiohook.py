"""Genesys Cloud AudioHook (protocol version 2) through a real server: uvicorn on loopback, the real models,
a real SQLite store. The client is clients/platforms/audiohook.py, written from Genesys's protocol
reference: it opens the session as Genesys does, streams the shared two-party recording as PCMU stereo,
holds, pings, and closes waiting for `closed`. docs/connectors.md#genesys-cloud-audiohook."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from support.heard import second_pass_stored

from clients.platforms.audiohook import play_call
from support.heard import BOUNDS, speaker_cer

CHANNEL_SPEAKER = {"external": "customer", "internal": "agent"}
HOLD = (12.3, 3.0)  # between the agent's second turn (ends 12.0 s) and the customer's (starts 13.1 s)


def finals_sent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final transcripts the server sent back, as lines with `speaker`, `start` and `text`."""
    lines = []
    for message in messages:
        if message["type"] != "event":
            continue
        for entity in message["parameters"]["entities"]:
            data = entity["data"]
            if entity["type"] == "transcript" and data["isFinal"]:
                lines.append({"speaker": CHANNEL_SPEAKER[data["channel"]], "start": float(data["offset"][2:-1]),
                              "end": float(data["offset"][2:-1]) + float(data["duration"][2:-1]),
                              "text": data["alternatives"][0]["interpretations"][0]["transcript"]})
    return lines


@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_a_genesys_call_is_heard_stored_and_transcribed_back(live_server, runtime, two_party_call, speed):
    call = two_party_call
    conversation = str(uuid.uuid4())
    messages: list[dict[str, Any]] = []
    began = time.monotonic()
    await play_call(live_server.url.replace("http", "ws"), call.agent, call.customer, call.rate,
                    call_id=conversation, agent_id="ah-agent-7", speed=speed, on_message=messages.append,
                    caller_number="+8613800138000", language="zh-CN", hold=HOLD)
    took = time.monotonic() - began
    # Real time at `speed`, the hold included; the server takes audio at most its lead ahead of real time,
    # so a faster client waits for it at the end (and for the last words to be heard).
    length = call.duration_s + HOLD[1]
    assert length / speed - 0.5 < took < max(length / speed, length - runtime.settings.live_max_lead_s) + 25

    kinds = [m["type"] for m in messages]
    assert kinds[0] == "opened" and kinds[-1] == "closed" and "disconnect" not in kinds
    opened = messages[0]["parameters"]
    assert opened["media"] == [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}]
    assert opened["supportedLanguages"] == ["zh-CN"]
    assert "pong" in kinds
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))

    # Transcripts came back as AudioHook events, both speakers within the bounds the ingest tests use, on
    # the client's stream timeline (a pause's audio is not in it): nothing past the recording's end.
    sent = finals_sent(messages)
    for role in ("agent", "customer"):
        assert speaker_cer(sent, call.timeline, role) <= BOUNDS[("mulaw", role)]
    assert max(line["end"] for line in sent) <= call.duration_s + 0.2
    after_hold = [line for line in sent if line["start"] > HOLD[0]]
    assert after_hold and min(line["start"] for line in after_hold) > 12.5  # the customer, from 13.1 s

    stored_call = runtime.store.get_call(conversation)
    assert stored_call is not None and stored_call.status == "completed"
    assert stored_call.agent_id == "ah-agent-7" and stored_call.caller_number == "+8613800138000"
    # The hold lasts on the call's clock as long as it lasted on the phone.
    assert abs(stored_call.duration - (call.duration_s + HOLD[1])) < 0.3
    events = runtime.store.list_events(conversation)
    assert [e["event"] for e in events] == ["answered", "hold", "resume", "hangup"]
    assert events[0]["t"] == 0 and events[-1]["by"] == "system"
    hold, resume = events[1]["t"], events[2]["t"]
    assert abs(hold - HOLD[0]) < 0.2 and abs((resume - hold) - HOLD[1]) < 0.2

    stored = await second_pass_stored(runtime, conversation)
    for role in ("agent", "customer"):
        assert speaker_cer(stored, call.timeline, role) <= BOUNDS[("mulaw", role)]
    assert runtime.store.get_call(conversation).report is not None


async def test_one_channel_is_that_partys_leg(live_server, runtime, two_party_call):
    """Offered only the external channel, the server takes it: the customer alone, as the customer."""
    call = two_party_call
    conversation = str(uuid.uuid4())
    messages: list[dict[str, Any]] = []
    head = int(8.0 * call.rate)  # the agent's first turn and the customer's first answer (5.5–7.3 s)
    await play_call(live_server.url.replace("http", "ws") + "/v1/connectors/audiohook", call.agent[:head],
                    call.customer[:head], call.rate, call_id=conversation, agent_id="ah-agent-8", speed=2.0,
                    on_message=messages.append, channels="external")
    assert messages[0]["parameters"]["media"][0]["channels"] == ["external"]
    assert "event" not in [m["type"] for m in messages]  # no language in `open`: no transcripts asked for
    stored = await second_pass_stored(runtime, conversation)
    assert stored and {u["speaker"] for u in stored} == {"customer"}
    assert runtime.store.get_call(conversation).audio_format["layout"] == "two_legs"


async def test_the_connection_probe_is_answered_without_a_call(live_server, runtime, two_party_call):
    call = two_party_call
    messages: list[dict[str, Any]] = []
    probe = "00000000-0000-0000-0000-000000000000"
    await play_call(live_server.url.replace("http", "ws"), call.agent[:800], call.customer[:800], call.rate,
                    call_id=probe, agent_id="probe", on_message=messages.append)
    assert [m["type"] for m in messages] == ["opened", "closed"]
    assert runtime.store.get_call(probe) is None
