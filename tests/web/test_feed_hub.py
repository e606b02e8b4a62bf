"""AgentFeedHub on its own: who sees what, resume after a drop, slow subscribers, forgetting, dismissals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.agent_feed.hub import AgentFeedHub
from wire.agent_feed import CallInfo, Resume

A1 = CallInfo(call_id="c1", agent_id="a1", caller_number="13800138000", started_at="2026-11-23T09:30:12+08:00")
A2 = CallInfo(call_id="c2", agent_id="a2")


def drain(sub: Any) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def types(messages: list[Any]) -> list[str]:
    return [m["type"] if isinstance(m, dict) else repr(m) for m in messages]


def started(call: CallInfo, n: int = 1) -> dict[str, Any]:
    return {"type": "started", "call_id": call.call_id, "event_id": n, "protocol": 1, "legs": ["agent", "customer"]}


def partial(call: CallInfo, n: int, uid: str, text: str) -> dict[str, Any]:
    return {"type": "partial", "call_id": call.call_id, "event_id": n, "utterance_id": uid, "speaker": "agent",
            "start": 0.3, "text": text}


def final(call: CallInfo, n: int, uid: str, text: str) -> dict[str, Any]:
    return {"type": "final", "call_id": call.call_id, "event_id": n, "utterance_id": uid, "speaker": "agent",
            "start": 0.3, "end": 0.9, "text": text, "speaker_uncertain": False}


def prompt(call: CallInfo, n: int, pid: str = "p1", severity: str = "warn") -> dict[str, Any]:
    return {"type": "prompt", "call_id": call.call_id, "event_id": n, "prompt_id": pid, "rule_id": "opening.bare_wei",
            "severity": severity, "t": 0.3, "evidence": "坐席 0.3s：喂。", "text": "请用「您好，XX公司」开场", "recovery": None}


async def test_agent_sees_only_own_calls_supervisor_sees_all() -> None:
    hub = AgentFeedHub()
    a1 = hub.subscribe("a1", "a1")
    a2 = hub.subscribe("a2", "a2")
    sup = hub.subscribe(None, "lead")
    for sub in (a1, a2, sup):
        assert types(drain(sub)) == ["ready"]
    await hub.publish(A1, started(A1))
    await hub.publish(A1, final(A1, 2, "agent-0", "喂。"))
    await hub.publish(A2, started(A2))
    got1, got2, gots = drain(a1), drain(a2), drain(sup)
    assert types(got1) == ["call", "started", "final"] and {m["call_id"] for m in got1} == {"c1"}
    assert types(got2) == ["call", "started"] and {m["call_id"] for m in got2} == {"c2"}
    # The supervisor gets the list (call + summary), not every partial of every call.
    assert "final" not in types(gots) and {m["call_id"] for m in gots} == {"c1", "c2"}
    assert got1[0] == {"type": "call", "call_id": "c1", "agent_id": "a1", "direction": "inbound",
                       "caller_number": "13800138000", "started_at": "2026-11-23T09:30:12+08:00", "status": "live",
                       "elapsed": got1[0]["elapsed"]}


async def test_resume_gets_exactly_what_was_missed_with_partials_compacted() -> None:
    hub = AgentFeedHub()
    await hub.publish(A1, started(A1))
    await hub.publish(A1, partial(A1, 2, "agent-0", "喂"))
    await hub.publish(A1, final(A1, 3, "agent-0", "喂。"))
    await hub.publish(A1, prompt(A1, 4))
    await hub.publish(A1, partial(A1, 5, "customer-0", "你们"))
    await hub.publish(A1, partial(A1, 6, "customer-0", "你们这是"))
    sub = hub.subscribe("a1", "a1", Resume(call_id="c1", after=3))
    got = drain(sub)
    assert types(got) == ["call", "prompt", "partial", "ready"]
    assert got[2]["event_id"] == 6 and got[2]["text"] == "你们这是"  # only the newest partial of an open utterance
    assert got[-1]["live_calls"] == ["c1"]
    # A fresh page (no resume) gets the whole call so far, superseded partials left out.
    fresh = drain(hub.subscribe("a1", "a1"))
    assert [m.get("event_id") for m in fresh if m["type"] not in ("call", "ready")] == [1, 3, 4, 6]


async def test_resume_of_a_call_that_ended_while_away_and_no_replay_of_old_calls() -> None:
    hub = AgentFeedHub()
    await hub.publish(A1, started(A1))
    await hub.publish(A1, final(A1, 2, "agent-0", "喂。"))
    await hub.publish(A1, {"type": "ended", "call_id": "c1", "event_id": 3, "status": "completed", "duration": 9.0,
                           "utterances": 1})
    await hub.publish(A1, {"type": "report", "call_id": "c1", "event_id": 4, "score": 87, "findings": []})
    got = drain(hub.subscribe("a1", "a1", Resume(call_id="c1", after=2)))
    assert types(got) == ["call", "ended", "report", "ready"] and got[0]["status"] == "ended"
    assert got[-1]["live_calls"] == []
    # A page that was not on that call does not get an ended call pushed at it: it waits for the next one.
    assert types(drain(hub.subscribe("a1", "a1"))) == ["ready"]
    # Nor can another agent resume someone else's call.
    assert types(drain(hub.subscribe("a2", "a2", Resume(call_id="c1", after=0)))) == ["ready"]


async def test_ended_calls_are_forgotten_after_a_while() -> None:
    now = [1000.0]
    hub = AgentFeedHub(forget_after_s=120, clock=lambda: now[0])
    await hub.publish(A1, started(A1))
    await hub.publish(A1, {"type": "ended", "call_id": "c1", "event_id": 2, "status": "completed", "duration": 3.0,
                           "utterances": 0})
    now[0] += 60
    assert [c["call_id"] for c in hub.call_summaries()] == ["c1"]
    now[0] += 61
    assert hub.call_summaries() == []


async def test_slow_subscriber_is_dropped_without_slowing_publish() -> None:
    hub = AgentFeedHub(max_queue=50)
    slow = hub.subscribe("a1", "a1")
    fast = hub.subscribe("a1", "a1")
    drain(fast)

    async def reader() -> int:
        n = 0
        while True:
            item = await fast.next()
            if isinstance(item, dict) and item.get("event_id") == 500:
                return n
            n += 1

    task = asyncio.create_task(reader())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(1, 501):
        await hub.publish(A1, final(A1, i, f"agent-{i}", "好的"))
        if i % 20 == 0:
            await asyncio.sleep(0)  # the fast reader keeps up
    assert loop.time() - t0 < 1.0
    assert await asyncio.wait_for(task, 5) >= 400
    assert slow.dropped
    leftover = drain(slow)
    assert len(leftover) == 1 and not isinstance(leftover[0], dict)  # the overflow marker: close and resume


async def test_catch_up_longer_than_the_queue_does_not_drop_a_fresh_subscriber() -> None:
    hub = AgentFeedHub(max_queue=10)
    for i in range(1, 100):
        await hub.publish(A1, final(A1, i, f"agent-{i}", "好的"))
    sub = hub.subscribe("a1", "a1")
    await hub.publish(A1, final(A1, 100, "agent-100", "好的"))
    assert not sub.dropped and len(drain(sub)) == 1 + 99 + 1 + 1


async def test_publish_never_raises() -> None:
    hub = AgentFeedHub()
    sub = hub.subscribe("a1", "a1")
    drain(sub)
    await hub.publish(A1, {"type": "emotion", "call_id": "c1", "event_id": "not a number", "valence": None})
    await hub.publish(A1, {"no": "type"})
    await hub.publish(A1, prompt(A1, 3))
    assert "prompt" in types(drain(sub))


async def test_dismissal_is_stored_broadcast_and_replayed() -> None:
    stored: list[tuple[str, str, str]] = []
    hub = AgentFeedHub(on_dismiss=lambda c, p, a: stored.append((c, p, a)))
    await hub.publish(A1, started(A1))
    await hub.publish(A1, prompt(A1, 2, "p1"))
    tab1, tab2, sup = hub.subscribe("a1", "a1"), hub.subscribe("a1", "a1"), hub.subscribe(None, "lead")
    other = hub.subscribe("a2", "a2")
    for s in (tab1, tab2, sup, other):
        drain(s)
    assert not await hub.dismiss("c1", "p1", "a2")  # not their call
    assert not await hub.dismiss("c1", "nope", "a1")  # no such prompt
    assert await hub.dismiss("c1", "p1", "a1")
    assert stored == [("c1", "p1", "a1")]
    assert types(drain(tab2)) == ["dismissed"]
    sup_got = drain(sup)
    assert types(sup_got) == ["dismissed", "summary"] and sup_got[1]["open_prompts"] == []
    assert drain(other) == []
    # A page that comes back later sees the prompt and then that it was dismissed.
    got = drain(hub.subscribe("a1", "a1", Resume(call_id="c1", after=0)))
    assert types(got)[-2:] == ["dismissed", "ready"]


async def test_agents_are_told_apart_by_tenant_and_agent_id() -> None:
    """Two tenants' calls of agent a1: a1 of t1 sees and dismisses only t1's; a deployment-wide a1 (no tenant)
    both, as it reads both."""
    stored: list[tuple[str, str, str]] = []
    hub = AgentFeedHub(on_dismiss=lambda c, p, a: stored.append((c, p, a)))
    ours, theirs = CallInfo(call_id="c1", agent_id="a1", tenant="t1"), CallInfo(call_id="c1~x", agent_id="a1", tenant="t2")
    t1_agent, anywhere = hub.subscribe("a1", "a1", tenant="t1"), hub.subscribe("a1", "a1")
    for call in (ours, theirs):
        await hub.publish(call, started(call))
        await hub.publish(call, prompt(call, 2, "p1"))
    assert {m["call_id"] for m in drain(t1_agent) if "call_id" in m} == {"c1"}
    assert {m["call_id"] for m in drain(anywhere) if "call_id" in m} == {"c1", "c1~x"}
    assert [c["call_id"] for c in hub.call_summaries("a1", "t1")] == ["c1"]
    assert not await hub.dismiss("c1~x", "p1", "a1", "t1") and stored == []  # another tenant's: nothing written
    assert await hub.dismiss("c1", "p1", "a1", "t1") and await hub.dismiss("c1~x", "p1", "a1")
    assert stored == [("c1", "p1", "a1"), ("c1~x", "p1", "a1")]


async def test_dismiss_callback_failure_is_contained() -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("database is locked")

    hub = AgentFeedHub(on_dismiss=broken)
    await hub.publish(A1, prompt(A1, 1, "p1"))
    assert await hub.dismiss("c1", "p1", "a1")


async def test_supervisor_summary_tracks_mood_prompts_and_score() -> None:
    hub = AgentFeedHub()
    sup = hub.subscribe(None, "lead")
    drain(sup)
    await hub.publish(A1, started(A1))
    await hub.publish(A1, {"type": "emotion", "call_id": "c1", "event_id": 2, "utterance_id": "customer-0", "t": 6.4,
                           "valence": -0.8, "arousal": 0.9, "label": "angry", "confidence": 0.9,
                           "smoothed_valence": -0.5, "turn": "negative"})
    await hub.publish(A1, prompt(A1, 3, "p1", "breach"))
    await hub.publish(A1, {"type": "prompt_cleared", "call_id": "c1", "event_id": 4, "prompt_id": "p1"})
    summaries = [m for m in drain(sup) if m["type"] == "summary"]
    assert summaries[0]["mood"]["label"] == "angry" and summaries[0]["mood_trend"] == [-0.5]
    assert [p["prompt_id"] for p in summaries[1]["open_prompts"]] == ["p1"]
    assert summaries[2]["open_prompts"] == []
    # Watching one call streams it in full, from the start.
    assert hub.watch(sup, "c1")
    assert types(drain(sup)) == ["call", "started", "emotion", "prompt", "prompt_cleared"]
    assert not hub.watch(sup, "nope")


def test_publish_from_another_thread_reaches_a_subscriber_on_its_loop() -> None:
    import threading

    hub = AgentFeedHub()

    async def main() -> dict[str, Any]:
        sub = hub.subscribe("a1", "a1")
        assert (await sub.next())["type"] == "ready"
        threading.Thread(target=hub.publish_nowait, args=(A1, started(A1))).start()
        first = await asyncio.wait_for(sub.next(), 5)
        second = await asyncio.wait_for(sub.next(), 5)
        return {"first": first, "second": second}

    got = asyncio.run(main())
    assert got["first"]["type"] == "call" and got["second"]["type"] == "started"


@pytest.mark.parametrize("after", [0, 1])
async def test_resume_of_unknown_call_is_harmless(after: int) -> None:
    hub = AgentFeedHub()
    assert types(drain(hub.subscribe("a1", "a1", Resume(call_id="gone", after=after)))) == ["ready"]


async def test_screens_of_counts_an_agents_signed_in_screens_only() -> None:
    hub = AgentFeedHub()
    assert hub.screens_of("a1") == 0
    first, second = hub.subscribe("a1", "a1"), hub.subscribe("a1", "a1")
    hub.subscribe("a2", "a2")
    hub.subscribe(None, "lead")  # a supervisor is nobody's agent screen
    assert hub.screens_of("a1") == 2
    hub.unsubscribe(first)
    hub.unsubscribe(second)
    assert hub.screens_of("a1") == 0
