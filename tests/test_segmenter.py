import numpy as np
import pytest

from models.vad import CHUNK, SileroVAD
from pipelines.segmenter import SegmenterOptions, UtteranceSegmenter
from tests.support.scripted_vad import ScriptedVAD

RATE = 16000


@pytest.fixture(scope="module")
def vad():
    return SileroVAD()


def feed_in_frames(segmenter, audio, frame=320):
    closed = []
    for i in range(0, len(audio), frame):
        closed += segmenter.feed(audio[i : i + frame])
    return closed + segmenter.flush()


def test_one_sentence_between_silences_is_one_utterance_at_the_right_time(vad, clip):
    speech = clip("aishell1_S0764_W0122.wav")
    audio = np.concatenate([np.zeros(RATE, np.float32), speech, np.zeros(RATE, np.float32)])
    closed = feed_in_frames(UtteranceSegmenter(vad.stream()), audio)
    assert len(closed) == 1
    # The clip has a few hundred ms of its own lead-in and tail; the utterance lies within the clip.
    assert 1.0 <= closed[0].start <= 1.0 + 0.6
    assert 1.0 + len(speech) / RATE - 0.8 <= closed[0].end <= 1.0 + len(speech) / RATE + 0.1


def test_two_sentences_with_a_long_pause_are_two_utterances(vad, clip):
    a, b = clip("aishell1_S0764_W0121.wav"), clip("aishell1_S0764_W0122.wav")
    audio = np.concatenate([a, np.zeros(RATE, np.float32), b])
    closed = feed_in_frames(UtteranceSegmenter(vad.stream()), audio)
    assert [c.index for c in closed] == [0, 1]
    assert closed[0].end < len(a) / RATE + 0.1 < closed[1].start


def test_silence_and_line_noise_make_no_utterance(vad):
    rng = np.random.default_rng(0)
    hiss = (0.01 * rng.standard_normal(5 * RATE)).astype(np.float32)
    assert feed_in_frames(UtteranceSegmenter(vad.stream()), np.zeros(5 * RATE, np.float32)) == []
    assert feed_in_frames(UtteranceSegmenter(vad.stream()), hiss) == []


def test_a_monologue_is_cut_at_the_maximum_length(vad, clip):
    speech = np.concatenate([clip("mossttsd_pod_m.wav"), clip("mossttsd_pod_f.wav")])
    closed = feed_in_frames(UtteranceSegmenter(vad.stream(), SegmenterOptions(max_utterance_s=8)), speech)
    assert len(closed) >= 4
    assert all(c.end - c.start <= 8.05 for c in closed)



def test_a_long_turn_closes_at_a_short_pause_once_past_the_soft_maximum():
    speech = lambda s: np.full(int(s * RATE), 0.1, np.float32)  # noqa: E731
    silence = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
    # 8 s, a 300 ms breath (too short to end an utterance), 3 s, then quiet.
    audio = np.concatenate([speech(8), silence(0.3), speech(3), silence(1)])
    whole = feed_in_frames(UtteranceSegmenter(ScriptedVAD(), SegmenterOptions(soft_max_utterance_s=12)), audio)
    assert len(whole) == 1
    split = feed_in_frames(UtteranceSegmenter(ScriptedVAD(), SegmenterOptions(soft_max_utterance_s=6)), audio)
    assert len(split) == 2
    assert abs(split[0].end - 8.0) < 0.05 and abs(split[1].end - 11.3) < 0.05
    # The second piece's pre-roll reaches back no further than 150 ms after the first piece's speech.
    assert split[1].start >= split[0].end + 0.15 - 0.01
    # Below the soft maximum nothing is cut at a breath: 5 s, the breath, 3 s is one utterance.
    short = np.concatenate([speech(5), silence(0.3), speech(3), silence(1)])
    assert len(feed_in_frames(UtteranceSegmenter(ScriptedVAD(), SegmenterOptions(soft_max_utterance_s=6)), short)) == 1


def test_a_leg_that_ends_in_speech_keeps_its_last_part_chunk():
    # 1.5 s of speech that stops mid-chunk: the 100 samples after the last whole VAD chunk are the end of
    # the last syllable and must reach the recogniser.
    audio = np.full(3 * CHUNK * 15 + 100, 0.1, np.float32)
    audio[-100:] = 0.3
    segmenter = UtteranceSegmenter(ScriptedVAD())
    closed = feed_in_frames(segmenter, audio)
    assert len(closed) == 1
    assert abs(closed[0].end - len(audio) / RATE) < 1e-6
    assert len(closed[0].audio) == len(audio)
    assert np.array_equal(closed[0].audio[-100:], audio[-100:])
    assert segmenter.now == len(audio) / RATE


def test_a_pending_close_is_the_utterance_the_end_silence_then_closes():
    speech = lambda s: np.full(int(s * RATE), 0.1, np.float32)  # noqa: E731
    silence = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
    segmenter = UtteranceSegmenter(ScriptedVAD())
    assert segmenter.feed(np.concatenate([silence(0.5), speech(2), silence(0.2)])) == []
    assert not segmenter.settled and segmenter.pending_close() is None  # the post-roll is not heard yet
    assert segmenter.feed(silence(0.15)) == []
    pending = segmenter.pending_close()
    assert segmenter.settled and pending is not None
    [closed] = segmenter.feed(silence(0.2))
    assert (pending.index, pending.start, pending.end) == (closed.index, closed.start, closed.end)
    assert np.array_equal(pending.audio, closed.audio)
