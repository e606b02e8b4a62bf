"""`callwatch serve` as a real child process on a free loopback port, for the tests that signal or kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from support.live_server import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # loading the models on a busy 2-core machine




class ServerProcess:
    """One `python -m service.cli serve` with its own environment; stderr (the log) goes to a file."""

    def __init__(self, data_dir: Path, log_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ingest_url = f"ws://127.0.0.1:{self.port}/v1/ingest"
        self.log_path = log_path
        self.env = {**os.environ, "CALLWATCH_DATA_DIR": str(data_dir), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"callwatch serve exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            status, _ = self.get("/readyz")
            if status == 200:
                return self
            time.sleep(0.25)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"callwatch serve not ready after {START_TIMEOUT_S} s:\n{self.log()[-3000:]}")

    def get(self, path: str) -> tuple[int | None, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except OSError:
            return None, None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def json_log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def pcm_frames(audio: np.ndarray, frame_samples: int = 320) -> list[bytes]:
    """16 kHz mono float audio as 20 ms pcm_s16le frames."""
    from pipelines.audio import encode_pcm16

    pcm = encode_pcm16(audio)
    step = frame_samples * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]
