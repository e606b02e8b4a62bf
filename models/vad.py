"""Silero voice activity detection, from the ONNX file faster-whisper ships.

One `SileroVAD` (the ONNX session) is shared by every leg of every call; each leg keeps its own recurrent
state in a `VADStream`, fed 32 ms chunks as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHUNK = 512  # samples at 16 kHz: the window Silero v5/v6 is trained on
CONTEXT = 64  # samples of the previous chunk the model sees before each chunk


def bundled_model_path() -> Path:
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


class SileroVAD:
    def __init__(self, path: Path | None = None):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # A chunk is tiny; threads would only add hand-off cost and steal cores from the recogniser.
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path or bundled_model_path()), providers=["CPUExecutionProvider"], sess_options=opts
        )

    def stream(self) -> "VADStream":
        return VADStream(self)

    def run(self, window: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        prob, h, c = self._session.run(None, {"input": window[None, :], "h": h, "c": c})
        return float(prob.reshape(-1)[0]), h, c


@dataclass
class VADStream:
    """Speech probability per 32 ms chunk for one continuous audio stream."""

    model: SileroVAD
    _h: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    _c: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    _context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT, dtype=np.float32))
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def feed(self, audio: np.ndarray) -> list[float]:
        """Probabilities for each whole chunk completed by `audio` (leftover samples wait for the next)."""
        buffered = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n_chunks = len(buffered) // CHUNK
        probs = []
        for i in range(n_chunks):
            chunk = buffered[i * CHUNK : (i + 1) * CHUNK]
            prob, self._h, self._c = self.model.run(np.concatenate([self._context, chunk]), self._h, self._c)
            self._context = chunk[-CONTEXT:]
            probs.append(prob)
        self._pending = buffered[n_chunks * CHUNK :].copy()
        return probs
