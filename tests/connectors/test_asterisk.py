"""Asterisk through a real server: AudioSocket on its own TCP port and chan_websocket at /v1/connectors/asterisk,
each leg its own connection, streamed by clients/platforms/asterisk.py (written from Asterisk's specifications)
with the shared two-party recording; the real models, a real SQLite store, a real keys file.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np
import pytest
import websockets
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer, free_port
from support.heard import BOUNDS, second_pass_stored, speaker_cer

from clients.platforms.asterisk import (
    AudioSocketConnection,
    ChanWebSocket,
    audiosocket_call_id,
    frames,
    leg_url,
    media_start,
    paced,
    play_call,
    to_slin,
    to_ulaw,
)
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app

TENANT = "t-ast"
INTEGRATOR = "pbx-asterisk"


@dataclass
class Asterisk:
    runtime: Any
    served: LiveServer
    key: str
    port: int

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.served.ws_url}/v1/connectors/asterisk"

    def key_of(self, call_id: str) -> str | None:
        return self.runtime.store.find_call(TENANT, call_id)

    def counted(self, metric: str, **labels: str) -> float:
        return self.runtime.metrics.registry.get_sample_value(metric, {"connector": "asterisk", **labels}) or 0.0


@pytest.fixture(scope="module")
def asterisk(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Asterisk]:
    tmp = tmp_path_factory.mktemp("asterisk")
    key = f"cw_{secrets.token_urlsafe(16)}"
    save_keys_file(tmp / "keys.yaml", KeysFile(principals=[PrincipalSpec(
        role="integrator", name=INTEGRATOR, tenant=TENANT,
        keys=[KeySpec(sha256=digest_of(key), created=datetime.now(timezone.utc))])]))
    port = free_port()
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml", audiosocket_port=port, audiosocket_integrator=INTEGRATOR,
                         asterisk_pair_window_s=5.0)
    try:
        with LiveServer(create_app(runtime=rt)) as served:
            yield Asterisk(rt, served, key, port)
    finally:
        close_private(rt)


async def ended(env: Asterisk, call_id: str, timeout: float = 60.0) -> Any:
    """The stored call once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        key = await asyncio.to_thread(env.key_of, call_id)
        call = await asyncio.to_thread(env.runtime.store.get_call, key) if key else None
        if call is not None and call.status != "live":
            return call
        await asyncio.sleep(0.2)
    raise AssertionError(f"call {call_id} did not end within {timeout} s")


async def second_pass(env: Asterisk, call_id: str, timeout: float = 120.0) -> tuple[Any, list[dict[str, Any]]]:
    """The ended call and its utterances once the second pass has written them."""
    key = (await ended(env, call_id)).call_id
    utterances = await second_pass_stored(env.runtime, key, timeout)
    return env.runtime.store.get_call(key), utterances


def assert_heard(call: Any, utterances: list[dict[str, Any]], timeline: dict[str, Any], encoding: str) -> None:
    for role in ("agent", "customer"):
        cer = speaker_cer(utterances, timeline, role)
        assert cer <= BOUNDS[(encoding, role)], f"{role} CER {cer:.3f} over {BOUNDS[(encoding, role)]}"
    assert call.report is not None and "score" in call.report
    assert call.tenant == TENANT


def hangups(env: Asterisk, call: Any) -> list[dict[str, Any]]:
    return [e for e in env.runtime.store.list_events(call.call_id) if e["event"] == "hangup"]


# ---------------------------------------------------------------- the whole call, both transports


@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_audiosocket_pairs_two_legs_into_one_call(asterisk: Asterisk, two_party_call: Any, speed: float) -> None:
    call_id = str(uuid.uuid4())
    messages: list[dict[str, Any]] = []
    await play_call(asterisk.tcp_url, two_party_call.agent, two_party_call.customer, two_party_call.rate,
                    call_id=call_id, agent_id="ignored", speed=speed, on_message=messages.append)
    stored_id = audiosocket_call_id(call_id)
    call, utterances = await second_pass(asterisk, stored_id)
    assert call.status == "completed"
    assert call.audio_format["layout"] == "two_legs" and call.audio_format["sample_rate"] == 8000
    assert call.agent_id == "unknown"  # AudioSocket names no agent: CALLWATCH_ASTERISK_AGENT_ID
    assert_heard(call, utterances, two_party_call.timeline, "pcm_s16le")
    assert [e["by"] for e in hangups(asterisk, call)] == ["customer"]  # the customer's leg closed first
    assert not [m for m in messages if m["type"] == "hangup"]  # a call that ends normally is not hung up by us


