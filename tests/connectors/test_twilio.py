"""Twilio Media Streams (service/connectors/twilio.py, docs/connectors.md#twilio-media-streams) on a real
uvicorn server with the real models and a real SQLite store, streamed by Twilio's side written from Twilio's
specification (clients/platforms/twilio.py): the shared two-party call in real time and at twice real time,
both speakers stored within the ingest tests' bounds under the CallSid, with the agent id and caller number
of the stream's parameters, `answered` and `hangup`, a report, and the integrator's tenant; a track that
skips a stretch stays on the call's clock; and every refusal and fault in Twilio's terms (close codes and
reasons: Twilio has no error message), keeping what was heard.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from support.heard import BOUNDS, second_pass_stored, speaker_cer

from clients.platforms.twilio import CHUNK_MS, MediaStream, connect, mulaw_chunks, play_call, twilio_signature
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.connectors.track_timeline import TrackTimeline

AUTH_TOKEN = secrets.token_hex(16)
TENANT = "t-twilio"
AGENT_ID = "a-tw-1042"
CALLER = "+8613800138000"


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)


# ---------------------------------------------------------------- the parts that need no server


def test_the_signature_is_twilios_documented_example() -> None:
    """Twilio's worked example (auth token 12345): the signed string is the URL followed by the POST
    parameters, sorted, each name then value; a websocket handshake has none, so the URL alone is signed."""
    signed = ("https://mycompany.com/myapp.php?foo=1&bar=2" + "CallSidCA1234567890ABCDE" + "Caller+14158675310"
              + "Digits1234" + "From+14158675310" + "To+18005551212")
    assert twilio_signature("12345", signed) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


def test_a_track_that_skipped_a_stretch_gets_its_silence_and_a_replayed_chunk_is_dropped() -> None:
    timeline = TrackTimeline(tolerance=80)
    assert timeline.place("inbound", 0, 160) == 0
    assert timeline.place("inbound", 165, 160) == 0  # 5 ms late: jitter, not a gap
    assert timeline.place("inbound", 8000, 160) == 8000 - 320  # a second later: the rest is silence
    assert timeline.place("outbound", 800, 160) == 800  # each track on its own
    assert timeline.place("inbound", 0, 160) is None  # all of it delivered already
    assert timeline.place("inbound", 8100, 160) == 0  # overlaps in part: kept whole
    assert timeline.delivered("inbound") == 8320


# ---------------------------------------------------------------- servers


@dataclass
class Keyed:
    served: LiveServer
    runtime: Any
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return f"{self.served.ws_url}/v1/connectors/twilio"

    def count(self, metric: str, **labels: str) -> float:
        return self.runtime.metrics.registry.get_sample_value(metric, {**labels, "connector": "twilio"}) or 0.0


@pytest.fixture(scope="module")
def keyed(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    """A server with a keys file (two integrators of two tenants) and a Twilio auth token."""
    tmp: Path = tmp_path_factory.mktemp("twilio")
    keys = {"pbx-twilio": f"cw_{secrets.token_urlsafe(16)}", "pbx-other": f"cw_{secrets.token_urlsafe(16)}"}
    tenants = {"pbx-twilio": TENANT, "pbx-other": "t-other"}
    spec = KeysFile(principals=[PrincipalSpec(role="integrator", name=name, tenant=tenants[name],
                                              keys=[KeySpec(sha256=digest_of(key))]) for name, key in keys.items()])
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml", twilio_auth_token=AUTH_TOKEN, ingest_start_timeout_s=2.0)
    try:
        with LiveServer(create_app(runtime=rt), settings=rt.settings) as served:
            yield Keyed(served, rt, keys)
    finally:
        close_private(rt)


def assert_heard(utterances: list[dict[str, Any]], timeline: dict[str, Any]) -> None:
    """Both speakers, the stored text and the live finals beside it, within the μ-law bounds."""
    live = [{**u, "text": u["live_text"]} for u in utterances if u["live_text"] is not None]
    for lines in (utterances, live):
        for role in ("agent", "customer"):
            cer = speaker_cer(lines, timeline, role)
            assert cer <= BOUNDS[("mulaw", role)], (role, cer, [(u["speaker"], u["text"]) for u in lines])


async def closed(ws: Any, timeout: float = 15.0) -> tuple[int | None, str]:
    """The server's close code and reason, reading (and dropping) whatever comes first."""
    async def drain() -> None:
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass

    await asyncio.wait_for(drain(), timeout)
    return ws.close_code, ws.close_reason or ""


