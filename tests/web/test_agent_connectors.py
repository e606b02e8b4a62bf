"""A call that arrives over a phone platform's connector reaches the agent's screen as one over `/v1/ingest`
does: a Twilio Media Streams client (clients/platforms/twilio.py, written from Twilio's specification) streams
the shared two-party recording into the real server in real time, and the agent's page in a real headless
Chromium shows the call live, both voices within the CER bounds of the ingest tests, its prompts, and the
score at the end. One platform stands for all: every connector hands its call to the same owner
(service/call_link.py), and each connector's own tests check what it stores.

(The bare-喂 call of test_agent_e2e.py is synthetic speech; through μ-law Whisper base sometimes writes its
喂 as "Way", so a real recording is used here.)"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from feedkit import sign_in_agent
from support.heard import BOUNDS, speaker_cer
from support.page_wait import wait_until

from clients.platforms.twilio import play_call

AGENT, TOKEN = "conn-a1", "conn-token-a1"
CALL = "call_01_read_vs_spontaneous"
PAGE_LINES = """() => [...document.querySelectorAll('.utt:not(.partial)')].map(e => ({
    speaker: e.dataset.speaker, start: Number(e.dataset.at), text: e.querySelector('.text').textContent}))"""


@pytest.fixture
def wired(live_server: Any, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(runtime.settings, "agent_tokens", {**runtime.settings.agent_tokens, AGENT: TOKEN})
    return live_server


def twilio_in_background(base_url: str, recording: Path, call_sid: str) -> tuple[threading.Thread, dict[str, Any]]:
    audio, rate = sf.read(recording, dtype="float32")  # agent left, customer right
    agent, customer = np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])
    url = base_url.replace("http://", "ws://") + "/v1/connectors/twilio"
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            asyncio.run(play_call(url, agent, customer, rate, call_id=call_sid, agent_id=AGENT,
                                  caller_number="+8613800138000"))
        except Exception as exc:  # surfaced by the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_a_twilio_call_shows_live_on_its_agents_screen(
    wired: Any, runtime: Any, shared_audio: Path, new_page, output_dir: Path
) -> None:
    timeline = json.loads((shared_audio / "calls" / f"{CALL}.json").read_text(encoding="utf-8"))
    page = new_page()
    sign_in_agent(page, wired.url, AGENT, TOKEN)
    call_sid = f"CA{int(time.time() * 1000):032x}"
    thread, box = twilio_in_background(wired.url, shared_audio / "calls" / f"{CALL}.wav", call_sid)

    page.wait_for_selector("[data-role=callstate][data-status=live]", timeout=15000)
    # Both voices appear while the call is still going (the customer's first turn ends 7.3 s in).
    wait_until(page, "document.querySelector('.utt[data-speaker=customer]:not(.partial)') !== null", timeout=20)
    assert page.locator("[data-role=callstate][data-status=live]").count() == 1
    assert "8613800138000" in page.inner_text("body")  # the caller number Twilio's parameters carried

    thread.join(timeout=90)
    assert "error" not in box, box.get("error")
    page.wait_for_selector("[data-role=report]:not([hidden])", timeout=30000)
    assert page.inner_text("[data-role=score]").isdigit()
    lines = page.evaluate(PAGE_LINES)
    for role in ("agent", "customer"):
        assert speaker_cer(lines, timeline, role) <= BOUNDS[("mulaw", role)], (role, lines)
    page.screenshot(path=str(output_dir / "agent-twilio-call.png"))
    assert runtime.store.get_call(call_sid).status == "completed"
    assert page.js_errors == []
