"""End to end: a recorded call streamed in real time into the real server (real Whisper base, real rules), the
agent screen in a real headless Chromium.

The call (tests/web/data/wei_angry.flac, built by call_audio.py with espeak-ng, since no real recording has a
bare 喂 and an angry customer): the agent opens with a bare 喂 at 0.5 s; the customer says
你们这是什么服务！我都打了三次电话了！ (2.0–8.2 s); the agent answers 你说吧，什么事情。 without any empathy; the
customer says 我要投诉！你们太过分了！. Checked on the live path: Whisper base hears the agent's first turn as
「喂。」 and the customer's first as 「你们这是什么服务我都打了三次电话(了)。」, which carries the rulebook's
complaint phrases, so `opening.bare_wei` fires on the first final and `complaint.empathy_first` once its window
(15 s after the customer stops) has passed without 理解/抱歉/对不起 from the agent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from call_audio import DATA, load_timeline
from feedkit import sign_in_agent
from support.page_wait import wait_until

from clients.ingest_client import stream_file

TOKENS = {"e2e-a1": "e2e-token-a1", "e2e-a2": "e2e-token-a2"}

# Records when each prompt first enters the page's DOM (wall clock, ms), as the benchmark does.
WATCH_PROMPTS = """() => {
  window.__promptSeen = {};
  const box = document.querySelector('[data-role=prompts]');
  const note = () => { for (const li of box.querySelectorAll('.prompt')) {
      const id = li.dataset.promptId;
      if (!(id in window.__promptSeen)) window.__promptSeen[id] = {rule: li.dataset.rule, at: Date.now()};
  } };
  new MutationObserver(note).observe(box, {childList: true});
}"""


@pytest.fixture
def wired(live_server: Any, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(runtime.settings, "agent_tokens", {**runtime.settings.agent_tokens, **TOKENS})
    return live_server


def stream_in_background(url: str, path: Path, call_id: str, agent_id: str) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        box["t0"] = time.time()  # stream_file starts pacing audio right after connecting
        try:
            box["ended"] = asyncio.run(stream_file(path, url=url, realtime=True, call_id=call_id, agent_id=agent_id))
        except Exception as exc:  # surfaced by the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_real_call_shows_transcript_and_prompts_to_its_agent_only(
    wired: Any, runtime: Any, new_page, output_dir: Path
) -> None:
    mine, other = new_page(), new_page()
    sign_in_agent(mine, wired.url, "e2e-a1", TOKENS["e2e-a1"])
    sign_in_agent(other, wired.url, "e2e-a2", TOKENS["e2e-a2"])
    mine.evaluate(WATCH_PROMPTS)

    timeline = load_timeline("wei_angry")
    wei_end = timeline["turns"][0]["speech_end"]
    call_id = f"e2e-wei-angry-{int(time.time())}"
    thread, box = stream_in_background(wired.ingest_url, DATA / "wei_angry.flac", call_id, "e2e-a1")

    # The page picks the call up by itself and shows the 喂 prompt within a couple of seconds of the 喂.
    mine.wait_for_selector("[data-role=callstate][data-status=live]", timeout=15000)
    mine.wait_for_selector(".prompt[data-rule='opening.bare_wei']", timeout=15000)
    seen = mine.evaluate("window.__promptSeen")
    wei_seen = next(v for v in seen.values() if v["rule"] == "opening.bare_wei")
    latency = wei_seen["at"] / 1000 - (box["t0"] + wei_end)
    print(f"opening.bare_wei prompt in the DOM {latency:.2f} s after the end of 喂 (stream start ≈ connect time)")
    # Behaviour, not the benchmark (benchmarks/prompt_latency.py measures p50/p95 over 20+ calls): the prompt
    # must come while the customer is still on their first sentence (it ends 8.2 s in), also on a busy machine.
    assert latency < 7.0
    assert mine.inner_text(".utt[data-speaker=agent] .text").startswith("喂")

    # The customer's complaint, then the empathy prompt with its recovery step.
    wait_until(mine, "[...document.querySelectorAll('.utt[data-speaker=customer]:not(.partial) .text')]"
                     ".some(e => e.textContent.includes('服务'))", timeout=30)
    mine.wait_for_selector(".prompt[data-rule='complaint.empathy_first']", timeout=40000)
    empathy = mine.inner_text(".prompt[data-rule='complaint.empathy_first']")
    assert "六步法" in empathy
    assert mine.locator(".prompt[data-rule='complaint.empathy_first']").get_attribute("data-severity") == "breach"
    mine.screenshot(path=str(output_dir / "e2e-agent-live.png"))

    # The agent dismisses the 喂 prompt; the dismissal is stored for QA.
    wei_id = mine.get_attribute(".prompt[data-rule='opening.bare_wei']", "data-prompt-id")
    mine.click(".prompt[data-rule='opening.bare_wei'] button.dismiss")
    mine.wait_for_selector(".prompt[data-rule='opening.bare_wei']", state="detached")

    # When the call ends the page shows the score and waits for the next call.
    thread.join(timeout=90)
    assert "error" not in box, box.get("error")
    mine.wait_for_selector("[data-role=report]:not([hidden])", timeout=30000)
    assert mine.inner_text("[data-role=callstate]").startswith("通话已结束")
    assert mine.inner_text("[data-role=score]").isdigit()
    mine.screenshot(path=str(output_dir / "e2e-agent-ended.png"))

    stored = {p["prompt_id"]: p for p in runtime.store.list_prompts(call_id)}
    assert stored[wei_id]["dismissed_by"] == "e2e-a1" and stored[wei_id]["dismissed_at"] is not None
    assert stored[next(k for k in stored if k.startswith("complaint.empathy_first"))]["dismissed_at"] is None

    # The other agent's page showed none of it.
    assert other.locator(".utt").count() == 0 and other.locator(".prompt").count() == 0
    assert "喂" not in other.inner_text("body") and "服务" not in other.inner_text("body")
    assert mine.js_errors == [] and other.js_errors == []
