"""Fixtures for the audit tests: a folder of real recordings (stereo, μ-law, A-law, MP3, mono) with a
metadata CSV and a set of bad files, one real batch over it (real models), and a real server around the
shared runtime with the audit routes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

CALLS = ("call_01_read_vs_spontaneous", "call_02_podcast_pair_with_backchannel", "call_03_dialogue_and_commands")

# call_01 as an outbound call at 22:30 that the agent hung up: two findings the metadata alone decides.
METADATA_CSV = (
    "file,agent_id,direction,started_at,caller_number,answered_at,hangup_at,hangup_by\n"
    "call_01_read_vs_spontaneous.wav,A1042,outbound,2026-11-23T22:30:00+08:00,13800138000,0,26.0,agent\n"
    "call_02_podcast.mp3,A2001,inbound,2026-11-24T10:00:00+08:00,,0,39.3,customer\n"
)


def make_bad_files(folder: Path) -> dict[str, str]:
    """File name → the error code its job must fail with."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("这不是录音文件，是一段文字。\n" * 20, encoding="utf-8")
    (folder / "truncated.wav").write_bytes(b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00")
    # A valid header that promises audio and holds none.
    sf.write(folder / "silent_header.wav", np.zeros((0, 2), dtype=np.int16), 8000, subtype="PCM_16")
    sf.write(folder / "surround.wav", np.zeros((8000, 6), dtype=np.int16), 8000, subtype="PCM_16")
    return {"empty.wav": "empty", "notes.wav": "unsupported", "truncated.wav": "corrupt",
            "silent_header.wav": "no_audio", "surround.wav": "channels"}


def make_recordings(shared_audio: Path, folder: Path) -> None:
    """The three stereo test calls in the formats recorders write, plus one mono recording."""
    folder.mkdir(parents=True, exist_ok=True)
    src = shared_audio / "calls"
    (folder / f"{CALLS[0]}.wav").write_bytes((src / f"{CALLS[0]}.wav").read_bytes())  # PCM
    audio, rate = sf.read(src / f"{CALLS[1]}.wav", dtype="float32")
    sf.write(folder / "call_02_podcast.mp3", audio, rate, format="MP3")
    audio, rate = sf.read(src / f"{CALLS[2]}.wav", dtype="float32")
    sf.write(folder / "call_03_alaw.wav", audio, rate, subtype="ALAW")
    audio, rate = sf.read(src / f"{CALLS[0]}.wav", dtype="float32")
    sf.write(folder / "A3003_20261125-143000_mono.wav", audio.mean(axis=1) * 0.9, rate, subtype="ULAW")
    (folder / "metadata.csv").write_text(METADATA_CSV, encoding="utf-8")


@pytest.fixture(scope="session")
def audit_inputs(shared_audio: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("audit-inputs")
    make_recordings(shared_audio, root / "recordings")
    bad = make_bad_files(root / "bad")
    return {"recordings": root / "recordings", "bad": root / "bad", "bad_codes": bad}


@pytest.fixture(scope="session")
def audited(runtime, audit_inputs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real batch: every recording and bad file, all three report formats."""
    from service.audit.cli import run_batch

    out = tmp_path_factory.mktemp("audit-out")
    began = time.perf_counter()
    summary = asyncio.run(run_batch(runtime, [audit_inputs["recordings"], audit_inputs["bad"] / "empty.wav",
                                              *sorted(p for p in audit_inputs["bad"].iterdir() if p.name != "empty.wav")],
                                    out_dir=out, formats=["json", "csv", "html"], show_progress=False))
    return {"summary": summary, "out": out, "wall": time.perf_counter() - began}


@pytest.fixture(scope="session")
def audit_server(live_server):
    """The real server of tests/conftest.py: the app includes the audit routes."""
    return live_server
