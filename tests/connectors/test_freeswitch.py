"""FreeSWITCH mod_audio_fork / mod_audio_stream and Jambonz `listen` at /v1/connectors/freeswitch, through a real
uvicorn server on loopback with the real models and a real SQLite store. The client
(clients/platforms/freeswitch.py) is the modules' side as their documentation describes it."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients.platforms.freeswitch import ForkStream, auth_headers, l16, play_call
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from support.heard import BOUNDS, second_pass_stored, speaker_cer

PATH = "/v1/connectors/freeswitch"


def endpoint(server: Any) -> str:
    return f"ws://127.0.0.1:{server.port}{PATH}"


async def stored_status(runtime: Any, key: str, timeout: float = 30.0) -> Any:
    """The call's record once it has ended (the server ends it a moment after the socket closes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        call = runtime.store.get_call(key)
        if call is not None and call.status != "live":
            return call
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {key} still live after {timeout} s")


def unwrapped(messages: list[dict[str, Any]], envelope: str) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m.get("type") == envelope]


def assert_heard(lines: list[dict[str, Any]], timeline: dict[str, Any], roles: tuple[str, ...]) -> None:
    assert {line["speaker"] for line in lines} == set(roles)
    for role in roles:
        cer = speaker_cer(lines, timeline, role)
        assert cer <= BOUNDS[("pcm_s16le", role)], f"{role} CER {cer:.3f}"


# ---------------------------------------------------------------- whole calls


async def test_mod_audio_fork_stereo_8k_in_real_time(live_server, runtime, two_party_call):
    """`uuid_audio_fork <uuid> start <url> stereo 8k {...}`; the caller (the customer) on the left; hold and
    resume by send_text; the module stopped at the end: the call is completed, hung up by the system."""
    call_id = "8f2d1c4e-1b7a-4c7e-9d7e-5a1f0c3b2a11"
    messages: list[dict[str, Any]] = []
    await play_call(endpoint(live_server), two_party_call.agent, two_party_call.customer, two_party_call.rate,
                    call_id=call_id, agent_id="fs-agent-1", speed=1.0, on_message=messages.append,
                    module="mod_audio_fork", mix_type="stereo", caller_number="13912345678",
                    texts=[(12.3, {"event": "hold"}), (12.9, {"event": "resume"})], hangup_by=None)
    call = await stored_status(runtime, call_id)
    assert (call.status, call.agent_id, call.caller_number) == ("completed", "fs-agent-1", "13912345678")
    assert call.audio_format["layout"] == "stereo" and call.audio_format["sample_rate"] == 8000
    assert call.audio_format["channel_map"] == ["customer", "agent"]
    events = runtime.store.list_events(call_id)
    assert [e["event"] for e in events] == ["hold", "resume", "hangup"]
    assert events[-1]["by"] == "system"
    # What went back while the call was live: the v1 results in the envelopes mod_audio_fork turns into events.
    # The module closes the socket as it stops, so the finals still being decoded then reach only the store.
    transcripts = unwrapped(messages, "transcription")
    assert transcripts and {f["type"] for f in transcripts} <= {"final", "partial"}
    assert all(f["call_id"] == call_id for f in transcripts)
    results = unwrapped(messages, "json")
    assert results[0]["type"] == "started" and results[0]["legs"] == ["customer", "agent"]
    assert [(m["event"], m["by"]) for m in results if m["type"] == "event"][:2] == [("hold", None), ("resume", None)]
    stored = await second_pass_stored(runtime, call_id)
    assert_heard(stored, two_party_call.timeline, ("agent", "customer"))
    assert runtime.store.get_call(call_id).report is not None


