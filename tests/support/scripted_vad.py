"""A voice-activity detector that hears speech wherever the audio is not zero, for tests of the policies
built on the VAD (segmenting, early finals) without Silero's judgement."""

from __future__ import annotations

import numpy as np

from models.vad import CHUNK


class ScriptedVAD:
    """Says "speech" for every 32 ms chunk with a non-zero sample."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def feed(self, audio: np.ndarray) -> list[float]:
        buffered = np.concatenate([self._pending, audio])
        n = len(buffered) // CHUNK
        self._pending = buffered[n * CHUNK :]
        return [float(np.abs(buffered[i * CHUNK : (i + 1) * CHUNK]).max() > 0) for i in range(n)]


class ScriptedVADModel:
    """Stands in for SileroVAD where a call session asks it for one stream per leg."""

    def stream(self) -> ScriptedVAD:
        return ScriptedVAD()
