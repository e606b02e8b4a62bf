"""speech.volume hangs on the level the pipeline measures per utterance: a real recorded agent who gets
much louder on one sentence is caught there, through the whole pipeline (real models)."""

import numpy as np
import soundfile as sf
import soxr

from pipelines.audio import speech_level_db
from pipelines.recording_run import run_recording
from wire.ingest import CallEventMessage

SENTENCES = ["aishell1_S0764_W0121.wav", "aishell1_S0764_W0122.wav"]


def test_speech_level_ignores_pauses():
    rng = np.random.default_rng(0)
    voice = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    with_pause = np.concatenate([voice, np.zeros(8000, np.float32)])
    assert abs(speech_level_db(voice) - speech_level_db(with_pause)) < 1.0
    assert abs(speech_level_db(voice) - 20 * np.log10(0.1)) < 1.0


async def test_an_agent_shouting_one_sentence_is_caught_at_it(runtime, shared_audio, tmp_path):
    rate = 8000
    left, loud_at = [], None
    for i in range(7):
        audio, src_rate = sf.read(shared_audio / SENTENCES[i % 2], dtype="float32")
        audio = soxr.resample(audio, src_rate, rate)
        gain = 0.08 / np.abs(audio).max()
        if i == 4:
            gain *= 10 ** (16 / 20)  # 16 dB louder than the rest
            loud_at = sum(len(x) for x in left) / rate
        left += [audio * gain, np.zeros(rate, np.float32)]
    agent = np.concatenate(left)
    path = tmp_path / "loud_agent.wav"
    sf.write(path, np.stack([agent, np.zeros_like(agent)], axis=1), rate, subtype="PCM_16")

    events = [CallEventMessage(type="event", event="answered", t=0.0),
              CallEventMessage(type="event", event="hangup", t=len(agent) / rate, by="customer")]
    observers = runtime.observers_for("loud-agent", "a1", "inbound", None)
    outcome = await run_recording(runtime, path, "loud-agent", events=events, observers=observers)
    levels = [f.level_db for f in outcome.finals]
    assert len(levels) == 7 and max(levels) - sorted(levels)[3] > 12
    report = next(r for r in outcome.results if r.type == "report")
    volume = [f for f in report.findings if f.rule_id == "speech.volume"]
    assert len(volume) == 1 and abs(volume[0].t - loud_at) < 1.0
