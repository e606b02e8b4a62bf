"""Fixtures for the emotion tests: the real text model (built into the app's cache,
``$CALLWATCH_CACHE_DIR`` or ~/.cache/callwatch) and the shared real recordings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
AUDIO = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    from models.emotion.encoder_build import default_cache_dir

    return default_cache_dir()


@pytest.fixture(scope="session")
def e5_dir(cache_dir: Path) -> Path:
    from models.emotion.encoder_build import ensure_e5_model

    return ensure_e5_model(cache_dir)


@pytest.fixture(scope="session")
def classifier(e5_dir: Path):
    from models.emotion import SentimentClassifier, SentimentConfig

    return SentimentClassifier.load(config=SentimentConfig(cache_dir=str(e5_dir.parent)))


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not AUDIO.is_dir():
        pytest.fail(f"shared recordings not found at {AUDIO}; set CALLWATCH_SHARED_AUDIO")
    return AUDIO


def read_clip(path: Path) -> np.ndarray:
    """A real clip as 16 kHz mono float32."""
    import soundfile as sf
    import soxr

    a, sr = sf.read(str(path), dtype="float32", always_2d=True)
    a = a.mean(axis=1)
    if sr != 16_000:
        a = soxr.resample(a, sr, 16_000)
    return a.astype(np.float32)