async def test_jambonz_listen_stereo_16k_twice_real_time(live_server, runtime, two_party_call):
    """Jambonz `listen` (mixType stereo, sampleRate 16000) at twice real time; the call ends with a hangup sent
    as text, so `ended` and the report come back before the server closes the socket."""
    call_id = "b1c6f0a2-7d44-4f0e-a3c2-2e9b8d7f6a55"
    messages: list[dict[str, Any]] = []
    await play_call(endpoint(live_server), two_party_call.agent, two_party_call.customer, two_party_call.rate,
                    call_id=call_id, agent_id="jz-agent-7", speed=2.0, on_message=messages.append,
                    module="jambonz", mix_type="stereo", sample_rate=16000, caller_number="+8613700001111",
                    hangup_by="customer")
    call = await stored_status(runtime, call_id)
    assert (call.status, call.agent_id, call.caller_number) == ("completed", "jz-agent-7", "+8613700001111")
    assert call.audio_format["sample_rate"] == 16000
    assert runtime.store.list_events(call_id)[-1] == {"event": "hangup", "t": pytest.approx(26.0, abs=0.2),
                                                      "by": "customer", "target": None}
    results = unwrapped(messages, "json")
    ended = [m for m in results if m["type"] == "ended"]
    assert ended and ended[0]["status"] == "completed"
    assert any(m["type"] == "report" for m in results)
    assert not [m for m in messages if m.get("type") == "error"], "Jambonz ends its listen on an error frame"
    # The hangup came as text: the server flushed every final before `ended`, and the module heard them all.
    finals = [m for m in unwrapped(messages, "transcription") if m["type"] == "final"]
    assert_heard(finals, two_party_call.timeline, ("agent", "customer"))
    stored = await second_pass_stored(runtime, call_id)
    assert_heard(stored, two_party_call.timeline, ("agent", "customer"))
    assert runtime.store.get_call(call_id).report is not None


async def test_mod_audio_stream_mono_is_the_callers_leg(live_server, runtime, two_party_call):
    """`uuid_audio_stream <uuid> start <url>?mix_type=mono&sample_rate=8k mono 8k {...}`: the caller alone,
    the mix type and rate told in the URL; stored as the customer's leg (v1 two_legs), the agent's silent."""
    call_id = "3e5a9b70-55c1-4d2b-8f3a-6c7d8e9f0a1b"
    await play_call(endpoint(live_server), two_party_call.agent, two_party_call.customer, two_party_call.rate,
                    call_id=call_id, agent_id="fs-agent-2", speed=2.0, module="mod_audio_stream",
                    mix_type="mono", audio_in_url=True)
    call = await stored_status(runtime, call_id)
    assert call.status == "completed" and call.audio_format["layout"] == "two_legs"
    stored = await second_pass_stored(runtime, call_id)
    assert_heard(stored, two_party_call.timeline, ("customer",))


async def test_mixed_is_one_channel_of_unknown_speakers(live_server, runtime, two_party_call):
    """`mixed`: both voices on one channel; v1 `mono`, whose speakers cannot be told apart."""
    call_id = "mixed-0b7e3f52"
    messages: list[dict[str, Any]] = []
    seconds = 4 * two_party_call.rate
    await play_call(endpoint(live_server), two_party_call.agent[:seconds], two_party_call.customer[:seconds],
                    two_party_call.rate, call_id=call_id, agent_id="fs-agent-3", speed=2.0,
                    on_message=messages.append, mix_type="mixed")
    call = await stored_status(runtime, call_id)
    assert call.status == "completed" and call.audio_format["layout"] == "mono"
    started = [m for m in unwrapped(messages, "json") if m["type"] == "started"]
    assert started[0]["legs"] == ["unknown"]


# ---------------------------------------------------------------- bad input


async def opened(server: Any, **kwargs: Any) -> ForkStream:
    return await ForkStream.open(endpoint(server), **kwargs)


async def refused_with(stream: ForkStream) -> tuple[int | None, list[dict[str, Any]]]:
    """Read until the server closes; its close code and what it sent."""
    await stream.wait_closed(timeout=30)
    return stream.ws.close_code, stream.received


def start_text(call_id: str, **extra: Any) -> dict[str, Any]:
    return {"uuid": call_id, "agent_id": "fs-agent-9", "mix_type": "stereo", "sample_rate": 8000} | extra


async def test_binary_before_the_metadata_is_refused(live_server, runtime):
    stream = await opened(live_server)
    await stream.ws.send(bytes(640))
    code, sent = await refused_with(stream)
    assert code == 4401
    errors = unwrapped(sent, "error")
    assert errors and errors[0]["code"] == "no_metadata" and errors[0]["fatal"] is True


