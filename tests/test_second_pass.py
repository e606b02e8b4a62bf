"""The second pass's policy with a stand-in recogniser: which utterances share a window, where each lies in
it, whose words go where, and that each window hears the text of the one before. The real recogniser's
second pass is tested through calls and audits (test_second_pass_real.py)."""

import numpy as np

from models.asr import TimedText, Transcript
from pipelines.scheduler import ASRScheduler
from pipelines.second_pass import SecondPass, SecondPassOptions, SpokenPiece, assign, lay_out, windows
from pipelines.transcript_filter import TranscriptFilter
from wire.ingest import AudioFormat

RATE = 16000


def piece(name: str, start: float, seconds: float) -> SpokenPiece:
    return SpokenPiece.of(name, "agent", start, start + seconds, np.full(int(seconds * RATE), 0.1, np.float32))


def test_consecutive_utterances_share_a_window_up_to_thirty_seconds():
    a, b, c = piece("a", 0, 10), piece("b", 10.5, 10), piece("c", 21, 10)
    assert [[p.utterance_id for p in w] for w in windows([a, b, c], SecondPassOptions())] == [["a", "b"], ["c"]]
    # A piece longer than a window is a window of its own, not lost.
    assert len(windows([piece("long", 0, 31)], SecondPassOptions())) == 1


def test_a_long_pause_between_utterances_is_shortened_in_the_window():
    a, b = piece("a", 0, 2), piece("b", 60, 3)  # the customer talked for a minute in between
    audio, spans = lay_out([a, b], SecondPassOptions(max_gap_s=1.0))
    assert spans == [(0.0, 2.0), (3.0, 6.0)]
    assert len(audio) == 6 * RATE
    assert np.all(audio[2 * RATE : 3 * RATE] == 0)


def test_each_word_goes_to_the_utterance_it_was_heard_in():
    spans = [(0.0, 2.0), (3.0, 6.0)]
    words = [TimedText(0.1, 0.5, "您好"), TimedText(1.9, 2.4, "请问"), TimedText(2.6, 3.2, "有什么"),
             TimedText(5.0, 5.5, "可以帮您")]
    assert assign(words, spans) == ["您好请问", "有什么可以帮您"]


class ScriptedWindows:
    """Answers each window with one word per second of audio, and records the context it was given."""

    name = "scripted"

    def __init__(self):
        self.contexts: list[str] = []
        self.timed: list[bool] = []

    def transcribe_window(self, audio, options, previous_text="", hotwords=(), full_window=True, timed=True):
        self.contexts.append(previous_text)
        self.timed.append(timed)
        n = len(self.contexts)
        return [TimedText(s + 0.2, s + 0.8, f"第{n}窗{s}秒") for s in range(int(len(audio) / RATE))]

    def transcribe_batch(self, requests):
        self.alone = getattr(self, "alone", 0) + len(requests)
        return [Transcript("单独听到") for _ in requests]


async def test_a_leg_is_heard_window_by_window_each_with_the_text_before_it():
    backend = ScriptedWindows()
    scheduler = ASRScheduler(backend)
    second = SecondPass(scheduler, backend, TranscriptFilter(()), SecondPassOptions())
    try:
        heard = await second.call([[piece("agent-0", 0, 2), piece("agent-1", 2.5, 1), piece("agent-2", 40, 29)],
                                   []])
    finally:
        scheduler.close()
    assert [h.piece.utterance_id for h in heard] == ["agent-0", "agent-1", "agent-2"]
    assert heard[0].text.startswith("第1窗0秒第1窗1秒") and heard[1].text.startswith("第1窗2秒")
    assert heard[2].text.startswith("第2窗0秒")
    # The second window is decoded with what the first heard as its context.
    assert backend.contexts[0] == "" and backend.contexts[1].startswith("第1窗0秒")
    # Words are timed only where a window holds more than one utterance to hand them to.
    assert backend.timed == [True, False]



class SilentAfterTheFirstWord(ScriptedWindows):
    """A window decode that, like Whisper on repeated sentences, writes only the first of them."""

    def transcribe_window(self, audio, options, previous_text="", hotwords=(), full_window=True, timed=True):
        return [TimedText(0.2, 0.8, "您好")]


async def test_an_utterance_the_window_left_empty_is_heard_alone():
    backend = SilentAfterTheFirstWord()
    scheduler = ASRScheduler(backend)
    try:
        heard = await SecondPass(scheduler, backend, TranscriptFilter(()), SecondPassOptions()).call(
            [[piece("agent-0", 0, 2), piece("agent-1", 3, 2)]])
    finally:
        scheduler.close()
    assert heard[0].text.startswith("您好") and heard[1].text.startswith("单独听到")
    assert backend.alone == 1


def test_an_audits_beam_gets_one_second_pass_per_beam_size(runtime):
    # Built once per beam and kept: an audit job decodes each of its files with the same beam.
    fmt = AudioFormat(encoding="pcm_s16le", sample_rate=16000, layout="two_legs")

    async def sink(result: object) -> None:
        pass

    def second_pass_of(beam: int | None) -> SecondPass:
        session = runtime.new_call("beams", fmt, sink, second_pass_beam_size=beam, live_finals=False)
        return session._second_pass

    assert second_pass_of(None) is runtime.second_pass
    two = second_pass_of(2)
    assert two is second_pass_of(2) and two is not second_pass_of(3)
    assert two.options.decode.beam_size == two.options.piece_decode.beam_size == 2
    assert two.options.full_window == runtime.second_pass.options.full_window
    assert two.hotwords == runtime.second_pass.hotwords


def test_the_stored_transcript_is_heard_at_its_own_beam_not_the_live_one(runtime):
    # Live finals trade beam for speed (the agent's screen); the text that is stored and judged keeps its own.
    assert runtime.options.final_decode.beam_size == runtime.settings.final_beam_size == 2
    assert runtime.second_pass.options.decode.beam_size == runtime.settings.second_pass_beam_size == 5
    assert runtime.second_pass.options.piece_decode.beam_size == 5
