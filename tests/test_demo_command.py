"""The README's first command ends in `callwatch demo`: it starts the service, prints one link that opens the
agent screen signed in, waits for that screen, and only then plays the bundled sample call into it; it ends
with the call's report link.

The real path: `python -m service.cli demo` as a process of its own (no terminal, as in CI), its server on
loopback with the real models, and a real headless Chromium opening the link it printed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any, Iterator

import pytest
from support.live_server import free_port

from models.text import character_error_rate

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "demo_call.json"
CHROMIUM = os.environ.get("CALLWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GREETING = ".prompt[data-rule='opening.greeting']"  # the sample's agent opens without 您好 or the company


class Output:
    """The demo's standard output, line by line, read by a thread so the test can wait for a line."""

    def __init__(self, stream: IO[str]):
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {timeout_s} s:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"the demo ended without a line with {text!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CALLWATCH_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="callwatch-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1366, "height": 768}, locale="zh-CN",
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow  # a process of its own with the models, a 26-second call in real time, and a browser
def test_demo_plays_its_call_once_the_linked_screen_is_connected(tmp_path: Path, chromium: Any) -> None:
    port = free_port()
    env = {**os.environ, "CALLWATCH_DATA_DIR": str(tmp_path)}
    demo = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--port", str(port)], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(demo.stderr or []), daemon=True).start()
    out = Output(demo.stdout)  # type: ignore[arg-type]
    try:
        link = out.wait_for("/agent#", timeout_s=240).strip()
        assert link.startswith(f"http://127.0.0.1:{port}/agent#agent_id=agent-demo&key=")

        # Nobody has opened the screen yet: the demo holds the call back.
        time.sleep(3)
        assert "(answered)" not in out.text and "Streaming" not in out.text

        page = chromium.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        feed: list[dict[str, Any]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: feed.append(json.loads(payload))))
        page.goto(link)
        page.wait_for_selector("#conn[data-state=live]")
        assert page.url == f"http://127.0.0.1:{port}/agent"  # the page took the key off the address bar
        out.wait_for("agent screen is connected", timeout_s=10)

        # The screen sees the call from its start: signed in with no call live, then the call arrives.
        page.wait_for_selector(GREETING, timeout=60_000)
        assert feed[0]["type"] == "ready" and feed[0]["live_calls"] == []
        assert [m["type"] for m in feed[1:3]] == ["call", "started"]
        assert page.inner_text("[data-role=callstate]") == "通话中"
        assert "您好" in page.inner_text(GREETING)
        page.wait_for_selector("[data-role=report]:not([hidden])", timeout=60_000)
        shown = [t.strip() for t in page.locator(".utt .text").all_inner_texts()]
        assert [t.strip() for t in page.locator(".utt .who").all_inner_texts()] == ["坐席", "客户", "客户", "坐席"]
        assert "交易" in shown[0] and "调整" in shown[-1], shown
        assert page.inner_text("[data-role=score]").strip().isdigit()

        # The terminal printed the same call, and then where its report is; the report page answers.
        report = out.wait_for("the call's report: ", timeout_s=60).split("the call's report: ", 1)[1].strip()
        call_id = feed[1]["call_id"]
        assert report == f"http://127.0.0.1:{port}/audit/calls/{call_id}"
        with urllib.request.urlopen(report, timeout=30) as answer:
            assert answer.status == 200 and call_id in answer.read().decode("utf-8")
        page.goto(report)
        page.wait_for_selector("#transcript .utt", timeout=30_000)
        assert "调整" in page.inner_text("#transcript")
        out.wait_for("still serving", timeout_s=10)
        assert errors == []
        assert not [url for url in requested if "key" in url]  # the key never left the browser

        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=60) == 0, "".join(stderr)[-2000:]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    agent = "".join(line.split(": ", 1)[1] for line in out.lines if "] 坐席: " in line)
    turns = json.loads(SAMPLE.read_text(encoding="utf-8"))["turns"]
    reference = "".join(t["text"] for t in turns if t["role"] == "agent")
    errors_, _ = character_error_rate(reference, agent)
    # The AISHELL-1 sentences: measured 3 errors in 26 characters (停滞→停止, 城市→尝试); one more is allowed.
    assert errors_ <= 4, agent
    assert "客户: " in out.text and "completed" in out.text
    assert out.text.index("agent screen is connected") < out.text.index("(answered)")
