"""AgentFeedHub over a real redis-server: two hubs (two instances) on one Redis. A call published on one reaches
screens subscribed on the other, resumes there, is read by an instance that starts later, dismissals travel
back, and a Redis that is killed and started again empty loses nothing that was published."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable, Iterator

import pytest
from redis_proc import RedisProcess, redis_server_binary

from service.agent_feed.hub import AgentFeedHub, feed_hub_for
from service.agent_feed.buses import LocalFeedBus, RedisFeedBus, RedisFeedConfig
from wire.agent_feed import CallInfo, Resume

A1 = CallInfo(call_id="c1", agent_id="a1", caller_number="13800138000", started_at="2026-11-23T09:30:12+08:00")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess(redis_server_binary()).start()
    yield server
    server.close()


@pytest.fixture
def hubs(redis_server: RedisProcess) -> Iterator[Callable[..., AgentFeedHub]]:
    """Make hubs ("instances") on the shared Redis, each test under its own key prefix; closed at the end."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    made: list[AgentFeedHub] = []

    def make(bus: dict[str, Any] | None = None, **kwargs: Any) -> AgentFeedHub:
        config = RedisFeedConfig(url=redis_server.url, prefix=prefix, **(bus or {}))
        hub = AgentFeedHub(bus=RedisFeedBus(config), **kwargs)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


def msg(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "call_id": "c1", "event_id": n, **fields}


def final(n: int, text: str = "好的") -> dict[str, Any]:
    return msg("final", n, utterance_id=f"agent-{n}", speaker="agent", start=n, end=n + 0.5, text=text,
               speaker_uncertain=False)


def prompt(n: int, pid: str = "p1") -> dict[str, Any]:
    return msg("prompt", n, prompt_id=pid, rule_id="opening.bare_wei", severity="warn", t=0.3, evidence="坐席 0.3s：喂。",
               text="请用「您好，XX公司」开场", recovery=None)


async def received(sub: Any, until: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Everything a subscriber gets up to and including the first message `until` accepts."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; got {[(m.get('type'), m.get('event_id')) for m in out]}")
        item = await asyncio.wait_for(sub.next(), left)
        assert isinstance(item, dict), item
        out.append(item)
        if until(item):
            return out


async def mirrored(hub: AgentFeedHub, call_id: str, event_id: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while hub.catch_up_point(call_id) != event_id:
        assert time.monotonic() < deadline, f"hub holds {call_id} up to {hub.catch_up_point(call_id)}, not {event_id}"
        await asyncio.sleep(0.02)


def events(messages: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(m["type"], m.get("event_id")) for m in messages]


def test_without_a_redis_url_the_hub_is_in_process() -> None:
    from service.settings import Settings

    assert isinstance(feed_hub_for(Settings(redis_url=None)).bus, LocalFeedBus)
    assert isinstance(AgentFeedHub().bus, LocalFeedBus)


async def test_published_on_one_instance_reaches_screens_on_the_other(hubs) -> None:
    a, b = hubs(), hubs()
    agent_on_b, sup_on_b = b.subscribe("a1", "a1"), b.subscribe(None, "lead")
    other_on_b = b.subscribe("a2", "a2")
    for sub in (agent_on_b, sup_on_b, other_on_b):
        assert (await sub.next())["type"] == "ready"
    t0 = time.monotonic()
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=["agent", "customer"]))
    a.publish_nowait(A1, msg("partial", 2, utterance_id="agent-0", speaker="agent", start=0.3, text="喂"))
    a.publish_nowait(A1, final(3, "喂。"))
    a.publish_nowait(A1, prompt(4))
    got = await received(agent_on_b, lambda m: m["type"] == "prompt")
    print(f"A publish → B subscriber: {1000 * (time.monotonic() - t0):.1f} ms for 4 messages")
    assert events(got) == [("call", None), ("started", 1), ("partial", 2), ("final", 3), ("prompt", 4)]
    assert got[0]["agent_id"] == "a1" and got[0]["caller_number"] == "13800138000" and got[0]["status"] == "live"
    assert got[3]["text"] == "喂。"
    board = await received(sup_on_b, lambda m: m["type"] == "summary" and bool(m["open_prompts"]))
    assert board[0]["type"] == "call" and [p["prompt_id"] for p in board[-1]["open_prompts"]] == ["p1"]
    assert other_on_b.queue.empty()  # another agent's screen on B sees nothing of a1's call
    assert [c["call_id"] for c in b.call_summaries("a1")] == ["c1"] and b.call_summaries("a2") == []


