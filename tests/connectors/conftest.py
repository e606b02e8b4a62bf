"""Fixtures for the platform connectors' tests: the shared two-party recording, leg by leg, as a phone
platform would carry it (8 kHz; the agent on the left channel, the customer on the right)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

CALL = "call_01_read_vs_spontaneous"


@dataclass(frozen=True)
class TwoPartyCall:
    name: str
    rate: int
    agent: np.ndarray  # float32 in [-1, 1), one leg
    customer: np.ndarray
    timeline: dict[str, Any]  # the reference turns (`role`, `start_s`, `end_s`, `text`)

    @property
    def duration_s(self) -> float:
        return len(self.agent) / self.rate


@pytest.fixture(scope="session")
def two_party_call(shared_audio: Path) -> TwoPartyCall:
    audio, rate = sf.read(shared_audio / "calls" / f"{CALL}.wav", dtype="float32")
    assert rate == 8000 and audio.shape[1] == 2
    timeline = json.loads((shared_audio / "calls" / f"{CALL}.json").read_text(encoding="utf-8"))
    return TwoPartyCall(CALL, rate, np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1]), timeline)
