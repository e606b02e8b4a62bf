"""Helpers for the agent-screen tests and the prompt-latency benchmark: a light app around a fake runtime
(no models), uvicorn in a thread that can be stopped and restarted on its port, and Chromium settings.

The fake runtime carries just what service/agent_feed/ reads: `settings.agent_tokens`,
`settings.supervisor_tokens`, `feed_hub`, and `rule_book` (the pages embed its names table).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.live_server import free_port

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "web"
CHROMIUM = os.environ.get("CALLWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AGENT_TOKENS = {"a1": "tok-a1-secret", "a2": "tok-a2-secret"}
SUPERVISOR_TOKENS = {"lead": "tok-lead-secret"}


@dataclass
class FakeSettings:
    agent_tokens: dict[str, str] = field(default_factory=lambda: dict(AGENT_TOKENS))
    supervisor_tokens: dict[str, str] = field(default_factory=lambda: dict(SUPERVISOR_TOKENS))


@functools.cache
def shipped_rule_book() -> Any:
    """The rules the pages name things by when a test brings none: the shipped defaults (loaded once)."""
    from rules.config import load_rules_config
    from rules.engine import RuleBook

    return RuleBook(load_rules_config())


@dataclass
class FakeRuntime:
    feed_hub: Any
    settings: FakeSettings = field(default_factory=FakeSettings)
    rule_book: Any = field(default_factory=shipped_rule_book)
    # Whose a call is, asked only for a tenant-scoped or team-leading key: these tests' keys are neither.
    store: Any = None


class Dismissals:
    """Stands in for the store: records what the hub's on_dismiss callback was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, call_id: str, prompt_id: str, agent_id: str) -> None:
        self.seen.append((call_id, prompt_id, agent_id))


def feed_app(hub: Any, settings: FakeSettings | None = None):
    from fastapi import FastAPI

    from service.access.ring import KeyRing
    from service.agent_feed import router
    from service.app_state import get_key_ring, get_runtime

    app = FastAPI()
    app.include_router(router)
    runtime, ring = FakeRuntime(feed_hub=hub, settings=settings or FakeSettings()), KeyRing()
    app.dependency_overrides[get_runtime] = lambda: runtime
    app.dependency_overrides[get_key_ring] = lambda: ring
    return app




class Server:
    """uvicorn in a thread; can be stopped and started again on the same port (a network blip)."""

    def __init__(self, app: Any, port: int | None = None, lifespan: str = "off"):
        self.app = app
        self.lifespan = lifespan  # "on" for the real app: its lifespan builds the app's state
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Server":
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=self.lifespan))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for the open websockets to finish
        if self._thread is not None:
            self._thread.join(timeout=15)


def sign_in_agent(page: Any, base_url: str, agent_id: str, token: str) -> None:
    page.goto(f"{base_url}/agent")
    page.fill("#agent-id", agent_id)
    page.fill("#agent-token", token)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]")


def sign_in_supervisor(page: Any, base_url: str, name: str, token: str) -> None:
    page.goto(f"{base_url}/supervisor")
    page.fill("#sup-name", name)
    page.fill("#sup-token", token)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]")


class ScriptedCall:
    """Publishes a call's messages into a hub by hand, as the live pipeline would (event ids from 1)."""

    def __init__(self, hub: Any, call_id: str, agent_id: str, caller_number: str = "13800138000"):
        from wire.agent_feed import CallInfo

        self.hub = hub
        self.info = CallInfo(call_id=call_id, agent_id=agent_id, caller_number=caller_number,
                             started_at="2026-11-23T09:30:12+08:00")
        self.n = 0

    def send(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.n += 1
        msg = {"type": kind, "call_id": self.info.call_id, "event_id": self.n, **fields}
        self.hub.publish_nowait(self.info, msg)
        return msg

    def started(self) -> None:
        self.send("started", protocol=1, legs=["agent", "customer"])
        self.send("event", event="answered", t=0.0, by=None, target=None)

    def partial(self, uid: str, start: float, text: str) -> None:
        self.send("partial", utterance_id=uid, speaker=uid.split("-")[0], start=start, text=text)

    def final(self, uid: str, start: float, end: float, text: str) -> None:
        self.send("final", utterance_id=uid, speaker=uid.split("-")[0], start=start, end=end, text=text,
                  speaker_uncertain=False)

    def emotion(self, uid: str, t: float, label: str, valence: float, smoothed: float, turn: str | None = None) -> None:
        self.send("emotion", utterance_id=uid, t=t, valence=valence, arousal=0.8 if label == "angry" else 0.3,
                  label=label, confidence=0.9, smoothed_valence=smoothed, turn=turn)

    def wei_prompt(self) -> str:
        self.send("prompt", prompt_id="opening.bare_wei@0.31", rule_id="opening.bare_wei", severity="warn", t=0.31,
                  evidence="坐席 0.3s：喂。", text="请用「您好，XX公司」开场，不要只说「喂」", recovery=None)
        return "opening.bare_wei@0.31"

    def empathy_prompt(self) -> str:
        self.send("prompt", prompt_id="complaint.empathy_first@1.58", rule_id="complaint.empathy_first",
                  severity="breach", t=1.58, evidence="客户 1.6s：你们这是什么服务我都打了三次电话了。",
                  text="客户情绪激动：先表达理解、真诚道歉，再谈解决办法",
                  recovery={"step": "感受", "suggestion": "先共情：我理解您的心情，给您添麻烦了"})
        return "complaint.empathy_first@1.58"

    def opening_with_angry_customer(self) -> None:
        """喂 → prompt; the customer's complaint forming as partials, then final, mood, empathy prompt."""
        self.started()
        self.partial("agent-0", 0.31, "喂")
        self.final("agent-0", 0.31, 0.9, "喂。")
        self.wei_prompt()
        for text in ("你们这是", "你们这是什么服务", "你们这是什么服务我都打了三次"):
            self.partial("customer-0", 1.58, text)
        self.final("customer-0", 1.58, 6.4, "你们这是什么服务我都打了三次电话了。")
        self.emotion("customer-0", 6.4, "angry", -0.85, -0.55, turn="negative")
        self.empathy_prompt()

    def end(self, score: float = 72) -> None:
        self.send("event", event="hangup", t=20.0, by="customer", target=None)
        self.send("ended", status="completed", duration=20.0, utterances=2)
        self.send("report", score=score, findings=[
            {"rule_id": "opening.bare_wei", "severity": "warn", "t": 0.31, "evidence": "坐席 0.3s：喂。",
             "prompt": "请用「您好，XX公司」开场，不要只说「喂」"},
            {"rule_id": "complaint.empathy_first", "severity": "breach", "t": 1.58,
             "evidence": "客户 1.6s：你们这是什么服务我都打了三次电话了。", "prompt": "客户情绪激动：先表达理解、真诚道歉，再谈解决办法"},
        ])