# ---------------------------------------------------------------- whole calls


async def test_a_call_streamed_in_real_time_is_stored_under_its_callsid_with_both_speakers_and_nothing_is_sent_back(
    live_server: Any, runtime: Any, two_party_call: Any
) -> None:
    """No keys configured: a loopback stream is admitted as on /v1/ingest. Twilio's unidirectional stream
    takes no messages from the server, and gets none."""
    sid, back = call_sid(), []
    await play_call(f"ws://127.0.0.1:{live_server.port}/v1/connectors/twilio", two_party_call.agent,
                    two_party_call.customer, two_party_call.rate, call_id=sid, agent_id=AGENT_ID,
                    caller_number=CALLER, on_message=back.append)
    assert back == []
    stored = await second_pass_stored(runtime, sid)
    assert_heard(stored, two_party_call.timeline)
    call = runtime.store.get_call(sid)
    assert (call.status, call.agent_id, call.caller_number, call.direction) == ("completed", AGENT_ID, CALLER, "inbound")
    assert call.audio_format == {"encoding": "mulaw", "sample_rate": 8000, "layout": "two_legs",
                                 "channel_map": ["agent", "customer"]}
    assert abs(call.duration - two_party_call.duration_s) < 0.1
    events = runtime.store.list_events(sid)
    assert [(e["event"], e["by"]) for e in events] == [("answered", None), ("hangup", "system")]
    assert events[0]["t"] == 0.0 and abs(events[1]["t"] - two_party_call.duration_s) < 0.1
    assert call.report is not None and 0 <= call.report["score"] <= 100