async def test_resume_on_the_other_instance_gets_exactly_what_was_missed(hubs) -> None:
    a, b = hubs(), hubs()
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=["agent", "customer"]))
    a.publish_nowait(A1, final(2, "喂。"))
    a.publish_nowait(A1, prompt(3))
    a.publish_nowait(A1, msg("partial", 4, utterance_id="customer-0", speaker="customer", start=1.5, text="你们"))
    a.publish_nowait(A1, msg("partial", 5, utterance_id="customer-0", speaker="customer", start=1.5, text="你们这是"))
    await mirrored(b, "c1", 5)
    got = await received(b.subscribe("a1", "a1", Resume(call_id="c1", after=2)), lambda m: m["type"] == "ready")
    assert events(got) == [("call", None), ("prompt", 3), ("partial", 5), ("ready", None)]
    assert got[-1]["live_calls"] == ["c1"]
    # The call ends on A while the page is away; resuming on B still gets the end and the report.
    a.publish_nowait(A1, final(6, "你们这是什么服务。"))
    a.publish_nowait(A1, msg("ended", 7, status="completed", duration=9.0, utterances=2))
    a.publish_nowait(A1, msg("report", 8, score=87, findings=[]))
    await mirrored(b, "c1", 8)
    got = await received(b.subscribe("a1", "a1", Resume(call_id="c1", after=5)), lambda m: m["type"] == "ready")
    assert events(got) == [("call", None), ("final", 6), ("ended", 7), ("report", 8), ("ready", None)]
    assert got[0]["status"] == "ended"


async def test_an_instance_that_starts_later_reads_the_live_calls(hubs) -> None:
    a = hubs()
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=["agent", "customer"]))
    for n in range(2, 12):
        a.publish_nowait(A1, final(n))
    a.publish_nowait(A1, msg("partial", 12, utterance_id="agent-x", speaker="agent", start=20, text="还"))
    await asyncio.sleep(1.0)  # the call has been going a while when C starts
    c = hubs()  # the constructor returns once C has read what Redis holds
    assert c.catch_up_point("c1") == 11  # partials are live-only: a late instance starts from the finals
    [summary] = c.call_summaries()
    assert summary["call_id"] == "c1" and summary["elapsed"] >= 0.9  # counted from A's start, not C's
    got = await received(c.subscribe("a1", "a1", Resume(call_id="c1", after=9)), lambda m: m["type"] == "ready")
    assert events(got) == [("call", None), ("final", 10), ("final", 11), ("ready", None)]


async def test_a_dismissal_on_one_instance_reaches_the_other_and_is_stored_once(hubs) -> None:
    stored_a: list[tuple[str, str, str]] = []
    stored_b: list[tuple[str, str, str]] = []
    a = hubs(on_dismiss=lambda *x: stored_a.append(x))
    b = hubs(on_dismiss=lambda *x: stored_b.append(x))
    tab_on_a, sup_on_a = a.subscribe("a1", "a1"), a.subscribe(None, "lead")
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=[]))
    a.publish_nowait(A1, prompt(2, "p1"))
    await mirrored(b, "c1", 2)
    await received(tab_on_a, lambda m: m["type"] == "prompt")
    await received(sup_on_a, lambda m: m["type"] == "summary" and bool(m["open_prompts"]))
    assert not await b.dismiss("c1", "p1", "a2")  # not a2's call, on B either
    assert await b.dismiss("c1", "p1", "a1")
    assert stored_b == [("c1", "p1", "a1")] and stored_a == []  # one shared store, written once
    assert (await received(tab_on_a, lambda m: m["type"] == "dismissed"))[-1] == {
        "type": "dismissed", "call_id": "c1", "prompt_id": "p1"}
    assert (await received(sup_on_a, lambda m: m["type"] == "summary"))[-1]["open_prompts"] == []
    # A page that comes back later to A (or to a third instance) sees the prompt as dismissed.
    c = hubs()
    for hub in (a, c):
        got = await received(hub.subscribe("a1", "a1", Resume(call_id="c1", after=0)), lambda m: m["type"] == "ready")
        assert [m["type"] for m in got][-2:] == ["dismissed", "ready"]


