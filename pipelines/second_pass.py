"""The second pass: each leg's speech decoded again, as a whole, once the call has ended.

The live pass decodes every utterance alone, the moment it ends, so the agent's screen keeps up; it cannot
know what comes after an utterance, and knows nothing of what came before. After the call there is time to
decode as faster-whisper decodes a recording: consecutive utterances of one speaker are laid side by side
into windows of up to Whisper's 30 s, each window is decoded with the text of the window before it as
context, and every word carries its time, so the text goes back to the utterance it was heard in. The
utterances themselves (who spoke when) stay those the live pass cut; only their text is heard again.

The windows run as the recogniser's background work (pipelines/scheduler.py): live finals go first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from typing import Sequence

import numpy as np

from models.asr import ASRBackend, DecodeOptions, DecodeRequest, TimedText
from models.text import strip_for_scoring
from pipelines.scheduler import ASRScheduler
from pipelines.transcript_filter import TranscriptFilter

RATE = 16_000


@dataclass(frozen=True)
class SecondPassOptions:
    # Whisper's own window: the most context one decode can have.
    window_s: float = 30.0
    # Silence kept between two utterances laid into one window. A real pause tells Whisper a sentence
    # ended; a long one (the other party talking) only wastes the window.
    max_gap_s: float = 1.0
    # Whisper's full 30 s encoder window even for a window holding less speech (fitted, as live finals
    # are, it is never under 10 s). Measured on the shared clips, all short: 9 fewer errors in 527
    # conversational characters at 16 kHz, 15 fewer through μ-law, the read clips unchanged, for 1.6 times
    # the decoding time; on a long call most windows are full anyway. Off by default for audit throughput.
    full_window: bool = False
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    # For a piece heard alone (see SecondPass._hear): as a live final.
    piece_decode: DecodeOptions = field(default_factory=DecodeOptions)


@dataclass(frozen=True)
class SpokenPiece:
    """One utterance's audio as the live pass cut it (16 kHz; int16, to halve what a long call keeps)."""

    utterance_id: str
    speaker: str
    start: float
    end: float
    pcm: np.ndarray

    @classmethod
    def of(cls, utterance_id: str, speaker: str, start: float, end: float, audio: np.ndarray) -> "SpokenPiece":
        return cls(utterance_id, speaker, start, end, (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16))

    @property
    def audio(self) -> np.ndarray:
        return self.pcm.astype(np.float32) / 32767

    @property
    def seconds(self) -> float:
        return len(self.pcm) / RATE


@dataclass(frozen=True)
class HeardAgain:
    piece: SpokenPiece
    text: str  # cleaned, simplified; empty when the second pass heard nothing there


def _gap(before: SpokenPiece, after: SpokenPiece, options: SecondPassOptions) -> float:
    """The silence laid between two consecutive pieces in a window."""
    return min(options.max_gap_s, max(0.0, after.start - before.end))


def windows(pieces: Sequence[SpokenPiece], options: SecondPassOptions) -> list[list[SpokenPiece]]:
    """Consecutive pieces grouped so that each group's audio, with the gaps between, fits one window."""
    groups: list[list[SpokenPiece]] = []
    length = 0.0
    for piece in pieces:
        if groups:
            gap = _gap(groups[-1][-1], piece, options)
            if length + gap + piece.seconds <= options.window_s:
                groups[-1].append(piece)
                length += gap + piece.seconds
                continue
        groups.append([piece])
        length = piece.seconds
    return groups


def lay_out(window: Sequence[SpokenPiece], options: SecondPassOptions) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The window's audio, and where each piece lies in it (seconds)."""
    parts: list[np.ndarray] = []
    spans: list[tuple[float, float]] = []
    at = 0.0
    for k, piece in enumerate(window):
        if k:
            gap = _gap(window[k - 1], piece, options)
            parts.append(np.zeros(int(gap * RATE), np.float32))
            at += int(gap * RATE) / RATE
        parts.append(piece.audio)
        spans.append((at, at + piece.seconds))
        at += piece.seconds
    return np.concatenate(parts), spans


def assign(words: Sequence[TimedText], spans: Sequence[tuple[float, float]]) -> list[str]:
    """Each word to the piece its middle lies in (or the nearest, for a word in a gap)."""
    texts = [""] * len(spans)
    for word in words:
        middle = (word.start + word.end) / 2
        nearest = min(range(len(spans)), key=lambda k: max(spans[k][0] - middle, middle - spans[k][1], 0.0))
        texts[nearest] += word.text
    return texts


class SecondPass:
    """Hears the legs of an ended call again (see the module's docstring)."""

    def __init__(self, scheduler: ASRScheduler, backend: ASRBackend, transcript_filter: TranscriptFilter,
                 options: SecondPassOptions, hotwords: tuple[str, ...] = ()):
        self._scheduler = scheduler
        self._backend = backend
        self._filter = transcript_filter
        self.options = options
        self.hotwords = hotwords

    async def call(self, legs: Sequence[Sequence[SpokenPiece]]) -> list[HeardAgain]:
        """Every piece of every leg, heard again, in spoken order. The legs are decoded side by side."""
        heard = await asyncio.gather(*(self.leg(pieces) for pieces in legs))
        return sorted((h for leg in heard for h in leg), key=lambda h: (h.piece.start, h.piece.end))

    async def leg(self, pieces: Sequence[SpokenPiece]) -> list[HeardAgain]:
        out: list[HeardAgain] = []
        previous = ""
        for window in windows(sorted(pieces, key=lambda p: p.start), self.options):
            texts = await self._scheduler.background(partial(self._hear, window, previous),
                                                     audio_seconds=sum(p.seconds for p in window))
            out += [HeardAgain(piece, self._filter.clean(text, final=True)) for piece, text in zip(window, texts)]
            previous += "".join(texts)
        return out

    def _hear(self, window: Sequence[SpokenPiece], previous: str) -> list[str]:
        """One window, on a recogniser worker: its words handed to the pieces they were heard in. A piece
        the window's decode left without a word is heard alone, as a live final is: a window of repeated
        sentences can read as a loop to Whisper, and one utterance must not be lost for its neighbours."""
        audio, spans = lay_out(window, self.options)
        words = self._backend.transcribe_window(audio, self.options.decode, previous, self.hotwords,
                                                self.options.full_window, timed=len(window) > 1)
        texts = assign(words, spans)
        missing = [k for k, text in enumerate(texts) if not strip_for_scoring(text)]
        if missing:
            alone = self._backend.transcribe_batch(
                [DecodeRequest(window[k].audio, self.options.piece_decode, self.hotwords) for k in missing])
            for k, heard in zip(missing, alone):
                texts[k] = heard.text
        return texts
