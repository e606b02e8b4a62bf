import numpy as np
import pytest

from models.vad import SileroVAD
from pipelines.segmenter import SegmenterOptions, UtteranceSegmenter

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
