import warnings

import numpy as np
import pytest

from pipelines.audio import (
    AudioFrameError,
    ChannelResampler,
    decode_frame,
    encode_g711,
    encode_pcm16,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the standard library's G.711 codec, as an independent reference (gone in 3.13)


@pytest.mark.parametrize("encoding,reference", [("mulaw", audioop.ulaw2lin), ("alaw", audioop.alaw2lin)])
def test_g711_decoding_matches_the_standard_library(encoding, reference):
    every_code = bytes(range(256))
    expected = np.frombuffer(reference(every_code, 2), dtype="<i2").astype(np.float32) / 32768.0
    decoded = decode_frame(every_code, encoding, channels=1)[:, 0]
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_g711_round_trip_keeps_a_voice_level_tone(encoding):
    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    back = decode_frame(encode_g711(tone, encoding), encoding, 1)[:, 0]
    snr = 10 * np.log10(np.sum(tone**2) / np.sum((tone - back) ** 2))
    assert snr > 30  # G.711 gives about 38 dB on speech-level signals


def test_stereo_frame_is_split_into_channels():
    left = np.full(10, 0.25, dtype=np.float32)
    right = np.full(10, -0.5, dtype=np.float32)
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    decoded = decode_frame(encode_pcm16(interleaved), "pcm_s16le", channels=2)
    assert decoded.shape == (10, 2)
    np.testing.assert_allclose(decoded[:, 0], 0.25, atol=1e-4)
    np.testing.assert_allclose(decoded[:, 1], -0.5, atol=1e-4)


def test_odd_length_pcm_reports_the_error_and_keeps_whole_samples():
    payload = encode_pcm16(np.full(5, 0.1, dtype=np.float32)) + b"\x01"
    with pytest.raises(AudioFrameError, match="not a whole number") as info:
        decode_frame(payload, "pcm_s16le", channels=1)
    assert info.value.usable.shape == (5, 1)


def test_resampler_keeps_the_pitch_and_length_across_frames():
    rate = 8000
    t = np.arange(rate * 2) / rate
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    resampler = ChannelResampler(rate)
    pieces = [resampler(tone[i : i + 160]) for i in range(0, len(tone), 160)]
    pieces.append(resampler(np.zeros(0, dtype=np.float32), last=True))
    out = np.concatenate(pieces)
    assert abs(len(out) - 2 * len(tone)) <= 2
    spectrum = np.abs(np.fft.rfft(out[4000:20000]))
    peak_hz = np.argmax(spectrum) * 16000 / 16000
    assert abs(peak_hz - 1000) < 5
    # A real low-pass: nothing of the tone's image above 4 kHz (sample repetition would leave one at 7 kHz).
    assert spectrum[7000 - 50 : 7000 + 50].max() < spectrum.max() * 1e-3