@pytest.mark.parametrize("speed", [2.0, 1.0])
async def test_chan_websocket_pairs_two_legs_with_their_metadata(asterisk: Asterisk, two_party_call: Any,
                                                                  speed: float) -> None:
    call_id = f"ast-ws-{speed:g}-{secrets.token_hex(3)}"
    messages: list[dict[str, Any]] = []
    await play_call(asterisk.ws_url, two_party_call.agent, two_party_call.customer, two_party_call.rate,
                    call_id=call_id, agent_id="A-7001", key=asterisk.key, speed=speed, on_message=messages.append,
                    caller_number="13800138000")
    call, utterances = await second_pass(asterisk, call_id)
    assert call.status == "completed"
    assert (call.agent_id, call.caller_number) == ("A-7001", "13800138000")
    assert call.audio_format["encoding"] == "mulaw" and call.audio_format["layout"] == "two_legs"
    assert_heard(call, utterances, two_party_call.timeline, "mulaw")
    assert [e["by"] for e in hangups(asterisk, call)] == ["customer"]
    assert not [m for m in messages if m["type"] == "command"]  # nothing for Asterisk in a normal call
    assert {m["code"] for m in messages if m["type"] == "closed"} == {1000}


async def test_chan_websocket_json_media_start_carries_channel_variables(asterisk: Asterisk,
                                                                         two_party_call: Any) -> None:
    call_id = f"ast-json-{secrets.token_hex(3)}"
    seconds = 6 * two_party_call.rate
    await play_call(asterisk.ws_url, two_party_call.agent[:seconds], two_party_call.customer[:seconds],
                    two_party_call.rate, call_id=call_id, agent_id="A-json", key=asterisk.key, speed=2.0,
                    control_format="json", fmt="slin16", caller_number="13900000000")
    call = await ended(asterisk, call_id)
    assert call.status == "completed"
    assert (call.agent_id, call.caller_number) == ("A-json", "13900000000")
    assert call.audio_format["sample_rate"] == 16000 and call.audio_format["encoding"] == "pcm_s16le"


async def test_a_lone_leg_is_a_call_with_one_leg(asterisk: Asterisk, two_party_call: Any) -> None:
    stream = uuid.uuid4()
    while str(stream)[-1] in "01":  # no leg mark: a call of its own
        stream = uuid.uuid4()
    piece = two_party_call.customer[: 16 * two_party_call.rate]
    connection = await AudioSocketConnection("127.0.0.1", asterisk.port).connect()
    await connection.send_uuid(stream)
    async for frame in paced(frames(piece, 8000, to_slin), 2.0, time.monotonic()):
        await connection.send_audio(frame)
    await connection.close()
    call, utterances = await second_pass(asterisk, str(stream))
    assert call.status == "completed"
    assert utterances and {u["speaker"] for u in utterances} == {"customer"}
    assert [e["by"] for e in hangups(asterisk, call)] == ["customer"]


async def test_a_second_leg_after_the_pair_window_is_refused(asterisk: Asterisk, two_party_call: Any) -> None:
    call_id = str(uuid.uuid4())
    first = await AudioSocketConnection("127.0.0.1", asterisk.port).connect()
    await first.send_uuid(uuid.UUID(audiosocket_call_id(call_id)))
    silence = frames(np.zeros(8000, dtype=np.float32), 8000, to_slin)
    deadline = time.monotonic() + 5.5  # the fixture's pair window is 5 s
    while time.monotonic() < deadline:
        for frame in silence[:10]:
            await first.send_audio(frame)
        await asyncio.sleep(0.2)
    late: list[dict[str, Any]] = []
    second = await AudioSocketConnection("127.0.0.1", asterisk.port, late.append).connect()
    await second.send_uuid(uuid.UUID(audiosocket_call_id(call_id)[:-1] + "1"))
    await asyncio.wait_for(second.hung_up.wait(), 10)
    assert late[0]["type"] == "hangup"
    await first.close()
    assert (await ended(asterisk, audiosocket_call_id(call_id))).status == "completed"
    assert asterisk.counted("callwatch_calls_refused_total", reason="pair_window_over") >= 1


