"""A recorded stereo call through the same pipeline as a live one, faster than real time."""

import time

from models.text import character_error_rate
from pipelines.recording_run import run_recording
from wire.ingest import CallEventMessage


async def test_a_stereo_recording_is_transcribed_by_speaker_faster_than_real_time(runtime, shared_audio, call_timeline):
    name = "call_01_read_vs_spontaneous"
    events = [CallEventMessage(type="event", event="answered", t=0.0),
              CallEventMessage(type="event", event="hangup", t=26.0, by="customer")]
    started = time.perf_counter()
    outcome = await run_recording(runtime, shared_audio / "calls" / f"{name}.wav", "rec-1", events=events)
    elapsed = time.perf_counter() - started
    assert elapsed < outcome.duration  # an audit must run faster than the call lasted
    assert not [r for r in outcome.results if r.type == "partial"]
    timeline = call_timeline(name)
    for role, bound in (("agent", 0.12), ("customer", 0.26)):  # the live-path bounds of test_live_ingest
        hyp = "".join(f.text for f in outcome.finals if f.speaker == role)
        ref = "".join(t["text"] for t in timeline["turns"] if t["role"] == role)
        errors, length = character_error_rate(ref, hyp)
        assert errors / length <= bound, (role, hyp)
    assert [r.event for r in outcome.results if r.type == "event"] == ["answered", "hangup"]


async def test_swapped_channels_swap_the_speakers(runtime, shared_audio):
    outcome = await run_recording(runtime, shared_audio / "calls" / "call_01_read_vs_spontaneous.wav", "rec-2",
                                  agent_channel=1)
    first = outcome.finals[0]
    assert first.speaker == "customer" and first.start < 1.5  # the left channel speaks first
