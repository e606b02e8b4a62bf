"""The /v1/agent-feed websocket, /v1/live-calls and the pages, over HTTP (Starlette's test client; no models)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.agent_feed.hub import AgentFeedHub
from wire.agent_feed import CallInfo
from feedkit import AGENT_TOKENS, SUPERVISOR_TOKENS, FakeSettings, feed_app

C1 = CallInfo(call_id="c1", agent_id="a1", caller_number="13800138000")
C2 = CallInfo(call_id="c2", agent_id="a2", caller_number="13900139000")


@pytest.fixture
def client(hub: AgentFeedHub):
    with TestClient(feed_app(hub)) as c:
        yield c


def refused(client: TestClient, hello: Any) -> int:
    with client.websocket_connect("/v1/agent-feed") as ws:
        if isinstance(hello, str):
            ws.send_text(hello)
        else:
            ws.send_json(hello)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return closed.value.code


@pytest.mark.parametrize(
    "hello",
    [
        {"type": "hello", "agent_id": "a1", "token": "wrong"},
        {"type": "hello", "agent_id": "a1", "token": ""},
        {"type": "hello", "agent_id": "a1"},
        {"type": "hello", "agent_id": "nobody", "token": AGENT_TOKENS["a1"]},
        {"type": "hello", "agent_id": "a2", "token": AGENT_TOKENS["a1"]},  # another agent's token
        {"type": "hello", "supervisor": "lead", "token": "wrong"},
        {"type": "hello", "supervisor": "a1", "token": AGENT_TOKENS["a1"]},  # an agent is not a supervisor
        {"type": "hello", "agent_id": "a1", "supervisor": "lead", "token": SUPERVISOR_TOKENS["lead"]},
        {"type": "dismiss", "call_id": "c1", "prompt_id": "p1"},
        "not json",
    ],
)
def test_wrong_or_missing_credentials_close_1008(client: TestClient, hello: Any) -> None:
    assert refused(client, hello) == 1008


def test_no_tokens_configured_refuses_everyone(hub: AgentFeedHub) -> None:
    app = feed_app(hub, FakeSettings(agent_tokens={}))
    with TestClient(app) as c:
        assert refused(c, {"type": "hello", "agent_id": "a1", "token": AGENT_TOKENS["a1"]}) == 1008


def test_agent_gets_own_calls_only_and_dismisses(client: TestClient, hub: AgentFeedHub, dismissals) -> None:
    with client.websocket_connect("/v1/agent-feed") as ws1, client.websocket_connect("/v1/agent-feed") as ws2:
        ws1.send_json({"type": "hello", "agent_id": "a1", "token": AGENT_TOKENS["a1"], "resume": None})
        ws2.send_json({"type": "hello", "agent_id": "a2", "token": AGENT_TOKENS["a2"]})
        assert ws1.receive_json()["type"] == "ready"
        assert ws2.receive_json()["type"] == "ready"
        hub.publish_nowait(C2, {"type": "started", "call_id": "c2", "event_id": 1, "protocol": 1, "legs": []})
        hub.publish_nowait(C1, {"type": "started", "call_id": "c1", "event_id": 1, "protocol": 1, "legs": []})
        hub.publish_nowait(C1, {"type": "prompt", "call_id": "c1", "event_id": 2, "prompt_id": "p1",
                                "rule_id": "opening.bare_wei", "severity": "warn", "t": 0.3, "evidence": "喂",
                                "text": "请用「您好，XX公司」开场", "recovery": None})
        got = [ws1.receive_json() for _ in range(3)]
        assert [m["type"] for m in got] == ["call", "started", "prompt"]
        assert all(m["call_id"] == "c1" for m in got)
        ws1.send_json({"type": "dismiss", "call_id": "c1", "prompt_id": "p1"})
        assert ws1.receive_json() == {"type": "dismissed", "call_id": "c1", "prompt_id": "p1"}
        assert dismissals.seen == [("c1", "p1", "a1")]
        # a2 saw its own call only; a2 cannot dismiss a1's prompt.
        assert [ws2.receive_json()["type"] for _ in range(2)] == ["call", "started"]
        ws2.send_json({"type": "dismiss", "call_id": "c1", "prompt_id": "p1"})
        ws2.send_json({"type": "watch", "call_id": "c1"})  # agents cannot watch other calls either
        hub.publish_nowait(C2, {"type": "final", "call_id": "c2", "event_id": 2, "utterance_id": "agent-0",
                                "speaker": "agent", "start": 0, "end": 1, "text": "您好", "speaker_uncertain": False})
        assert ws2.receive_json()["type"] == "final"  # the next thing a2 gets is its own call's final
        assert dismissals.seen == [("c1", "p1", "a1")]


def test_supervisor_sees_all_and_watches_one(client: TestClient, hub: AgentFeedHub) -> None:
    hub.publish_nowait(C1, {"type": "started", "call_id": "c1", "event_id": 1, "protocol": 1, "legs": []})
    hub.publish_nowait(C2, {"type": "started", "call_id": "c2", "event_id": 1, "protocol": 1, "legs": []})
    with client.websocket_connect("/v1/agent-feed") as ws:
        ws.send_json({"type": "hello", "supervisor": "lead", "token": SUPERVISOR_TOKENS["lead"]})
        first = [ws.receive_json() for _ in range(5)]
        assert [m["type"] for m in first] == ["call", "summary", "call", "summary", "ready"]
        assert sorted(first[-1]["live_calls"]) == ["c1", "c2"]
        ws.send_json({"type": "watch", "call_id": "c2", "after": 0})
        assert [ws.receive_json()["type"] for _ in range(2)] == ["call", "started"]


def test_resume_over_the_socket(client: TestClient, hub: AgentFeedHub) -> None:
    for n in range(1, 6):
        hub.publish_nowait(C1, {"type": "final", "call_id": "c1", "event_id": n, "utterance_id": f"agent-{n}",
                                "speaker": "agent", "start": n, "end": n + 0.5, "text": f"第{n}句",
                                "speaker_uncertain": False})
    with client.websocket_connect("/v1/agent-feed") as ws:
        ws.send_json({"type": "hello", "agent_id": "a1", "token": AGENT_TOKENS["a1"],
                      "resume": {"call_id": "c1", "after": 3}})
        got = [ws.receive_json() for _ in range(4)]
    assert [(m["type"], m.get("event_id")) for m in got] == [("call", None), ("final", 4), ("final", 5), ("ready", None)]


def test_server_side_drop_closes_with_1013(client: TestClient, hub: AgentFeedHub) -> None:
    with client.websocket_connect("/v1/agent-feed") as ws:
        ws.send_json({"type": "hello", "agent_id": "a1", "token": AGENT_TOKENS["a1"]})
        assert ws.receive_json()["type"] == "ready"
        deadline = time.monotonic() + 5
        while hub.subscriber_count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.disconnect_all()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1013


def test_live_calls_rest_access(client: TestClient, hub: AgentFeedHub) -> None:
    hub.publish_nowait(C1, {"type": "started", "call_id": "c1", "event_id": 1, "protocol": 1, "legs": []})
    hub.publish_nowait(C2, {"type": "started", "call_id": "c2", "event_id": 1, "protocol": 1, "legs": []})
    assert client.get("/v1/live-calls").status_code == 401
    assert client.get("/v1/live-calls", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/v1/live-calls", headers={"Authorization": "Bearer nope"}).status_code == 403
    sup = client.get("/v1/live-calls", headers={"Authorization": f"Bearer {SUPERVISOR_TOKENS['lead']}"})
    assert sup.status_code == 200 and sorted(c["call_id"] for c in sup.json()["calls"]) == ["c1", "c2"]
    agent = client.get("/v1/live-calls", headers={"Authorization": f"Bearer {AGENT_TOKENS['a2']}"})
    assert [c["call_id"] for c in agent.json()["calls"]] == ["c2"]


def test_pages_and_static_files(client: TestClient) -> None:
    page = client.get("/agent")
    assert page.status_code == 200 and "坐席登录" in page.text and 'lang="zh-CN"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere (no CDN)
    sup = client.get("/supervisor")
    assert sup.status_code == 200 and "班长登录" in sup.text
    for name in ("agent.js", "supervisor.js", "feed.js", "callview.js", "callwatch.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert "//cdn" not in r.text and "https://" not in r.text
    assert client.get("/static/agent.js").headers["content-type"].startswith("text/javascript")
    for bad in ("nope.js", "..%2Fagent_feed.py", "../templates/agent.html", ".hidden.js", "agent.html"):
        assert client.get(f"/static/{bad}").status_code == 404, bad
