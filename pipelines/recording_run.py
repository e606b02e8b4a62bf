"""A recorded call through the live pipeline, as fast as the recogniser allows.

QA audits use what a live call uses (segmenter, recogniser, filter, observers for emotion and rules), fed
from a file instead of a socket. The one difference: nobody waits for a recording's finals, so it is heard
once, by the second pass over each whole leg (pipelines/second_pass.py), the pass a live call's stored
transcript also comes from. Call events from metadata are replayed at their times on the audio clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.audio import load_audio_file
from pipelines.call_session import CallObserver, CallSession
from wire.ingest import AudioFormat, CallEventMessage

FEED_SECONDS = 0.5  # audio handed to the session at a time; events land between these steps


@dataclass
class RecordingOutcome:
    call_id: str
    duration: float
    audio_format: AudioFormat
    results: list[Any] = field(default_factory=list)

    @property
    def finals(self) -> list[Any]:
        return sorted((r for r in self.results if r.type == "final"), key=lambda r: r.start)


def recording_format(channels: int, rate: int, agent_channel: int = 0) -> AudioFormat:
    """Stereo recordings hold the agent on `agent_channel` (0 = left, the recorders' custom); mono is
    one mixed channel whose speakers cannot be told apart."""
    if channels == 1:
        return AudioFormat(encoding="pcm_s16le", sample_rate=rate, layout="mono")
    if channels != 2:
        raise ValueError(f"{channels} audio channels; a call recording is mono or stereo")
    channel_map = ("agent", "customer") if agent_channel == 0 else ("customer", "agent")
    return AudioFormat(encoding="pcm_s16le", sample_rate=rate, layout="stereo", channel_map=channel_map)


async def run_recording(
    runtime: Any,
    path: Path,
    call_id: str,
    *,
    events: list[CallEventMessage] | None = None,
    agent_channel: int = 0,
    observers: list[CallObserver] | None = None,
    max_seconds: float | None = None,
    beam_size: int | None = None,
) -> RecordingOutcome:
    """Decode `path`, stream it through a CallSession with `observers`, and return every result."""
    audio, rate = load_audio_file(str(path))
    duration = len(audio) / rate
    if max_seconds is not None and duration > max_seconds:
        raise ValueError(f"{path.name}: {duration:.0f} s is over the {max_seconds:.0f} s limit")
    if not np.isfinite(audio).all():
        raise ValueError(f"{path.name}: the decoded audio holds invalid samples")
    fmt = recording_format(audio.shape[1], rate, agent_channel)
    outcome = RecordingOutcome(call_id=call_id, duration=duration, audio_format=fmt)

    async def collect(result: Any) -> None:
        outcome.results.append(result)

    session: CallSession = runtime.new_call(call_id, fmt, collect, observers=observers, partials=False,
                                            second_pass_beam_size=beam_size, live_finals=False)
    await session.start()
    pending = sorted(events or [], key=lambda e: e.t if e.t is not None else 0.0)
    step = int(FEED_SECONDS * rate)
    for offset in range(0, len(audio), step):
        while pending and (pending[0].t or 0.0) <= offset / rate:
            await session.event(pending.pop(0))
        await session.samples(audio[offset : offset + step])
    hangup = [e for e in pending if e.event == "hangup"]
    for event in pending:
        if event.event != "hangup":
            await session.event(event)
    for event in hangup:
        await session.event(event)
    await session.finish("completed")
    return outcome
