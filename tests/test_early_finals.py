"""Early finals: an utterance's final is decoded once its audio is settled (the speaker quiet for the
post-roll), before the end silence closes it, and stands only if the utterance closes as it was then. A
stand-in recogniser answers with the length of what it heard; the VAD hears speech wherever audio is
non-zero (tests/support/scripted_vad.py)."""

import asyncio
import time

import numpy as np
import pytest

from models.asr import Transcript
from pipelines.call_session import CallSession, StreamingOptions
from pipelines.scheduler import ASRScheduler
from pipelines.transcript_filter import TranscriptFilter
from tests.support.scripted_vad import ScriptedVADModel
from wire.ingest import AudioFormat, CallEventMessage

RATE = 16000


class LengthRecogniser:
    """Answers each utterance with its length in samples; records every decode."""

    name = "length"

    def __init__(self) -> None:
        self.heard: list[int] = []

    def transcribe_batch(self, requests):
        self.heard += [r.audio.size for r in requests]
        return [Transcript(f"听到{r.audio.size}") for r in requests]


def speech(seconds: float) -> np.ndarray:
    return np.full(int(seconds * RATE), 0.1, np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


async def call(audio_parts, *, early_finals=True):
    """Stream the parts in 20 ms frames, pausing a little after each part so the recogniser can work;
    return the recogniser, the finals, and how many decodes had run before the first final arrived."""
    recogniser = LengthRecogniser()
    scheduler = ASRScheduler(recogniser)
    finals, decoded_before_final = [], []

    async def sink(result):
        if result.type == "final":
            finals.append(result)
            decoded_before_final.append(len(recogniser.heard))

    session = CallSession(
        "c1", AudioFormat(encoding="pcm_s16le", sample_rate=RATE, layout="mono"), scheduler=scheduler,
        vad=ScriptedVADModel(), transcript_filter=TranscriptFilter(()), sink=sink,
        options=StreamingOptions(partials=False, keep_speech=False, early_finals=early_finals),
    )
    await session.start()
    for part in audio_parts:
        for i in range(0, len(part), 320):
            await session.samples(part[i : i + 320, None])
        await asyncio.sleep(0.1)
    await session.finish("completed")
    scheduler.close()
    return recogniser, finals, session


async def test_a_final_is_decoded_while_the_end_silence_runs_out_and_decoded_once():
    # 2 s of speech, then silence in two steps: 350 ms (the post-roll heard, the utterance still open), then
    # enough to close it.
    recogniser, finals, _ = await call([silence(0.5), speech(2), silence(0.35), silence(0.3)])
    [final] = finals
    assert len(recogniser.heard) == 1  # the early decode stood; nothing was decoded twice
    assert final.text == f"听到{recogniser.heard[0]}"


async def test_the_early_decode_happens_before_the_utterance_closes():
    recogniser = LengthRecogniser()
    scheduler = ASRScheduler(recogniser)
    finals = []

    async def sink(result):
        if result.type == "final":
            finals.append(result)

    session = CallSession(
        "c1", AudioFormat(encoding="pcm_s16le", sample_rate=RATE, layout="mono"), scheduler=scheduler,
        vad=ScriptedVADModel(), transcript_filter=TranscriptFilter(()), sink=sink,
        options=StreamingOptions(partials=False, keep_speech=False),
    )
    for part in (silence(0.5), speech(2), silence(0.35)):
        for i in range(0, len(part), 320):
            await session.samples(part[i : i + 320, None])
    await asyncio.sleep(0.2)
    assert session.legs[0].segmenter.is_open and finals == []  # the end silence is not over
    assert len(recogniser.heard) == 1  # but its final is decoded already
    await session.finish("completed")
    scheduler.close()
    assert len(finals) == 1 and len(recogniser.heard) == 1


async def test_a_speaker_who_goes_on_gets_the_whole_utterance_not_the_early_part():
    # A 350 ms pause (the early decode starts) and then more speech in the same utterance.
    recogniser, finals, _ = await call([silence(0.5), speech(2), silence(0.35), speech(1), silence(0.6)])
    [final] = finals
    assert len(recogniser.heard) == 2
    assert final.text == f"听到{max(recogniser.heard)}"  # the whole utterance, not the first 2 s


async def test_without_early_finals_the_final_waits_for_the_close():
    recogniser, finals, _ = await call([silence(0.5), speech(2), silence(0.6)], early_finals=False)
    assert len(finals) == 1 and len(recogniser.heard) == 1


class SlowLengthRecogniser(LengthRecogniser):
    """A recogniser that takes a while, so a call hung up right after an early decode began finds it in flight."""

    def transcribe_batch(self, requests):
        time.sleep(0.3)
        return super().transcribe_batch(requests)


@pytest.mark.parametrize("early_finals", [True, False], ids=["early", "no-early"])
@pytest.mark.parametrize("quiet_s", [0.1, 0.35, 0.6], ids=["open", "settled", "closed"])
async def test_a_quick_hangup_still_sends_the_last_final_before_ended(quiet_s, early_finals):
    # A stereo call (the agent silent), the customer's 2 s of speech, then `quiet_s` of silence and at once the
    # customer's hangup: before the post-roll was heard (open), once it was and the early decode is in flight
    # (settled), or after the end silence closed the utterance (closed). Whichever, the final is decoded once,
    # holds the speech and what post-roll there was, and is sent before `ended`.
    recogniser = SlowLengthRecogniser()
    scheduler = ASRScheduler(recogniser)
    results = []

    async def sink(result):
        results.append(result)

    session = CallSession(
        "c1", AudioFormat(encoding="pcm_s16le", sample_rate=RATE, layout="stereo"), scheduler=scheduler,
        vad=ScriptedVADModel(), transcript_filter=TranscriptFilter(()), sink=sink,
        options=StreamingOptions(partials=False, keep_speech=False, early_finals=early_finals),
    )
    await session.start()
    # Whole 32 ms VAD chunks: the speech is heard from 0.512 s to 2.56 s.
    customer = np.concatenate([silence(0.512), speech(2.048), silence(quiet_s)])
    stereo = np.stack([np.zeros_like(customer), customer], axis=1)
    for i in range(0, len(stereo), 320):
        await session.samples(stereo[i : i + 320])
    early_in_flight = session.legs[1].early is not None and not session.legs[1].early.transcript.done()
    await session.event(CallEventMessage(type="event", event="hangup", by="customer"))
    ended = await session.finish("completed")
    scheduler.close()

    assert early_in_flight == (early_finals and quiet_s == 0.35)
    [final] = [r for r in results if r.type == "final"]
    assert (final.utterance_id, final.start, final.end) == ("customer-0", 0.112, 2.56)
    # The pre-roll (400 ms), the speech, and the silence heard after it up to the post-roll (300 ms).
    heard = int((0.4 + 2.048 + min(quiet_s, 0.3)) * RATE)
    assert final.text == f"听到{heard}"
    assert recogniser.heard == [heard]  # decoded once: an early decode in flight stood
    assert final.event_id < ended.event_id and ended.utterances == 1
    assert [r.type for r in results][-2:] == ["final", "ended"]