# ---------------------------------------------------------------- AudioSocket: bad input


async def refused_at_once(env: Asterisk, first: bytes) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    connection = await AudioSocketConnection("127.0.0.1", env.port, messages.append).connect()
    await connection.send_raw(first)
    await asyncio.wait_for(connection.hung_up.wait(), 10)
    await connection.close()
    return messages


async def test_audiosocket_first_message_must_be_the_uuid(asterisk: Asterisk) -> None:
    before = asterisk.counted("callwatch_calls_refused_total", reason="no_uuid")
    messages = await refused_at_once(asterisk, bytes([0x03, 0, 1]) + b"5")
    assert messages[0]["type"] == "hangup"  # AudioSocket's refusal: 0x00 0x00 0x00, then the socket closed
    assert asterisk.counted("callwatch_calls_refused_total", reason="no_uuid") == before + 1


async def test_audiosocket_audio_before_the_uuid_is_refused(asterisk: Asterisk) -> None:
    before = asterisk.counted("callwatch_calls_refused_total", reason="audio_before_uuid")
    messages = await refused_at_once(asterisk, bytes([0x10, 0x01, 0x40]) + bytes(320))
    assert messages[0]["type"] == "hangup"
    assert asterisk.counted("callwatch_calls_refused_total", reason="audio_before_uuid") == before + 1


async def test_audiosocket_uuid_of_the_wrong_size_is_refused(asterisk: Asterisk) -> None:
    messages = await refused_at_once(asterisk, bytes([0x01, 0, 4]) + b"abcd")
    assert messages[0]["type"] == "hangup"
    assert asterisk.counted("callwatch_calls_refused_total", reason="bad_uuid") >= 1


async def speak_then(env: Asterisk, two_party_call: Any, stream: uuid.UUID, seconds: float,
                     then: Any) -> AudioSocketConnection:
    """One leg: the UUID, the first `seconds` of the agent's voice at twice real time, then `then(connection)`."""
    connection = await AudioSocketConnection("127.0.0.1", env.port).connect()
    await connection.send_uuid(stream)
    piece = two_party_call.agent[: int(seconds * two_party_call.rate)]
    async for frame in paced(frames(piece, 8000, to_slin), 2.0, time.monotonic()):
        await connection.send_audio(frame)
    await then(connection)
    return connection


def lone(mark: str = "0") -> uuid.UUID:
    return uuid.UUID(str(uuid.uuid4())[:-1] + mark)


async def test_audiosocket_unknown_type_is_reported_and_the_call_goes_on(asterisk: Asterisk,
                                                                        two_party_call: Any) -> None:
    stream = lone()
    before = asterisk.counted("callwatch_ingest_errors_total", code="unknown_type")

    async def unknown_then_more(connection: AudioSocketConnection) -> None:
        await connection.send(0x42, b"\x01\x02\x03")
        for frame in frames(np.zeros(8000, dtype=np.float32), 8000, to_slin):
            await connection.send_audio(frame)
        await connection.close()

    await speak_then(asterisk, two_party_call, stream, 6.0, unknown_then_more)
    call, utterances = await second_pass(asterisk, str(stream))
    assert call.status == "completed" and utterances
    assert asterisk.counted("callwatch_ingest_errors_total", code="unknown_type") == before + 1


async def test_audiosocket_truncated_message_drops_the_call_and_keeps_what_was_heard(
        asterisk: Asterisk, two_party_call: Any) -> None:
    stream = lone()

    async def truncated(connection: AudioSocketConnection) -> None:
        await connection.send_raw(bytes([0x10, 0x01, 0x40]) + bytes(10))  # says 320 bytes, sends 10
        connection.writer.write_eof()
        await asyncio.sleep(0.5)
        await connection.close()

    await speak_then(asterisk, two_party_call, stream, 6.0, truncated)
    call, utterances = await second_pass(asterisk, str(stream))
    assert call.status == "dropped"
    assert utterances and {u["speaker"] for u in utterances} == {"agent"}
    assert asterisk.counted("callwatch_ingest_errors_total", code="truncated_frame") >= 1


