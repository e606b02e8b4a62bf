"""Voice arousal on real recordings (../shared/audio): an "agitated" version of a real
clip (louder, faster, higher, made with Praat's PSOLA resynthesis) scores higher than
the same speaker speaking normally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.emotion import VoiceArousal, VoiceConfig

from .conftest import read_clip

CLIPS = ["mossttsd_pod_f.wav", "mossttsd_pod_m.wav", "soulx_male_mandarin.wav"]


def agitate(x: np.ndarray, pitch: float = 1.3, tempo: float = 1.25, gain_db: float = 8.0) -> np.ndarray:
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=16_000)
    manip = call(snd, "To Manipulation", 0.01, 75, 600)
    tier = call(manip, "Extract pitch tier")
    call(tier, "Multiply frequencies", snd.xmin, snd.xmax, pitch)
    call([tier, manip], "Replace pitch tier")
    dur = call("Create DurationTier", "tempo", snd.xmin, snd.xmax)
    call(dur, "Add point", snd.xmin, 1.0 / tempo)
    call([manip, dur], "Replace duration tier")
    y = call(manip, "Get resynthesis (overlap-add)").values[0]
    return np.clip(y * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("clip", CLIPS)
def test_agitated_voice_scores_higher(audio_dir: Path, clip: str) -> None:
    a = read_clip(audio_dir / clip) * 0.4  # headroom for the louder version
    half = len(a) // 2
    va = VoiceArousal()
    # the caller's first seconds are the baseline
    base = va.features(a[:half])
    va.add_to_baseline(base)
    calm = va.features(a[half:])
    agitated = va.features(agitate(a[half:]))
    assert agitated.loudness_db > calm.loudness_db + 4
    assert agitated.pitch_st > calm.pitch_st + 2
    assert agitated.rate_sps > calm.rate_sps
    a_calm, a_agit = va.arousal(calm), va.arousal(agitated)
    assert a_calm is not None and a_agit is not None
    assert a_agit > a_calm + 0.2, (a_calm, a_agit)
    assert a_agit > 0.5 and a_calm < 0.45


def test_baseline_builds_from_first_seconds(audio_dir: Path) -> None:
    a = read_clip(audio_dir / "mossttsd_pod_f.wav")
    va = VoiceArousal(VoiceConfig(baseline_seconds=3.0))
    sec = 16_000
    first = va.arousal(va.features(a[: 8 * sec]))  # about 4 voiced seconds
    assert first == pytest.approx(va.config.baseline_arousal, abs=1e-6)  # itself is the baseline
    assert va.baseline_ready
    later = va.arousal(va.features(a[8 * sec : 14 * sec]))
    assert later is not None and 0.0 < later < 1.0


def test_text_gives_the_rate(audio_dir: Path) -> None:
    a = read_clip(audio_dir / "aishell1_S0764_W0121.wav")  # 甚至出现交易几乎停滞的情况, 13 characters
    va = VoiceArousal()
    f = va.features(a, text="甚至出现交易几乎停滞的情况")
    assert f.rate_sps is not None and 2.5 < f.rate_sps < 8.0


@pytest.mark.parametrize(
    "audio",
    [np.zeros(0, np.float32), np.zeros(16_000, np.float32), np.zeros(100, np.float32),
     np.full(16_000, np.nan, np.float32), (np.random.default_rng(0).normal(size=16_000) * 0.01).astype(np.float32)],
    ids=["empty", "silence", "tiny", "nan", "noise"],
)
def test_unusable_audio_gives_no_arousal(audio: np.ndarray) -> None:
    va = VoiceArousal()
    f = va.features(audio)
    assert va.arousal(f) is None
    assert not va.baseline_ready


def test_int16_and_stereo_input(audio_dir: Path) -> None:
    a = read_clip(audio_dir / "aishell1_S0764_W0122.wav")
    pcm = (a * 32767).astype(np.int16)
    va = VoiceArousal()
    f1 = va.features(a)
    f2 = va.features(pcm)
    f3 = va.features(np.stack([a, a], axis=1))
    assert f1.usable and f2.usable and f3.usable
    assert abs(f1.pitch_st - f2.pitch_st) < 0.2 and abs(f1.pitch_st - f3.pitch_st) < 0.2
