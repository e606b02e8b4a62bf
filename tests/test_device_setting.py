"""CALLWATCH_DEVICE: one switch for both models, each still settable apart; on a machine without a GPU,
`callwatch serve` with cuda stops at once with a line that says why (not a driver traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_device_is_the_default_for_both_models_and_picks_the_compute_type(monkeypatch):
    monkeypatch.setenv("CALLWATCH_DEVICE", "cuda")
    s = Settings()
    assert (s.asr_device, s.emotion_device, s.asr_compute_type) == ("cuda", "cuda", "float16")
    monkeypatch.setenv("CALLWATCH_EMOTION_DEVICE", "cpu")
    monkeypatch.setenv("CALLWATCH_ASR_COMPUTE_TYPE", "int8_float16")
    s = Settings()
    assert (s.asr_device, s.emotion_device, s.asr_compute_type) == ("cuda", "cpu", "int8_float16")
    monkeypatch.delenv("CALLWATCH_DEVICE")
    monkeypatch.delenv("CALLWATCH_EMOTION_DEVICE")
    monkeypatch.delenv("CALLWATCH_ASR_COMPUTE_TYPE")
    s = Settings()
    assert (s.asr_device, s.emotion_device, s.asr_compute_type) == ("cpu", "cpu", "int8")


@pytest.mark.slow  # a process of its own, with the models
def test_serve_with_cuda_and_no_gpu_stops_with_the_reason(tmp_path):
    import ctranslate2
    import torch

    if ctranslate2.get_cuda_device_count() > 0 and torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU: serve would start")
    env = {**os.environ, "CALLWATCH_DEVICE": "cuda", "CALLWATCH_DATA_DIR": str(tmp_path), "CALLWATCH_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--port", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines and all(line["level"] == "error" and line["message"].startswith("cannot start: ") for line in lines)
    assert any("CALLWATCH_ASR_DEVICE=cuda" in line["message"] or "CALLWATCH_EMOTION_DEVICE=cuda" in line["message"]
               for line in lines)
    assert "Traceback" not in done.stderr
