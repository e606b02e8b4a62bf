"""Every time that crosses the wire or a file is a finite number of seconds under a day, and judging a call is
bounded work done off the event loop. One `1e308` once froze the whole server: the rules engine ticked in
0.5 s steps up to it, on the event loop or in a thread nothing could stop.

Real server on loopback, real engine; the property test drives the engine with any timeline Hypothesis finds.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.ingest_client import CallStream
from rules.config import load_rules_config_text
from rules.engine import ReplayStopped, RuleBook, audit_timeline
from rules.timeline import MAX_CALL_TIME_S, CallEvent, CallTimeline, TimelineError, parse_timeline
from service import judging
from service.audit.intake.metadata import MetadataError, read_metadata_csv
from service.audit.running.runner import audit_recording
from service.audit.web.models import AuditOptions, MetaEvent, RecordingMeta
from service.judging import JudgingOverBudget, judge_off_loop

BOOK = RuleBook(load_rules_config_text(None))
HEADER = {"call_id": "bounded", "direction": "inbound", "started_at": "2026-11-23T10:00:00+08:00"}
HOSTILE_TIMES = ["1e308", "Infinity", "-Infinity", "NaN", "-1", "86400.5"]


def a_day_long_call(utterances: int = 0) -> CallTimeline:
    """The longest call a timeline may describe, so the engine ticks through a whole day."""
    utts = [{"speaker": "agent", "start": 10.0 * i, "end": 10.0 * i + 2, "text": "您好，请问还有什么可以帮您"}
            for i in range(utterances)]
    return parse_timeline({**HEADER, "events": [{"type": "answered", "t": 0.0},
                                                {"type": "hangup", "t": MAX_CALL_TIME_S, "by": "customer"}],
                           "utterances": utts})


# ---------------------------------------------------------------- the wire: REST


@pytest.mark.parametrize("t", HOSTILE_TIMES)
def test_a_posted_timeline_with_a_hostile_time_is_a_422_and_the_server_keeps_answering(live_server, t):
    body = ('{"timeline": {"call_id": "x", "direction": "inbound", "started_at": "2026-11-23T10:00:00+08:00", '
            '"events": [{"type": "hangup", "t": %s, "by": "customer"}]}}' % t)
    response = httpx.post(f"{live_server.url}/v1/audit-timeline", content=body,
                          headers={"content-type": "application/json"}, timeout=15)
    assert response.status_code == 422, response.text[:300]
    assert "events[0].t" in response.text
    assert httpx.get(f"{live_server.url}/healthz", timeout=5).status_code == 200


# ---------------------------------------------------------------- the wire: the ingest socket


async def test_a_live_event_with_a_hostile_time_is_refused_and_the_call_goes_on(live_server, runtime):
    call_id = "bounded-live-event"
    silence = np.zeros(8000, dtype=np.int16).tobytes()  # 1 s at 8 kHz
    async with CallStream(live_server.ingest_url) as call:
        await call.start(call_id=call_id, agent_id="bt", audio={"encoding": "pcm_s16le", "sample_rate": 8000,
                                                                 "layout": "mono"})
        await call.send_audio(silence)
        for t in [1e308, math.inf, math.nan, 500.0]:  # 500 s: finite, but far ahead of the 1 s heard
            await call.event("hold", t=t)  # json.dumps writes Infinity and NaN, which json.loads reads
        await call.event("hold", t=0.4)
        await call.event("hangup", by="customer")
        results = [r async for r in call.results()]
    errors = [r for r in results if r["type"] == "error"]
    assert [e["code"] for e in errors] == ["invalid_message"] * 4, errors
    assert "ahead of the audio heard" in errors[-1]["message"]
    assert next(r for r in results if r["type"] == "ended")["status"] == "completed"
    assert any(r["type"] == "report" for r in results)
    stored = runtime.store.list_events(call_id)
    assert [e["event"] for e in stored] == ["hold", "hangup"]
    assert stored[0]["t"] == 0.4 and stored[1]["t"] <= 1.0
    response = httpx.get(f"{live_server.url}/v1/calls/{call_id}", timeout=10)
    assert response.status_code == 200 and response.json()["call_id"] == call_id


# ---------------------------------------------------------------- files: audit metadata


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", "-5", "86401"])
def test_a_metadata_csv_time_that_is_not_a_time_in_a_day_names_its_row(tmp_path, value):
    path = tmp_path / "meta.csv"
    path.write_text(f"file,hold_at,resume_at\na.wav,{value},3\n", encoding="utf-8")
    with pytest.raises(MetadataError, match=r"meta.csv, row 2"):
        read_metadata_csv(path)


async def test_an_event_past_the_end_of_the_recording_fails_its_audit_before_any_decoding(runtime, tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros((16000 * 3, 2), dtype=np.int16), 16000, subtype="PCM_16")  # 3 s
    meta = RecordingMeta(events=[MetaEvent(event="hold", t=500.0)])
    began = time.monotonic()
    result = await audit_recording(runtime, path, meta=meta, options=AuditOptions(), book=runtime.rule_book)
    assert (result.state, result.error_code) == ("failed", "bad_metadata")
    assert "hold at 500 s is past the end of the recording (3.0 s)" in (result.error or "")
    assert time.monotonic() - began < 5


# ---------------------------------------------------------------- the engine and its budget


def test_a_timeline_built_around_validation_is_refused_not_replayed_forever():
    forged = CallTimeline.model_construct(
        **{**HEADER, "started_at": datetime(2026, 11, 23, tzinfo=timezone.utc)},
        events=[CallEvent.model_construct(type="hangup", t=1e308, by="customer", ring_count=None, target=None)],
        utterances=[], emotion=[], voice_activity=[], related_calls=None)
    began = time.monotonic()
    with pytest.raises(TimelineError, match="past the 86400 s a call may last"):
        audit_timeline(forged, BOOK)
    assert time.monotonic() - began < 0.5


def test_a_replay_asked_to_stop_stops_within_a_few_steps():
    asked = []

    def stop() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 3

    with pytest.raises(ReplayStopped):
        audit_timeline(a_day_long_call(), BOOK, stop=stop)
    assert len(asked) == 3


async def test_judging_past_its_budget_is_stopped():
    call = a_day_long_call(utterances=2000)  # built before the clock starts: only the judging is timed
    began = time.monotonic()
    with pytest.raises(JudgingOverBudget, match="took over 0.05 s"):
        await judge_off_loop(call, BOOK, budget_s=0.05)
    # Stopped near its budget, with room for a loaded 2-core CI machine (0.59 s was seen with the build timed).
    assert time.monotonic() - began < 1.0


async def test_a_caller_that_goes_away_stops_the_replay_thread_too(monkeypatch):
    """Not only the wait: the thread's own work ends (an abandoned request once left forty spinning)."""
    ended: list[str] = []
    finished = threading.Event()

    def spied(*args, **kwargs):
        try:
            return audit_timeline(*args, **kwargs)
        except ReplayStopped:
            ended.append("stopped")
            raise
        finally:
            finished.set()

    monkeypatch.setattr(judging, "audit_timeline", spied)
    polls = 0

    async def gone() -> bool:
        nonlocal polls
        polls += 1
        return polls >= 2

    with pytest.raises(asyncio.CancelledError):
        await judge_off_loop(a_day_long_call(utterances=4000), BOOK, budget_s=600, gone=gone)
    assert await asyncio.to_thread(finished.wait, 1.0), "the replay thread went on"
    assert ended == ["stopped"]


