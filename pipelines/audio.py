"""Telephone audio in, 16 kHz mono float32 per speaker out.

Phone systems send G.711 (μ-law or A-law, 8 kHz) from a SIP trunk, or 16-bit PCM at whatever rate their
recorder uses; one stereo stream (agent left, customer right) or one stream per leg. Whisper and the VAD
want 16 kHz mono float, so each channel goes through a decoder and a stateful resampler (soxr), never
sample dropping or repeating, which alias the telephone band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

TARGET_RATE = 16_000


def _mulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    value = magnitude - 0x84
    return np.where(sign != 0, -value, value).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.uint8) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = (codes & 0x0F).astype(np.int32)
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


# ITU-T G.711 expansion, computed once: a byte indexes its 16-bit linear sample.
G711_TABLES = {"mulaw": _mulaw_table(), "alaw": _alaw_table()}
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "mulaw": 1, "alaw": 1}


class AudioFrameError(ValueError):
    """A frame whose length does not fit the declared format; `usable` holds the whole samples in it."""

    def __init__(self, message: str, usable: np.ndarray):
        super().__init__(message)
        self.usable = usable


def decode_frame(payload: bytes, encoding: str, channels: int) -> np.ndarray:
    """Bytes of interleaved samples → float32 array of shape (frames, channels) in [-1, 1).

    A payload that ends inside a sample frame raises AudioFrameError carrying the whole frames before it,
    so the caller can report the error and still keep the audio.
    """
    width = BYTES_PER_SAMPLE[encoding] * channels
    whole = len(payload) - len(payload) % width
    if encoding == "pcm_s16le":
        samples = np.frombuffer(payload[:whole], dtype="<i2")
    else:
        samples = G711_TABLES[encoding][np.frombuffer(payload[:whole], dtype=np.uint8)]
    audio = (samples.astype(np.float32) / 32768.0).reshape(-1, channels)
    if whole != len(payload):
        raise AudioFrameError(
            f"frame of {len(payload)} bytes is not a whole number of {width}-byte sample frames "
            f"({encoding}, {channels} channel(s)); the last {len(payload) - whole} byte(s) were dropped",
            audio,
        )
    return audio


@dataclass
class ChannelResampler:
    """Streaming resampler for one channel; keeps its filter state across frames."""

    source_rate: int
    target_rate: int = TARGET_RATE

    def __post_init__(self) -> None:
        self._stream = (
            soxr.ResampleStream(self.source_rate, self.target_rate, 1, dtype="float32", quality="HQ")
            if self.source_rate != self.target_rate
            else None
        )

    def __call__(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


def load_audio_file(path: str, target_rate: int = TARGET_RATE) -> tuple[np.ndarray, int]:
    """Decode any file PyAV/ffmpeg reads (WAV PCM/μ-law/A-law, MP3, …) into (frames, channels) float32 at
    its native rate. Returned with the rate so callers can stream it as the phone system would."""
    import av

    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        chunks = []
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            if data.dtype == np.int16:
                data = data.astype(np.float32) / 32768.0
            elif data.dtype == np.int32:
                data = data.astype(np.float32) / 2147483648.0
            else:
                data = data.astype(np.float32)
            # Planar formats come as (channels, n); packed ones as (1, n*channels).
            if frame.format.is_planar:
                chunks.append(data.T)
            else:
                chunks.append(data.reshape(-1, channels))
    if not chunks:
        raise ValueError(f"{path}: no audio frames")
    return np.concatenate(chunks).astype(np.float32), int(rate)


def speech_level_db(audio: np.ndarray) -> float | None:
    """RMS level in dBFS over the louder half of 32 ms frames: the voice, not the pauses between words."""
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    if not len(frames):
        return None
    power = np.sort((frames.astype(np.float64) ** 2).mean(axis=1))[len(frames) // 2 :]
    mean_power = float(power.mean())
    return round(10 * np.log10(mean_power), 1) if mean_power > 0 else None


def encode_g711(samples: np.ndarray, encoding: str) -> bytes:
    """float32 in [-1, 1) → μ-law or A-law bytes, each sample to the code whose level is nearest.

    Used by the client to send audio the way a SIP trunk would."""
    table = G711_TABLES[encoding]
    order = np.argsort(table, kind="stable")
    levels = table[order].astype(np.int32)
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    right = np.clip(np.searchsorted(levels, pcm), 1, len(levels) - 1)
    nearer_left = (pcm - levels[right - 1]) <= (levels[right] - pcm)
    return order[np.where(nearer_left, right - 1, right)].astype(np.uint8).tobytes()


def encode_pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
