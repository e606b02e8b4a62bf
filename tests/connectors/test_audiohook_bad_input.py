"""AudioHook sessions that break the protocol, on a real server with the real models: each gets AudioHook's
own error (a `disconnect` with reason `error` and `info` saying what was wrong, then the close transaction
the client runs), and what was heard before it is kept. docs/connectors.md#genesys-cloud-audiohook."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import numpy as np
import pytest
import websockets

from clients.platforms.audiohook import Session, offered_media, play_call

ORG = "d7934305-0972-4844-938e-9060eef73d05"
STEREO = offered_media("both")


@asynccontextmanager
async def session(base_url: str) -> AsyncIterator[tuple[Session, list[dict[str, Any]]]]:
    """A bare AudioHook session, driven message by message."""
    session_id = str(uuid.uuid4())
    headers = {"audiohook-organization-id": ORG, "audiohook-session-id": session_id,
               "audiohook-correlation-id": str(uuid.uuid4()), "x-api-key": "any"}
    url = base_url.replace("http", "ws") + "/v1/connectors/audiohook"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        got: list[dict[str, Any]] = []
        client = Session(ws, session_id, got.append)
        reader = asyncio.create_task(client.read())
        try:
            yield client, got
        finally:
            await ws.close()
            await reader


async def arrival(got: list[dict[str, Any]], kind: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in got:
            if message["type"] == kind:
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind!r} within {timeout} s; got {[m['type'] for m in got]}")


async def refused(client: Session, got: list[dict[str, Any]], *words: str) -> dict[str, Any]:
    """The server's `disconnect` (reason `error`, `info` naming `words`), and the close transaction after it."""
    disconnect = (await arrival(got, "disconnect"))["parameters"]
    assert disconnect["reason"] == "error", disconnect
    for word in words:
        assert word in disconnect["info"], disconnect
    await client.close("disconnect")
    assert client.closed.is_set()
    return disconnect


def open_parameters(conversation: str, media: list[dict[str, Any]] = STEREO) -> dict[str, Any]:
    return {"organizationId": ORG, "conversationId": conversation,
            "participant": {"id": str(uuid.uuid4()), "ani": "tel:+8613900139000", "aniName": "", "dnis": ""},
            "media": media, "customConfig": {"agentId": "ah-bad-1"}}


async def speak(client: Session, call: Any, seconds: float, speed: float = 3.0) -> None:
    """The first `seconds` of the recording, PCMU stereo (external the customer, internal the agent)."""
    from pipelines.audio import encode_g711

    n = int(seconds * call.rate)
    customer = np.frombuffer(encode_g711(call.customer[:n], "mulaw"), dtype=np.uint8)
    agent = np.frombuffer(encode_g711(call.agent[:n], "mulaw"), dtype=np.uint8)
    for at in range(0, n, 800):
        await client.send_audio(np.stack([customer[at:at + 800], agent[at:at + 800]], axis=1).tobytes(), 0.1)
        await asyncio.sleep(0.1 / speed)


