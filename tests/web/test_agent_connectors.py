"""A call that arrives over a phone platform's connector reaches the agent's screen as one over `/v1/ingest`
does: a real Twilio Media Streams client (clients/platforms/twilio.py, written from Twilio's specification)
streams the bare-喂 call into the real server, and the agent's page in a real headless Chromium shows it live,
with both voices, the prompt, and the score at the end. One platform stands for all: every connector hands
its call to the same owner (service/call_link.py), and each connector's own tests check what it stores."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from call_audio import DATA
from feedkit import sign_in_agent, wait_until

from clients.platforms.twilio import play_call

AGENT, TOKEN = "conn-a1", "conn-token-a1"


@pytest.fixture
def wired(live_server: Any, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(runtime.settings, "agent_tokens", {**runtime.settings.agent_tokens, AGENT: TOKEN})
    return live_server


def twilio_in_background(base_url: str, call_sid: str) -> tuple[threading.Thread, dict[str, Any]]:
    audio, rate = sf.read(DATA / "wei_angry.flac", dtype="float32")  # agent left, customer right
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


def test_a_twilio_call_shows_live_on_its_agents_screen(wired: Any, runtime: Any, new_page, output_dir: Path) -> None:
    page = new_page()
    sign_in_agent(page, wired.url, AGENT, TOKEN)
    call_sid = f"CA{int(time.time() * 1000):032x}"
    thread, box = twilio_in_background(wired.url, call_sid)

    page.wait_for_selector("[data-role=callstate][data-status=live]", timeout=15000)
    # Through μ-law the 喂 may be heard as 「喂，」 (opening.greeting) or 「喂。」 (opening.bare_wei): an opening prompt.
    page.wait_for_selector(".prompt[data-rule^='opening.']", timeout=20000)
    assert page.inner_text(".utt[data-speaker=agent] .text").startswith("喂")
    wait_until(page, "[...document.querySelectorAll('.utt[data-speaker=customer]:not(.partial) .text')]"
                     ".some(e => e.textContent.includes('服务'))", timeout=30)
    assert "8613800138000" in page.inner_text("body")  # the caller number Twilio's parameters carried

    thread.join(timeout=90)
    assert "error" not in box, box.get("error")
    page.wait_for_selector("[data-role=report]:not([hidden])", timeout=30000)
    assert page.inner_text("[data-role=score]").isdigit()
    page.screenshot(path=str(output_dir / "agent-twilio-call.png"))
    assert runtime.store.get_call(call_sid).status == "completed"
    assert page.js_errors == []