async def test_audiosocket_error_message_drops_the_call(asterisk: Asterisk, two_party_call: Any) -> None:
    stream = lone()

    async def error_then_close(connection: AudioSocketConnection) -> None:
        await connection.send(0xFF, b"\x02")  # frame forwarding error
        await connection.close()

    await speak_then(asterisk, two_party_call, stream, 6.0, error_then_close)
    call, utterances = await second_pass(asterisk, str(stream))
    assert call.status == "dropped" and utterances
    assert asterisk.counted("callwatch_ingest_errors_total", code="asterisk_error") >= 1


async def test_audiosocket_client_that_vanishes_is_dropped_with_what_was_heard(asterisk: Asterisk,
                                                                              two_party_call: Any) -> None:
    stream = lone()

    async def vanish(connection: AudioSocketConnection) -> None:
        await connection.abort()

    await speak_then(asterisk, two_party_call, stream, 6.0, vanish)
    call, utterances = await second_pass(asterisk, str(stream))
    assert call.status == "dropped" and utterances


# ---------------------------------------------------------------- chan_websocket: bad input


@pytest.mark.parametrize("key", ["cw_wrong", None])
async def test_chan_websocket_wrong_or_missing_key_is_refused_before_the_upgrade(asterisk: Asterisk,
                                                                                 key: str | None) -> None:
    url = leg_url(asterisk.ws_url, f"ast-key-{secrets.token_hex(3)}", "agent", "A1", None)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await ChanWebSocket(url, key).connect()
    assert refused.value.response.status_code == 403


async def opened(env: Asterisk, call_id: str, leg: str = "agent") -> tuple[ChanWebSocket, list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = []
    connection = await ChanWebSocket(leg_url(env.ws_url, call_id, leg, "A1", None), env.key, messages.append).connect()
    return connection, messages


async def test_chan_websocket_media_before_media_start_is_refused(asterisk: Asterisk) -> None:
    connection, messages = await opened(asterisk, f"ast-early-{secrets.token_hex(3)}")
    await connection.send(bytes(160))
    await asyncio.wait_for(connection.closed.wait(), 15)
    assert [m["command"] for m in messages if m["type"] == "command"] == ["HANGUP"]
    assert connection.close_code == 4401 and connection.close_reason.startswith("media_before_start")


async def test_chan_websocket_format_not_taken_is_refused(asterisk: Asterisk) -> None:
    connection, messages = await opened(asterisk, f"ast-opus-{secrets.token_hex(3)}")
    start = media_start(str(uuid.uuid4()), "1700000000.1", "ulaw").replace("format:ulaw", "format:opus")
    await connection.send(start)
    await asyncio.wait_for(connection.closed.wait(), 15)
    assert [m["command"] for m in messages if m["type"] == "command"] == ["HANGUP"]
    assert connection.close_code == 1003 and connection.close_reason.startswith("unsupported_format")


async def test_chan_websocket_unknown_message_is_reported_and_vanishing_drops_the_call(
        asterisk: Asterisk, two_party_call: Any) -> None:
    call_id = f"ast-vanish-{secrets.token_hex(3)}"
    before = asterisk.counted("callwatch_ingest_errors_total", code="unknown_type")
    connection, _ = await opened(asterisk, call_id)
    await connection.send(media_start(str(uuid.uuid4()), "1700000000.2", "ulaw"))
    piece = two_party_call.agent[: 6 * two_party_call.rate]
    started = time.monotonic()
    async for frame in paced(frames(piece, 8000, to_ulaw), 2.0, started):
        await connection.send(frame)
    await connection.send("SOMETHING_NEW key:value")
    await connection.send("MEDIA_XOFF")  # flow control about media callwatch never sends: no error
    await asyncio.sleep(0.5)
    await connection.abort()
    call, utterances = await second_pass(asterisk, call_id)
    assert call.status == "dropped" and utterances
    assert asterisk.counted("callwatch_ingest_errors_total", code="unknown_type") == before + 1


async def test_audiosocket_from_an_address_not_allowed_is_refused(asterisk: Asterisk) -> None:
    settings = asterisk.runtime.settings
    before = asterisk.counted("callwatch_calls_refused_total", reason="unauthorized")
    settings.audiosocket_allow = ["10.0.4.0/24"]  # the settings are read per connection
    try:
        messages = await refused_at_once(asterisk, bytes([0x01, 0, 16]) + uuid.uuid4().bytes)
    finally:
        settings.audiosocket_allow = []
    assert messages[0]["type"] == "hangup"
    assert asterisk.counted("callwatch_calls_refused_total", reason="unauthorized") == before + 1