@pytest.mark.parametrize("metadata, code, error", [
    ("call_id=abc agent=1", 4400, "malformed_json"),
    ('["a list"]', 4400, "malformed_json"),
    (json.dumps({"agent_id": "fs-agent-9", "mix_type": "stereo"}), 4401, "invalid_metadata"),
    (json.dumps({"uuid": "no-agent-5b1e"}), 4401, "invalid_metadata"),
    (json.dumps({"uuid": "has spaces in it", "agent_id": "a"}), 4401, "invalid_metadata"),
    (json.dumps(start_text("rate-64k-3c1d", sample_rate=64000)), 4401, "invalid_metadata"),
    (json.dumps(start_text("rate-11k-3c1d", sample_rate="11k")), 4401, "invalid_metadata"),
    (json.dumps(start_text("mix-quad-3c1d", mix_type="quad")), 4401, "invalid_metadata"),
])
async def test_metadata_that_cannot_start_a_call(live_server, runtime, metadata, code, error):
    stream = await opened(live_server, module="jambonz")
    await stream.send_text(metadata)
    close_code, sent = await refused_with(stream)
    assert close_code == code
    errors = unwrapped(sent, "error")
    assert errors and errors[0]["code"] == error, sent


async def test_a_rate_jambonz_offers_but_v1_does_not_take(live_server, runtime):
    stream = await opened(live_server, module="jambonz")
    await stream.send_text({"callSid": "jz-64k-77a1", "agent_id": "a", "mixType": "mono", "sampleRate": 64000,
                            "direction": "inbound", "from": "1", "to": "2"})
    code, sent = await refused_with(stream)
    assert code == 4401 and "64000" in unwrapped(sent, "error")[0]["message"]
    assert runtime.store.get_call("jz-64k-77a1") is None


async def test_a_caller_number_v1_cannot_hold_is_left_out_not_the_call(live_server, runtime, two_party_call):
    call_id = "jz-long-from-9d0e"
    stream = await opened(live_server, module="jambonz")
    await stream.send_text({"callSid": call_id, "agent_id": "jz-agent-2", "mixType": "mono", "sampleRate": 8000,
                            "direction": "inbound", "from": "sip:+8613700001111@carrier.example.com;user=phone",
                            "to": "95500"})
    await stream.send_audio(two_party_call.customer[:two_party_call.rate], two_party_call.rate, speed=4.0)
    await stream.stop()
    call = await stored_status(runtime, call_id)
    assert (call.status, call.agent_id, call.caller_number) == ("completed", "jz-agent-2", None)


async def test_odd_length_frames_and_unknown_text_are_reported_and_the_call_goes_on(live_server, runtime,
                                                                                    two_party_call):
    call_id = "odd-frame-6f2a"
    stream = await opened(live_server)
    await stream.send_text(start_text(call_id))
    stereo = np.stack([two_party_call.customer, two_party_call.agent], axis=1)[: 6 * two_party_call.rate]
    await stream.send_audio(stereo[: 3 * two_party_call.rate], two_party_call.rate, speed=4.0)
    await stream.ws.send(l16(stereo[:80])[:-1])  # 319 bytes: not whole stereo samples
    await stream.send_text("not json at all")
    await stream.send_text({"hello": "there"})
    await stream.send_text({"event": "dtmf", "dtmf": "5", "duration": 1600})  # Jambonz passDtmf: passed over
    await stream.send_text({"event": "hangup"})  # no `by`
    await stream.send_audio(stereo[3 * two_party_call.rate:], two_party_call.rate, speed=4.0, start_s=3.0)
    # Hung up as text, so every error reaches the module before `ended` (a stopped module hears nothing after
    # it closes, and a loaded server may still be reading its last frames then).
    await stream.send_text({"event": "hangup", "by": "agent"})
    await stream.wait_closed()
    call = await stored_status(runtime, call_id)
    assert call.status == "completed" and call.duration == pytest.approx(6.0, abs=0.1)
    errors = unwrapped(stream.received, "json")
    assert errors[-2]["type"] == "ended" and errors[-1]["type"] == "report"
    # (`asr_behind` may come too, when the machine is loaded: it says so of the recogniser, not of this input)
    codes = [m["code"] for m in errors if m["type"] == "error" and m["code"] != "asr_behind"]
    assert codes == ["bad_audio_frame", "unknown_message", "unknown_message", "invalid_message"]
    assert not unwrapped(stream.received, "error"), "non-fatal errors never go as mod_audio_fork `error`"
    assert [(e["event"], e["by"]) for e in runtime.store.list_events(call_id)] == [("hangup", "agent")]


