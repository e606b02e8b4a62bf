"""Cutting one speaker's audio into utterances, live.

The segmenter decides when someone starts and stops talking; it knows nothing about recognition. Its
output drives both the partial transcripts (re-decoding the open utterance) and the final one (decoding the
closed utterance once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.vad import CHUNK, VADStream

RATE = 16_000


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    # Speech ends after this much continuous non-speech. Shorter gives faster finals but splits
    # sentences at a breath; 450 ms holds most Mandarin clause pauses together.
    end_silence_ms: int = 450
    # Utterances with less speech than this are clicks, coughs or line noise.
    min_speech_ms: int = 200
    # A long turn is closed at the first short pause once it is this long, so its final comes while the
    # speaker goes on: a final's decode grows with its length (1.8 s for a 16 s monologue on one core of the
    # 2-core AMD machine). At 8 s (was 12) final latency p95 at one call fell from 1.85 s to 1.30 s, for 0.4
    # points of live CER pooled (4 characters in 1,091; the stored second-pass text unchanged). Not
    # shorter: cutting turns at 6 s measured 1.5 points worse over μ-law.
    soft_max_utterance_s: float = 8.0
    split_silence_ms: int = 200
    # Whisper decodes at most 30 s at once; a turn with no pause at all is cut here.
    max_utterance_s: float = 20.0
    # Silero confirms speech a chunk or two after it begins, and Whisper needs the onset of the first
    # syllable ("你好" heard as "1号" without it), so each utterance starts this much before the VAD fired.
    pre_roll_ms: int = 400
    post_roll_ms: int = 300
    # The next utterance's pre-roll reaches back no further than this after the last one's speech, so a
    # turn split at a short pause does not hear its last syllable twice.
    pre_roll_guard_ms: int = 150


@dataclass(frozen=True)
class ClosedUtterance:
    index: int
    start: float
    end: float
    audio: np.ndarray


@dataclass
class UtteranceSegmenter:
    vad: VADStream
    options: SegmenterOptions = field(default_factory=SegmenterOptions)

    def __post_init__(self) -> None:
        self._samples_seen = 0  # position of the next VAD chunk, in samples since the leg began
        self._history = np.zeros(0, dtype=np.float32)  # recent audio, for pre-roll
        self._open: list[np.ndarray] | None = None
        self._open_start = 0
        self._last_speech_end = 0
        self._speech_samples = 0
        self._silence_samples = 0
        self._count = 0
        self._unchunked = np.zeros(0, dtype=np.float32)

    @property
    def now(self) -> float:
        """Seconds of this leg's audio the VAD has judged."""
        return self._samples_seen / RATE

    @property
    def is_open(self) -> bool:
        return self._open is not None

    @property
    def open_index(self) -> int:
        return self._count

    @property
    def open_start(self) -> float:
        return self._open_start / RATE

    @property
    def trailing_silence(self) -> float:
        """Seconds of non-speech since the open utterance's last speech."""
        return self._silence_samples / RATE if self._open is not None else 0.0

    def open_audio(self) -> np.ndarray:
        return np.concatenate(self._open) if self._open else np.zeros(0, dtype=np.float32)

    @property
    def settled(self) -> bool:
        """Whether the open utterance's audio is settled if its speaker stays quiet: the silence since its
        last speech covers the post-roll, so more silence adds nothing to the audio it keeps."""
        opts = self.options
        return (
            self._open is not None
            and self._silence_samples >= opts.post_roll_ms * RATE // 1000
            and self._speech_samples >= opts.min_speech_ms * RATE // 1000
        )

    def pending_close(self) -> ClosedUtterance | None:
        """Once `settled`: the utterance the open one will close as if its speaker stays quiet. Its final can
        be decoded while the rest of the end silence runs out; whether speech resumed is the caller's to
        check at the close."""
        if not self.settled:
            return None
        assert self._open is not None
        keep = self._last_speech_end - self._open_start + self.options.post_roll_ms * RATE // 1000
        return ClosedUtterance(self._count, self._open_start / RATE, self._last_speech_end / RATE,
                               np.concatenate(self._open)[:keep])

    def feed(self, audio: np.ndarray) -> list[ClosedUtterance]:
        """Advance over `audio`; return the utterances it closed."""
        opts = self.options
        buffered = np.concatenate([self._unchunked, audio])
        probs = self.vad.feed(audio)
        closed: list[ClosedUtterance] = []
        for i, prob in enumerate(probs):
            chunk = buffered[i * CHUNK : (i + 1) * CHUNK]
            closed.extend(self._step(chunk, prob >= opts.threshold))
        self._unchunked = buffered[len(probs) * CHUNK :].copy()
        return closed

    def flush(self) -> list[ClosedUtterance]:
        """Close whatever is open: the call ended or the client vanished mid-utterance.

        The last part-chunk the VAD never judged is kept, and counts as the speech it follows: a leg that
        ends right after speech loses no syllable (Whisper, given a word cut off, can drop the whole
        clause before it)."""
        tail, self._unchunked = self._unchunked, np.zeros(0, dtype=np.float32)
        if self._open is None:
            self._samples_seen += len(tail)
            return []
        self._open.append(tail)
        self._samples_seen += len(tail)
        if self._silence_samples == 0:
            self._speech_samples += len(tail)
            self._last_speech_end = self._samples_seen
        else:
            self._silence_samples += len(tail)
        return self._close()

    def _step(self, chunk: np.ndarray, speech: bool) -> list[ClosedUtterance]:
        opts = self.options
        start = self._samples_seen
        self._samples_seen += len(chunk)
        closed: list[ClosedUtterance] = []
        if self._open is None:
            if speech:
                pre_roll = self._history[-(opts.pre_roll_ms * RATE // 1000) :]
                self._open = [pre_roll.copy(), chunk]
                self._open_start = start - len(pre_roll)
                self._speech_samples = len(chunk)
                self._silence_samples = 0
                self._last_speech_end = self._samples_seen
            else:
                self._history = np.concatenate([self._history, chunk])[-RATE:]
            return closed

        self._open.append(chunk)
        if speech:
            self._speech_samples += len(chunk)
            self._silence_samples = 0
            self._last_speech_end = self._samples_seen
        else:
            self._silence_samples += len(chunk)
        length = self._samples_seen - self._open_start
        if (
            self._silence_samples >= opts.end_silence_ms * RATE // 1000
            or (length >= opts.soft_max_utterance_s * RATE and self._silence_samples >= opts.split_silence_ms * RATE // 1000)
            or length >= opts.max_utterance_s * RATE
        ):
            closed.extend(self._close())
        return closed

    def _close(self) -> list[ClosedUtterance]:
        opts = self.options
        assert self._open is not None
        audio = np.concatenate(self._open)
        speech_end = self._last_speech_end - self._open_start
        keep = min(len(audio), speech_end + opts.post_roll_ms * RATE // 1000)
        self._history = audio[speech_end + opts.pre_roll_guard_ms * RATE // 1000 :][-RATE:]
        self._open = None
        if self._speech_samples < opts.min_speech_ms * RATE // 1000:
            return []
        index = self._count
        self._count += 1
        return [ClosedUtterance(index, self._open_start / RATE, self._last_speech_end / RATE, audio[:keep])]