async def test_calls_of_an_instance_that_vanished_end_as_interrupted(hubs) -> None:
    quick = {"owner_check_s": 0.2, "owner_grace_s": 1.0}
    a, b = hubs(bus=quick), hubs(bus=quick)
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=[]))
    a.publish_nowait(A1, final(2, "喂。"))
    await mirrored(b, "c1", 2)
    on_b, sup_on_b = b.subscribe("a1", "a1"), b.subscribe(None, "lead")
    await received(sup_on_b, lambda m: m["type"] == "ready")
    a.close()  # A goes away mid-call and never sends `ended` (a crash: its marker expires; here it is removed)
    got = await received(on_b, lambda m: m["type"] == "ended", timeout=10)
    assert got[-1]["status"] == "interrupted" and got[-1]["utterances"] == 1
    assert (await received(sup_on_b, lambda m: m["type"] == "summary"))[-1]["status"] == "ended"
    assert b.call_summaries()[0]["status"] == "ended"


@pytest.mark.parametrize("outage_s", [0.0, 1.5], ids=["instant-restart", "outage"])
async def test_redis_down_does_not_slow_publishing_and_a_restart_loses_nothing(
    hubs, redis_server: RedisProcess, outage_s: float
) -> None:
    """Redis is killed mid-call and started again empty: the owner writes its calls again, the other instance
    reads them, and B's screen (connected throughout) gets every non-partial message exactly once. An instant
    restart is the sly case: a client reconnects silently and would write into the empty Redis unnoticed."""
    a, b = hubs(), hubs()
    on_a, on_b = a.subscribe("a1", "a1"), b.subscribe("a1", "a1")
    await on_a.next(), await on_b.next()
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=["agent", "customer"]))
    n = 1
    for _ in range(20):
        n += 1
        a.publish_nowait(A1, final(n))
    await received(on_b, lambda m: m.get("event_id") == n)

    redis_server.kill()
    finals = list(range(2, n + 1))
    if outage_s:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(1000):  # the audio path goes on while Redis is away
            n += 1
            a.publish_nowait(A1, final(n) if i % 4 == 0 else msg("partial", n, utterance_id=f"u{n}", speaker="agent",
                                                                start=n, text="嗯"))
            if i % 4 == 0:
                finals.append(n)
        blocked = loop.time() - t0
        print(f"1000 publishes with Redis down: {1000 * blocked:.1f} ms")
        assert blocked < 0.5
        assert (await received(on_a, lambda m: m.get("event_id") == n))[-1]["event_id"] == n  # A's screens go on
        await asyncio.sleep(outage_s)
    redis_server.start()  # same port, empty
    for _ in range(5):
        n += 1
        a.publish_nowait(A1, final(n))
        finals.append(n)
    t1 = time.monotonic()
    got = await received(on_b, lambda m: m.get("event_id") == n, timeout=20)
    print(f"Redis back → B has caught up: {time.monotonic() - t1:.2f} s")
    seen = [m["event_id"] for m in got if m["type"] == "final"]
    assert seen == [e for e in finals if e > 21]  # in order, each once
    assert a.bus.reseeds >= 2 and b.bus.bootstraps >= 2
    # Redis holds the whole call again: an instance started now reads all of it.
    c = hubs()
    await mirrored(c, "c1", n)
    got = await received(c.subscribe("a1", "a1", Resume(call_id="c1", after=0)), lambda m: m["type"] == "ready")
    assert [m["event_id"] for m in got if m["type"] == "final"] == finals


async def test_a_call_ended_for_a_vanished_instance_comes_back_if_the_instance_does(hubs) -> None:
    """A was only cut off from Redis (its writer could not reach it), not gone: its next message revives the call."""
    a, b = hubs(), hubs()
    a.publish_nowait(A1, msg("started", 1, protocol=1, legs=[]))
    await mirrored(b, "c1", 1)
    on_b = b.subscribe("a1", "a1")
    await received(on_b, lambda m: m["type"] == "ready")
    b.end_orphaned(["c1"])  # what B's reader does once A's marker has been gone for the grace period
    got = await received(on_b, lambda m: m["type"] == "call" and m["status"] == "ended")
    assert [(m["type"], m.get("status")) for m in got] == [("ended", "interrupted"), ("call", "ended")]
    a.publish_nowait(A1, final(2, "喂。"))
    got = await received(on_b, lambda m: m["type"] == "final")
    assert [(m["type"], m.get("status")) for m in got] == [("call", "live"), ("final", None)]
    assert b.call_summaries()[0]["status"] == "live"