async def heard_and_kept(runtime: Any, conversation: str, status: str, timeout: float = 60) -> None:
    """The call is stored with `status` and the agent's first words (0.5–4.7 s) among its utterances."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = runtime.store.get_call(conversation)
        spoken = [u for u in runtime.store.list_utterances(conversation) if u["speaker"] == "agent" and u["text"]]
        if call is not None and call.status == status and spoken:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{conversation}: {runtime.store.get_call(conversation)}")


async def test_a_message_before_open_is_a_protocol_error(live_server):
    async with session(live_server.url) as (client, got):
        await client.send("update", {"language": "zh-CN"})
        await refused(client, got, "'update' before the session was opened")


async def test_audio_before_open_is_a_protocol_error(live_server):
    async with session(live_server.url) as (client, got):
        await client.send_audio(b"\xff" * 1600, 0.1)
        await refused(client, got, "before the session was opened")


async def test_a_text_frame_that_is_not_json_is_a_protocol_error(live_server):
    async with session(live_server.url) as (client, got):
        await client.ws.send("{not json")
        await refused(client, got, "not JSON")


async def test_media_callwatch_cannot_take_is_refused_before_a_call(live_server, runtime):
    conversation = str(uuid.uuid4())
    media = [{"type": "audio", "format": "L16", "channels": ["external", "internal"], "rate": 44100},
             {"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000}]
    async with session(live_server.url) as (client, got):
        await client.send("open", open_parameters(conversation, media))
        info = (await refused(client, got, "L16/44100", "PCMU"))["info"]
        assert "opened" not in [m["type"] for m in got], info
    assert runtime.store.get_call(conversation) is None


@pytest.mark.parametrize("fault", ["unknown_type", "seq_out_of_order", "truncated_frame"])
async def test_a_fault_mid_call_ends_it_as_dropped_and_keeps_what_was_heard(live_server, runtime, two_party_call,
                                                                             fault):
    conversation = str(uuid.uuid4())
    async with session(live_server.url) as (client, got):
        await client.send("open", open_parameters(conversation))
        await arrival(got, "opened")
        await speak(client, two_party_call, 5.5)
        if fault == "unknown_type":
            await client.send("dance", {})
            words = ["'dance' is not an AudioHook client message"]
        elif fault == "seq_out_of_order":
            client.seq += 2  # two messages the server never saw
            await client.send("ping", {})
            words = ["seq 4 where 2 was due"]  # after `open` (1), this ping was due as 2
        else:
            await client.send_audio(b"\xff" * 1601, 0.1)  # half a stereo sample short
            words = ["1601 bytes", "whole samples"]
        await refused(client, got, *words)
    await heard_and_kept(runtime, conversation, "dropped")
    assert [e["event"] for e in runtime.store.list_events(conversation)] == ["answered"]


async def test_close_without_waiting_for_closed_ends_the_call_completed(live_server, runtime, two_party_call):
    call, conversation = two_party_call, str(uuid.uuid4())
    head = int(5.5 * call.rate)
    await play_call(live_server.url.replace("http", "ws"), call.agent[:head], call.customer[:head], call.rate,
                    call_id=conversation, agent_id="ah-bad-2", speed=3.0, wait_closed=False)
    await heard_and_kept(runtime, conversation, "completed")
    assert [e["event"] for e in runtime.store.list_events(conversation)] == ["answered", "hangup"]


async def test_a_client_that_vanishes_mid_call_leaves_it_dropped_with_what_was_heard(live_server, runtime,
                                                                                    two_party_call):
    call, conversation = two_party_call, str(uuid.uuid4())
    await play_call(live_server.url.replace("http", "ws"), call.agent, call.customer, call.rate,
                    call_id=conversation, agent_id="ah-bad-3", speed=3.0, vanish_at=5.5)
    await heard_and_kept(runtime, conversation, "dropped")
    assert [e["event"] for e in runtime.store.list_events(conversation)] == ["answered"]


async def test_a_second_connection_for_a_stored_conversation_is_refused(live_server, runtime, two_party_call):
    """A conversation id already stored is refused (the owner's duplicate_call), as AudioHook's error."""
    call, conversation = two_party_call, str(uuid.uuid4())
    head = int(1.0 * call.rate)
    await play_call(live_server.url.replace("http", "ws"), call.agent[:head], call.customer[:head], call.rate,
                    call_id=conversation, agent_id="ah-bad-4", speed=3.0)
    async with session(live_server.url) as (client, got):
        await client.send("open", open_parameters(conversation))
        await refused(client, got, "duplicate_call")
        assert "opened" not in [m["type"] for m in got]
    assert runtime.store.get_call(conversation).status == "completed"


async def test_update_discarded_and_a_client_error_go_on_with_the_call(live_server, runtime, two_party_call):
    """Not errors: `update` with a language turns transcripts on, `discarded` audio is filled so the call's
    clock stays on the stream's position, a client `error` is noted and the call goes on."""
    conversation = str(uuid.uuid4())
    async with session(live_server.url) as (client, got):
        await client.send("open", open_parameters(conversation))
        await arrival(got, "opened")
        await client.send("update", {"language": "zh-CN"})
        await client.send("error", {"code": 429, "message": "too many events", "retryAfter": "PT0.1S"})
        await client.send("discarded", {"start": "PT0S", "discarded": "PT2S"})
        client.position_s += 2.0
        await speak(client, two_party_call, 5.5)
        await client.close("end")
        assert client.closed.is_set() and "disconnect" not in [m["type"] for m in got]
    transcripts = [m for m in got if m["type"] == "event"]
    assert transcripts, "update with a language asks for transcripts"
    await heard_and_kept(runtime, conversation, "completed")
    assert abs(runtime.store.get_call(conversation).duration - 7.5) < 0.2
    first = min(float(e["parameters"]["entities"][0]["data"]["offset"][2:-1]) for e in transcripts)
    assert first > 2.0  # the agent starts 0.5 s into the audio, which starts 2 s into the stream
