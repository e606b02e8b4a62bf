"""Property: whatever a client throws at the ingest socket — random text and binary frames, wrong order,
truncated or huge JSON, another call's id — the server answers in protocol or closes with a documented code,
stays up, and a well-behaved call streaming at the same time is transcribed and stored exactly as without it.

Real server, real models (the shared session runtime); Hypothesis drives the bad clients, derandomized so
CI runs the same examples every time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from sqlalchemy import select
from websockets.sync.client import connect

from clients.ingest_client import CallStream
from models.text import character_error_rate
from pipelines.audio import encode_pcm16
from service.persistence.tables import calls
from wire.ingest import CloseCode

SENTENCE = "aishell1_S0764_W0122.wav"  # 0 errors through the live path (tests/test_ingest_bad_input.py)
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
FRAME = 640  # 20 ms of 16-bit PCM at 16 kHz
GOOD_CALL = "fuzz-good-call"
EXAMPLES = 30
# What a bad client may see the socket closed with; 1011 (internal error) or a dropped connection would be
# the server failing.
DOCUMENTED_CLOSES = {int(c) for c in CloseCode} | {1009}  # 1009: a frame over the socket's size limit


@pytest.fixture(scope="module")
def sentence_frames(clip) -> list[bytes]:
    pcm = encode_pcm16(np.concatenate([clip(SENTENCE), np.zeros(16000, np.float32)]))
    return [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]


# ---------------------------------------------------------------- strategies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Valid ids only of the fuzz- family (so nothing else in the session's store can be hit), the good call's,
# and ids the protocol refuses (a space is never allowed).
call_ids = (st.sampled_from([GOOD_CALL, "fuzz-a", "fuzz-b"]) | st.from_regex(r"fuzz-[a-z0-9]{1,6}", fullmatch=True)
            | st.text(max_size=10).map(lambda t: t + " "))
formats = st.sampled_from([AUDIO, {"encoding": "mulaw", "sample_rate": 8000, "layout": "mono"},
                           {"encoding": "opus", "sample_rate": 48000}, {}, {**AUDIO, "sample_rate": 4000}])
starts = st.fixed_dictionaries(
    {"type": st.just("start"), "call_id": call_ids, "agent_id": st.sampled_from(["fz", ""]) | st.text(max_size=6),
     "audio": formats},
    optional={"direction": st.sampled_from(["inbound", "outbound", "sideways"]), "protocol": st.integers(0, 3),
              "started_at": st.sampled_from(["2026-11-23T09:30:00+08:00", "yesterday"]),
              "caller_number": st.text(max_size=40), "extra": json_values},
)
# Times a clock could send and times only an attacker would: non-finite (json.dumps writes Infinity and NaN,
# which the server's parser reads), huge, negative, far past the audio heard.
event_times = st.one_of(st.floats(-5, 1e7, allow_nan=False), st.none(),
                        st.sampled_from([1e308, -1e308, float("inf"), float("-inf"), float("nan"), 2.0**70, 86_400.5]))
events = st.fixed_dictionaries(
    {"type": st.just("event"), "event": st.sampled_from(["hangup", "hold", "resume", "answered", "transfer", "explode"])},
    optional={"by": st.sampled_from(["agent", "customer", "system", "nobody"]) | st.none(),
              "t": event_times, "target": st.text(max_size=10)},
)
# Frames the server answers and goes on after, and frames it must close the socket for (not JSON, not an
# object, cut short); the second kind is rarer, so that examples get past their first frame.
answered = st.one_of(
    starts.map(json.dumps), events.map(json.dumps),
    st.dictionaries(st.sampled_from(["type", "call_id", "event", "audio"]), json_values, max_size=4).map(json.dumps),
    st.integers(100_000, 400_000).map(lambda n: json.dumps({"type": "start", "pad": "x" * n})),  # huge
)
fatal = st.one_of(
    st.text(max_size=60), json_values.filter(lambda v: not isinstance(v, dict)).map(json.dumps),
    starts.map(json.dumps).flatmap(lambda s: st.integers(0, len(s) - 1).map(lambda n: s[:n])),  # truncated JSON
)
binaries = st.one_of(
    st.binary(max_size=48),  # stray bytes, odd lengths, any leg byte
    st.binary(min_size=1281, max_size=1281),  # 40 ms on a leg, if a call is open (random noise)
    st.just(b"\x01" + b"\x00" * (256 * 1024)),  # over the frame limit
)
frame = st.one_of(answered.map(lambda t: ("text", t)), answered.map(lambda t: ("text", t)),
                  binaries.map(lambda b: ("bytes", b)), fatal.map(lambda t: ("text", t)))
frames = st.lists(frame, min_size=1, max_size=8)


# ---------------------------------------------------------------- clients


def misbehave(url: str, actions: list[tuple[str, Any]]) -> tuple[list[str], int | None]:
    """Send the frames, read what comes back until the socket is quiet; (messages, the server's close code)."""
    received: list[str] = []
    try:
        with connect(url, open_timeout=10, close_timeout=5, max_size=None) as ws:
            for _kind, data in actions:
                ws.send(data)
            while True:
                received.append(ws.recv(timeout=0.4))
    except TimeoutError:
        return received, None
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else -1


def good_call_in_background(url: str, frames: list[bytes], done: threading.Event) -> tuple[threading.Thread, dict[str, Any]]:
    """The sentence again and again in real time (customer leg) until `done`, then a hangup."""
    box: dict[str, Any] = {}

    async def run() -> None:
        async with CallStream(url) as call:
            await call.start(call_id=GOOD_CALL, agent_id="good-agent", audio=AUDIO, caller_number="02112345678")
            box["started"] = time.monotonic()
            for _ in range(4):
                for frame in frames:
                    await call.send_audio(frame, leg=1)
                    await asyncio.sleep(0.02)
                box["sentences"] = box.get("sentences", 0) + 1
                if done.is_set():
                    break
            await call.event("hangup", by="customer")
            box["results"] = [r async for r in call.results()]

    def thread() -> None:
        try:
            asyncio.run(run())
        except Exception as exc:  # surfaced by the test
            box["error"] = exc

    worker = threading.Thread(target=thread, daemon=True)
    worker.start()
    return worker, box


# ---------------------------------------------------------------- the property


def test_random_frames_never_crash_the_server_nor_touch_another_call(live_server, runtime, sentence_frames, manifest):
    url = live_server.ingest_url
    done = threading.Event()
    worker, good = good_call_in_background(url, sentence_frames, done)
    deadline = time.monotonic() + 30
    while "started" not in good and "error" not in good and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = {"examples": 0, "closes": {}, "errors": set()}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(frames)
    @example([("bytes", b"\x01\x00\x01"), ("text", '{"type": "start", "call_id": "fuzz-a", "agent_id"')])
    @example([("text", json.dumps({"type": "start", "call_id": GOOD_CALL, "agent_id": "intruder", "audio": AUDIO})),
              ("bytes", b"\x01" + b"\x7f\x7f" * 320), ("text", json.dumps({"type": "event", "event": "hangup", "by": "agent"}))])
    @example([("text", json.dumps({"type": "event", "event": "hangup", "by": "agent"})),
              ("text", json.dumps({"type": "start", "call_id": "fuzz-b", "agent_id": "fz", "audio": AUDIO})),
              ("text", json.dumps({"type": "start", "call_id": "fuzz-b", "agent_id": "fz", "audio": AUDIO})),
              ("bytes", b"\x01" + b"\x00" * (256 * 1024)), ("text", "[1, 2, 3]")])
    @example([("text", "{" * 5000), ("bytes", b"")])
    @example([("text", json.dumps({"type": "start", "call_id": "fuzz-times", "agent_id": "fz", "audio": AUDIO})),
              *[("text", json.dumps({"type": "event", "event": "hold", "t": t})) for t in (1e308, float("inf"), 9e6)],
              ("text", json.dumps({"type": "event", "event": "hangup", "by": "agent", "t": float("nan")}))])
    def bad_client(actions: list[tuple[str, Any]]) -> None:
        messages, close = misbehave(url, actions)
        seen["examples"] += 1
        seen["closes"][close] = seen["closes"].get(close, 0) + 1
        for raw in messages:
            message = json.loads(raw)  # the server only ever speaks JSON objects with a type
            assert isinstance(message, dict) and isinstance(message.get("type"), str), raw[:200]
            if message["type"] == "error":
                assert message["code"] and message["message"]
                seen["errors"].add(message["code"])
            assert message.get("call_id") != GOOD_CALL, "a bad client was sent the good call's results"
        assert close is None or close in DOCUMENTED_CLOSES, f"closed with {close}"
        assert httpx.get(f"{live_server.url}/healthz", timeout=10).status_code == 200

    began = time.monotonic()
    try:
        bad_client()
    finally:
        done.set()
        worker.join(timeout=120)
    fuzz_seconds = time.monotonic() - began
    assert "error" not in good, good.get("error")
    assert not worker.is_alive(), "the good call never finished"

    # The good call, heard through all of that, as if alone.
    results = good["results"]
    ended = next(r for r in results if r["type"] == "ended")
    assert ended["status"] == "completed"
    finals = [r for r in results if r["type"] == "final"]
    reference = manifest[SENTENCE]["reference_transcript"]
    assert len(finals) >= good["sentences"] >= 1
    for final in finals:
        errors, _ = character_error_rate(reference, final["text"])
        assert errors <= 1, final["text"]
    stored = runtime.store.list_utterances(GOOD_CALL)
    assert [(u["utterance_id"], u["text"]) for u in stored] == [(f["utterance_id"], f["text"]) for f in finals]
    assert runtime.store.list_events(GOOD_CALL) == [{"event": "hangup", "t": pytest.approx(ended["duration"], abs=0.5),
                                                     "by": "customer", "target": None}]
    record = runtime.store.get_call(GOOD_CALL)
    assert (record.agent_id, record.caller_number, record.status) == ("good-agent", "02112345678", "completed")

    # Whatever times the bad clients sent, every stored time is a time in the call, and every call's record
    # can be read back (a stored 1e308 once made the call's report a 500).
    with runtime.store.db.engine.connect() as conn:
        fuzz_calls = conn.execute(select(calls.c.call_id).where(calls.c.call_id.like("fuzz-%"))).scalars().all()
    for call_id in fuzz_calls:
        for stored_event in runtime.store.list_events(call_id):
            assert 0 <= stored_event["t"] <= runtime.settings.max_call_s, (call_id, stored_event)
        assert httpx.get(f"{live_server.url}/v1/calls/{call_id}", timeout=10).status_code == 200, call_id

    # No fuzz call is left open.
    for _ in range(100):
        if not [c for c in runtime.sessions if c.startswith("fuzz-") and c != GOOD_CALL]:
            break
        time.sleep(0.1)
    assert not [c for c in runtime.sessions if c.startswith("fuzz-")]
    print(f"\n{seen['examples']} bad clients in {fuzz_seconds:.1f} s while the good call streamed "
          f"{good['sentences']} sentences; "
          f"closes {seen['closes']}; error codes {sorted(seen['errors'])}")