async def test_a_vanishing_module_leaves_the_call_dropped_with_what_was_heard(live_server, runtime,
                                                                              two_party_call):
    call_id = "vanish-4c8e"
    stream = await opened(live_server)
    await stream.send_text(start_text(call_id))
    stereo = np.stack([two_party_call.customer, two_party_call.agent], axis=1)
    await stream.send_audio(stereo[: 9 * two_party_call.rate], two_party_call.rate, speed=2.0)
    stream.vanish()
    call = await stored_status(runtime, call_id)
    assert call.status == "dropped"
    assert not [e for e in runtime.store.list_events(call_id) if e["event"] == "hangup"]
    heard = runtime.store.list_utterances(call_id)
    assert {u["speaker"] for u in heard} >= {"agent"}


# ---------------------------------------------------------------- keys and tenants


@pytest.fixture(scope="module")
def keyed(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fs-keys")
    keys = {name: f"cw_{secrets.token_urlsafe(16)}" for name in ("pbx-t1", "pbx-t2", "lead-t1")}
    roles = {"pbx-t1": ("integrator", "t1"), "pbx-t2": ("integrator", "t2"), "lead-t1": ("supervisor", "t1")}
    spec = KeysFile()
    for name, key in keys.items():
        role, tenant = roles[name]
        spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant,
                                             keys=[KeySpec(sha256=digest_of(key), created=datetime.now(timezone.utc))]))
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml")
    try:
        with LiveServer(create_app(runtime=rt)) as served:
            yield {"keys": keys, "runtime": rt, "served": served}
    finally:
        close_private(rt)


@pytest.mark.parametrize("headers", [
    {},
    auth_headers("mod_audio_fork", "cw_not-a-key"),
    auth_headers("mod_audio_stream", "cw_not-a-key"),
    {"Authorization": "Basic !!not-base64"},
])
async def test_a_missing_or_wrong_key_is_refused_before_the_handshake(keyed, headers):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(endpoint(keyed["served"]), subprotocols=["audio.drachtio.org"],  # type: ignore[list-item]
                           additional_headers=headers, open_timeout=10):
            pass
    assert refused.value.response.status_code == 403


async def test_a_supervisor_key_does_not_admit_a_stream(keyed):
    with pytest.raises(InvalidStatus) as refused:
        await ForkStream.open(endpoint(keyed["served"]), key=keyed["keys"]["lead-t1"])
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("module, integrator", [("mod_audio_fork", "pbx-t1"), ("mod_audio_stream", "pbx-t2"),
                                                ("jambonz", "pbx-t1")])
async def test_the_call_is_the_admitting_integrators_tenants(keyed, two_party_call, module, integrator):
    rt, tenant = keyed["runtime"], {"pbx-t1": "t1", "pbx-t2": "t2"}[integrator]
    call_id = f"tenant-{module}-{integrator}"
    seconds = 2 * two_party_call.rate
    await play_call(endpoint(keyed["served"]), two_party_call.agent[:seconds], two_party_call.customer[:seconds],
                    two_party_call.rate, call_id=call_id, agent_id="fs-agent-t", key=keyed["keys"][integrator],
                    speed=4.0, module=module)
    key = rt.store.find_call(tenant, call_id)
    assert key is not None
    call = await stored_status(rt, key)
    assert call.tenant == tenant and call.status == "completed"


async def test_the_subprotocol_offered_is_the_one_accepted(live_server):
    for module, subprotocol in (("mod_audio_fork", "audio.drachtio.org"), ("jambonz", "audio.jambonz.org"),
                                ("mod_audio_stream", None)):
        stream = await opened(live_server, module=module)
        assert stream.ws.subprotocol == subprotocol
        await stream.stop()


def test_every_setting_is_documented():
    from service.settings import Settings

    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    docs = (root / "docs" / "connectors.md").read_text(encoding="utf-8")
    names = [name for name in Settings.model_fields if name.startswith("freeswitch_")]
    assert len(names) == 3
    for name in names:
        variable = f"CALLWATCH_{name.upper()}"
        assert f"`{variable}`" in docs
        assert variable in readme or f"`_{name.upper().removeprefix('FREESWITCH_')}`" in readme