# ---------------------------------------------------------------- the property


anything_numeric = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=2 * MAX_CALL_TIME_S),
    st.integers(min_value=-10, max_value=10**30),
)
timeline_events = st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["ringing", "answered", "hold", "resume", "transfer"]),
                           "t": anything_numeric}), max_size=6)
timeline_utterances = st.lists(
    st.fixed_dictionaries({"speaker": st.sampled_from(["agent", "customer"]), "start": anything_numeric,
                           "end": anything_numeric, "text": st.sampled_from(["喂", "您好", "请稍等", "再见"])}),
    max_size=6)


@settings(max_examples=120, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(events=timeline_events, utterances=timeline_utterances, hangup=anything_numeric)
def test_any_timeline_is_refused_or_judged_in_bounded_time(events, utterances, hangup):
    data = {**HEADER, "events": sorted(events, key=lambda e: e["t"] if isinstance(e["t"], (int, float))
                                       and not math.isnan(e["t"]) else 0.0)
            + [{"type": "hangup", "t": hangup, "by": "agent"}], "utterances": utterances}
    try:
        timeline = parse_timeline(json.loads(json.dumps(data)))
    except TimelineError:
        return
    times = [e.t for e in timeline.events] + [u.end for u in timeline.utterances]
    assert all(math.isfinite(t) and 0 <= t <= MAX_CALL_TIME_S for t in times)
    began = time.monotonic()
    report = audit_timeline(timeline, BOOK)
    assert 0 <= report.score <= 100
    assert time.monotonic() - began < 5.0  # a whole day of ticks is about one second on the CI machine



numeric_text = st.one_of(
    anything_numeric.map(repr), st.sampled_from(["1e308", "-1e308", "inf", "-Infinity", "NaN", "1_000", "0x10", "",
                                                 "  7 ", "1e-320", "9" * 400]),
)


@settings(max_examples=120, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(values=st.lists(numeric_text, min_size=5, max_size=5))
def test_any_metadata_csv_times_are_refused_by_row_or_read_as_times_in_a_day(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("meta") / "calls.csv"
    path.write_text("file,ringing_at,answered_at,hold_at,resume_at,hangup_at\n"
                    f"a.wav,{','.join(v.replace(',', ' ') for v in values)}\n", encoding="utf-8")
    try:
        meta = read_metadata_csv(path)
    except MetadataError as err:
        assert "calls.csv, row 2" in str(err)
        return
    for event in meta["a.wav"].events or []:
        assert math.isfinite(event.t) and 0 <= event.t <= MAX_CALL_TIME_S