async def test_twice_real_time_signed_keyed_with_the_tracks_swapped_and_a_skipped_stretch_stays_on_the_clock(
    keyed: Keyed, two_party_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed handshake and an integrator's key: the call is its tenant's. The TwiML runs on the agent's
    leg (CALLWATCH_TWILIO_INBOUND_SPEAKER=agent), and the agent's track sends nothing from 12.4 s to 16.2 s,
    between two of their turns: the turn after is still stored where it was spoken (16.57 s), not 3.8 s
    early, because the stamps of the chunks after the gap say where they belong."""
    monkeypatch.setattr(keyed.runtime.settings, "twilio_inbound_speaker", "agent")
    sid = call_sid()
    await play_call(keyed.url, two_party_call.agent, two_party_call.customer, two_party_call.rate, call_id=sid,
                    agent_id=AGENT_ID, key=keyed.keys["pbx-twilio"], speed=2.0, caller_number=CALLER,
                    auth_token=AUTH_TOKEN, inbound="agent", withheld={"inbound": [(12.4, 16.2)]})
    stored = await second_pass_stored(keyed.runtime, sid)
    assert_heard(stored, two_party_call.timeline)
    call = keyed.runtime.store.get_call(sid)
    assert (call.status, call.tenant, call.agent_id, call.caller_number) == ("completed", TENANT, AGENT_ID, CALLER)
    assert [e["event"] for e in keyed.runtime.store.list_events(sid)] == ["answered", "hangup"]
    assert call.report is not None
    third_turn = next(t for t in two_party_call.timeline["turns"] if t["role"] == "agent" and t["start_s"] > 15)
    agent_starts = [u["start"] for u in stored if u["speaker"] == "agent"]
    assert any(abs(start - third_turn["start_s"]) < 0.6 for start in agent_starts), agent_starts
    assert not any(12.4 < start < 15.5 for start in agent_starts), agent_starts


async def test_one_track_streamed_is_a_call_of_one_leg(keyed: Keyed, two_party_call: Any) -> None:
    """`<Connect><Stream>` (or `track="inbound_track"`) streams the inbound track only: one leg, the customer's."""
    sid = call_sid()
    ws = await connect(keyed.url, auth_token=AUTH_TOKEN)
    stream = MediaStream(ws, sid)
    await stream.connected()
    await stream.start(["inbound"], {"callwatch_key": keyed.keys["pbx-twilio"], "agent_id": AGENT_ID})
    # The customer's first turn, 5.5–7.3 s in.
    for index, chunk in enumerate(mulaw_chunks(two_party_call.customer[:8 * 8000], 8000)):
        await stream.media("inbound", chunk, index * CHUNK_MS)
    await stream.stop()
    assert await closed(ws) == (1000, "call ended")
    call = keyed.runtime.store.get_call(sid)
    assert call.status == "completed" and call.audio_format["layout"] == "two_legs"
    assert {u["speaker"] for u in keyed.runtime.store.list_utterances(sid)} == {"customer"}


# ---------------------------------------------------------------- refusals and faults


async def test_a_handshake_without_a_valid_signature_is_refused_with_403(keyed: Keyed) -> None:
    before = keyed.count("callwatch_calls_refused_total", reason="bad_signature")
    for token, url in ((None, None), ("not-the-token", None), (AUTH_TOKEN, "wss://elsewhere.example/v1/connectors/twilio")):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(keyed.url, auth_token=token, signed_url=url)
        assert refused.value.response.status_code == 403
    assert keyed.count("callwatch_calls_refused_total", reason="bad_signature") == before + 3


@pytest.mark.parametrize("key", [None, "cw_wrong"])
async def test_a_stream_without_a_right_key_is_closed_1008_after_its_start_and_nothing_is_stored(
    keyed: Keyed, key: str | None
) -> None:
    before = keyed.count("callwatch_calls_refused_total", reason="unauthorized")
    sid = call_sid()
    ws = await connect(keyed.url, auth_token=AUTH_TOKEN)
    stream = MediaStream(ws, sid)
    await stream.connected()
    await stream.start(["inbound", "outbound"], {"agent_id": AGENT_ID} | ({"callwatch_key": key} if key else {}))
    assert await closed(ws) == (1008, "unauthorized: missing or wrong callwatch_key parameter")
    assert keyed.runtime.store.get_call(sid) is None
    assert keyed.count("callwatch_calls_refused_total", reason="unauthorized") == before + 1


async def _start_with(stream: MediaStream, keyed: Keyed, **changes: Any) -> None:
    await stream.start(["inbound", "outbound"], {"callwatch_key": keyed.keys["pbx-twilio"], "agent_id": AGENT_ID},
                       **changes)


REFUSED_BEFORE_START = {
    "media_before_start": (lambda s, k: s.media("inbound", b"\xff" * 160, 0),
                           4401, "not_started: 'media' before start; Twilio sends connected, then start"),
    "not_json": (lambda s, k: s.ws.send("media, please"),
                 4400, "malformed_json: a frame that is not a JSON object; Twilio sends JSON text frames"),
    "pcm_16k": (lambda s, k: _start_with(s, k, media_format={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}),
                4401, "unsupported_media_format: audio/l16 at 16000 Hz, 1 channel(s); Twilio streams audio/x-mulaw "
                      "at 8000 Hz, 1 channel"),
    "no_agent_id": (lambda s, k: s.start(["inbound"], {"callwatch_key": k.keys["pbx-twilio"]}),
                    4401, "invalid_start: customParameters.agent_id: String should have at least 1 character"),
    "start_timeout": (lambda s, k: asyncio.sleep(0), 4401, "start_timeout: no start within 2 s of opening the socket"),
}


@pytest.mark.parametrize("case", list(REFUSED_BEFORE_START))
async def test_a_stream_that_does_not_start_as_twilio_does_is_closed_with_its_reason_and_nothing_is_stored(
    keyed: Keyed, case: str
) -> None:
    send, code, reason = REFUSED_BEFORE_START[case]
    word = reason.split(":")[0]
    before = keyed.count("callwatch_ingest_errors_total", code=word)
    sid = call_sid()
    ws = await connect(keyed.url, auth_token=AUTH_TOKEN)
    stream = MediaStream(ws, sid)
    await stream.connected()
    await send(stream, keyed)
    assert await closed(ws) == (code, reason)
    assert keyed.runtime.store.get_call(sid) is None
    assert keyed.count("callwatch_ingest_errors_total", code=word) == before + 1


def opening_turns(timeline: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {**timeline, "turns": [t for t in timeline["turns"] if t["end_s"] < seconds]}


async def stream_opening(stream: MediaStream, call: Any, seconds: float, between: Any = None) -> None:
    """The call's first `seconds` on both tracks, as fast as the server's lead allows (under 10 s); `between`
    is awaited after the first second."""
    inbound, outbound = (mulaw_chunks(leg[:int(seconds * call.rate)], call.rate) for leg in (call.customer, call.agent))
    for index, (customer, agent) in enumerate(zip(inbound, outbound)):
        await stream.media("inbound", customer, index * CHUNK_MS)
        await stream.media("outbound", agent, index * CHUNK_MS)
        if between is not None and index == 50:
            await between()


async def test_unknown_events_bad_payloads_replays_and_a_second_start_are_counted_and_the_call_goes_on(
    keyed: Keyed, two_party_call: Any
) -> None:
    """Each is reported (the agent's screen and the metrics see an `error`; Twilio is sent nothing) and
    dropped; `dtmf` and `mark` are taken silently; the call goes on and what was heard is whole."""
    codes = ("unknown_event", "bad_audio_frame", "invalid_message", "media_out_of_order", "already_started",
             "unexpected_binary")
    before = {code: keyed.count("callwatch_ingest_errors_total", code=code) for code in codes}
    sid = call_sid()
    ws = await connect(keyed.url, auth_token=AUTH_TOKEN)
    stream = MediaStream(ws, sid)

    async def faults() -> None:
        await stream.send({"event": "transcription", "sequenceNumber": "9000", "streamSid": stream.stream_sid})
        await stream.send({"event": "media", "sequenceNumber": "9001", "streamSid": stream.stream_sid,
                           "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "!!not base64!!"}})
        await stream.send({"event": "media", "sequenceNumber": "9002", "streamSid": stream.stream_sid,
                           "media": {"track": "inbound", "chunk": "1", "timestamp": "0"}})
        await stream.media("inbound", b"\xff" * 160, 0)  # stamped at 0 again: already heard
        await _start_with(stream, keyed)
        await ws.send(b"\x00\x01")
        await stream.dtmf("1")
        await stream.send({"event": "mark", "sequenceNumber": "9003", "streamSid": stream.stream_sid,
                           "mark": {"name": "greeting"}})

    await stream.connected()
    await _start_with(stream, keyed)
    await stream_opening(stream, two_party_call, 7.5, between=faults)
    await stream.stop()
    assert await closed(ws) == (1000, "call ended")
    stored = await second_pass_stored(keyed.runtime, sid)
    assert keyed.runtime.store.get_call(sid).status == "completed"
    opening = opening_turns(two_party_call.timeline, 7.5)
    for role in ("agent", "customer"):
        assert speaker_cer(stored, opening, role) <= BOUNDS[("mulaw", role)], stored
    assert {code: keyed.count("callwatch_ingest_errors_total", code=code) - before[code] for code in codes} == {
        code: 1 for code in codes}


async def test_a_stream_that_vanishes_mid_call_leaves_the_call_dropped_with_what_was_heard(
    keyed: Keyed, two_party_call: Any
) -> None:
    sid = call_sid()
    ws = await connect(keyed.url, auth_token=AUTH_TOKEN)
    stream = MediaStream(ws, sid)
    await stream.connected()
    await _start_with(stream, keyed)
    await stream_opening(stream, two_party_call, 7.5)
    ws.transport.abort()  # no stop, no close frame: the connection is simply gone
    deadline = time.monotonic() + 60
    while (call := keyed.runtime.store.get_call(sid)) is None or call.status == "live":
        assert time.monotonic() < deadline, "the call was not ended"
        await asyncio.sleep(0.2)
    assert call.status == "dropped"
    stored = await second_pass_stored(keyed.runtime, sid)
    opening = opening_turns(two_party_call.timeline, 7.5)
    for role in ("agent", "customer"):
        assert speaker_cer(stored, opening, role) <= BOUNDS[("mulaw", role)], stored
    assert [e["event"] for e in keyed.runtime.store.list_events(sid)] == ["answered"]


def test_the_messages_the_client_sends_are_twilios() -> None:
    """The client's own messages, against the documented examples' shapes (strings of digits, streamSid
    on every message but `connected`)."""
    sent: list[dict[str, Any]] = []

    class Recorder:
        async def send(self, text: str) -> None:
            sent.append(json.loads(text))

    async def run() -> None:
        stream = MediaStream(Recorder(), "CA" + "1" * 32)
        await stream.connected()
        await stream.start(["inbound", "outbound"], {"agent_id": AGENT_ID})
        await stream.media("outbound", b"\xff" * 160, 0)
        await stream.media("inbound", b"\xff" * 160, 0)
        await stream.stop()

    asyncio.run(run())
    assert sent[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert [m["sequenceNumber"] for m in sent[1:]] == ["1", "2", "3", "4"]
    assert sent[1]["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert [(m["media"]["track"], m["media"]["chunk"], m["media"]["timestamp"]) for m in sent[2:4]] == [
        ("outbound", "1", "0"), ("inbound", "1", "0")]
    assert sent[4]["stop"] == {"accountSid": sent[1]["start"]["accountSid"], "callSid": "CA" + "1" * 32}
    assert all(m["streamSid"] == sent[1]["start"]["streamSid"] for m in sent[1:])
