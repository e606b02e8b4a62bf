"""The hub of the agent feed: every result of each live call, fanned out to the screens that may see it.

The ingest path publishes every result of a call into one `AgentFeedHub` per process; the hub keeps a short
history per live call (so a browser that reconnects resumes where it left off) and fans messages out to the
websocket subscribers that may see them: an agent sees only calls with their agent id (of their tenant, for
an agent with one: agents are told apart by tenant and agent id), a supervisor sees every call as a summary
and, on request, one call in full (the socket cuts a supervisor's share to the calls it may see: its tenant's,
its teams' agents'). docs/agent-feed.md describes the wire format; its models are in wire/agent_feed.py.

Calls are held by their row key (service/persistence/call_store.py), unique across tenants; the socket
(service/agent_feed/connection.py) shows a tenant-scoped subscriber the ids its phone systems sent.

The hub must never slow transcription down: `publish` does a little bookkeeping under a lock and hands each
message to bounded per-subscriber queues without waiting; a subscriber that falls too far behind is dropped
(its socket is closed with 1013) and will resume from its last event id when it reconnects.

With several instances (CALLWATCH_REDIS_URL), each hub also hands what it publishes to a bus
(service/agent_feed/buses.py) and holds a mirror of the other instances' calls, applied from the bus; subscribing,
resuming, watching and dismissing then work the same whichever instance holds the call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, Union

from service.agent_feed.buses import CallSnapshot, FeedBus, LocalFeedBus
from wire.agent_feed import (
    CallInfo,
    CallMessage,
    DismissedMessage,
    ReadyMessage,
    Resume,
    SummaryMessage,
)

log = logging.getLogger("callwatch.agent_feed")

OnDismiss = Callable[[str, str, str], Union[Awaitable[None], None]]
OVERFLOW = object()  # queued instead of a message: the subscriber fell behind and must reconnect
CLOSE = object()  # queued instead of a message: the server asks the subscriber to reconnect (`disconnect_all`)


@dataclass
class _Call:
    info: CallInfo
    opened: float  # hub clock when first heard of
    history: deque[dict[str, Any]]  # every message but partials, in publish order
    open_partials: dict[str, dict[str, Any]] = field(default_factory=dict)  # utterance id → latest partial
    status: Literal["live", "ended"] = "live"
    ended_at: float | None = None
    last_seen: float = 0.0
    mood: dict[str, Any] | None = None
    mood_trend: deque[float] = field(default_factory=lambda: deque(maxlen=60))
    open_prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    dismissed: list[str] = field(default_factory=list)
    score: float | None = None
    local: bool = True  # published by this process; False: a mirror of another instance's call
    orphaned: bool = False  # ended here because its instance vanished (it may yet come back)
    last_event_id: int = 0  # the highest event id applied (a mirror applies each once)

    def elapsed(self, now: float) -> float:
        end = self.ended_at if self.ended_at is not None else now
        return round(max(0.0, end - self.opened), 1)


class Subscription:
    """One websocket's view of the hub. `agent_id` None means a supervisor; `tenant` None, a deployment-wide
    principal."""

    def __init__(self, agent_id: str | None, name: str, max_queue: int, tenant: str | None = None):
        self.agent_id = agent_id
        self.name = name
        self.tenant = tenant
        self.watching: set[str] = set()
        # Unbounded so that a long catch-up fits; the limit applies to live messages (see `offer`).
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.max_queue = max_queue
        self._catchup_queued = 0  # catch-up items still in the queue (FIFO: they leave first)
        self.loop = asyncio.get_running_loop()
        self.dropped = False

    @property
    def is_supervisor(self) -> bool:
        return self.agent_id is None

    def sees_full(self, call: _Call) -> bool:
        return self.is_agent_of(call) if self.agent_id is not None else call.info.call_id in self.watching

    def is_agent_of(self, call: _Call) -> bool:
        """The call is this agent's: their agent id, and their tenant unless they have none."""
        return call.info.agent_id == self.agent_id and (self.tenant is None or call.info.tenant == self.tenant)

    def offer(self, message: Any, catchup: bool = False) -> None:
        """Queue without waiting (on the subscriber's loop). Past `max_queue` unsent live messages the
        subscriber is dropped: its socket closes and the page resumes from its last event id."""
        if self.dropped:
            return
        if catchup:
            self._catchup_queued += 1
        elif self.queue.qsize() - self._catchup_queued >= self.max_queue:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)
            return
        self.queue.put_nowait(message)

    async def next(self) -> Any:
        item = await self.queue.get()
        if self._catchup_queued:
            self._catchup_queued -= 1
        return item


class AgentFeedHub:
    """Fan-out of call results to agent and supervisor screens, with per-call resume history.

    `publish` may be called from the event loop or from another thread; subscribers live on their own loop.
    The `bus` carries what this hub publishes to the other instances and applies theirs here
    (`apply_remote`); the default bus carries nothing (one process).
    """

    def __init__(
        self,
        on_dismiss: OnDismiss | None = None,
        *,
        history_limit: int = 5000,
        max_queue: int = 2000,
        forget_after_s: float = 300.0,
        idle_forget_s: float = 6 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        bus: FeedBus | None = None,
    ):
        self.on_dismiss = on_dismiss
        self.history_limit = history_limit
        self.max_queue = max_queue
        self.forget_after_s = forget_after_s
        self.idle_forget_s = idle_forget_s
        self.clock = clock
        self._calls: dict[str, _Call] = {}
        self._subs: set[Subscription] = set()
        self._lock = threading.RLock()  # re-entrant: a failed delivery unsubscribes under it
        self.bus: FeedBus = bus or LocalFeedBus()
        self.bus.start(self)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def close(self) -> None:
        """Stop the bus (its threads, its connections); local subscribers are left to the server."""
        self.bus.close()

    # ------------------------------------------------------------ publishing

    async def publish(self, call: CallInfo, message: dict[str, Any]) -> None:
        """Take one result of `call`; never raises, never waits on a subscriber."""
        self.publish_nowait(call, message)

    def publish_nowait(self, call: CallInfo, message: dict[str, Any]) -> None:
        try:
            with self._lock:  # delivering under the lock keeps every subscriber's order = publish order
                msg = dict(message)
                for sub, out in self._record(call, msg):
                    self._deliver(sub, out)
                held = self._calls.get(call.call_id)
                if isinstance(msg.get("type"), str) and held is not None and held.local:
                    self.bus.published(call, msg, self.clock() - held.opened)
        except Exception:  # the ingest path must go on whatever the feed does
            log.exception("agent feed: could not publish a %s of call %s", message.get("type"), call.call_id)

    # ------------------------------------------------------------ the mirror (other instances' calls)

    def apply_remote(self, info: dict[str, Any], message: dict[str, Any], age_s: float | None = None) -> None:
        """A message of another instance's call, from the bus; each event id is applied once."""
        try:
            call_info = CallInfo.model_validate(info)
            with self._lock:
                call = self._calls.get(call_info.call_id)
                if call is not None and call.local:
                    return  # our own call coming back: already applied when it was published
                event_id = message.get("event_id")
                if call is not None and isinstance(event_id, int) and 0 < event_id <= call.last_event_id:
                    return
                if call is not None and call.orphaned and message.get("type") not in ("ended", "report"):
                    # Its instance was only cut off from Redis, not gone: the call is live after all.
                    call.status, call.ended_at, call.orphaned = "live", None, False
                    announce = self._call_message(call, self.clock())
                    for sub in list(self._subs):
                        if sub.is_supervisor or sub.sees_full(call):
                            self._deliver(sub, announce)
                for sub, msg in self._record(call_info, dict(message), local=False, age_s=age_s):
                    self._deliver(sub, msg)
        except Exception:
            log.exception("agent feed: could not apply a %s of call %s from another instance",
                          message.get("type"), info.get("call_id"))

    def apply_remote_dismissal(self, call_id: str, prompt_id: str) -> None:
        """A prompt was dismissed on another instance (the store already has it)."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is not None and prompt_id not in call.dismissed:
                self._dismissed(call, prompt_id)

    def catch_up_point(self, call_id: str) -> int | None:
        """The event id after which the bus should read another instance's call; None for our own calls."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return 0
            return None if call.local else call.last_event_id

    def snapshot(self) -> list[CallSnapshot]:
        """Every call held, for a bus that must write them again (its store came back empty)."""
        with self._lock:
            now = self.clock()
            return [
                CallSnapshot(
                    call_id=call_id, info=call.info.model_dump(), local=call.local, age_s=now - call.opened,
                    ended=call.status == "ended", history=list(call.history) if call.local else [],
                    dismissed=list(call.dismissed),
                )
                for call_id, call in self._calls.items()
            ]

    def remote_live_calls(self) -> list[str]:
        with self._lock:
            return [c for c, call in self._calls.items() if not call.local and call.status == "live"]

    def end_orphaned(self, call_ids: list[str]) -> None:
        """The instance that held these calls is gone: end them as interrupted, as the store will."""
        with self._lock:
            now = self.clock()
            for call_id in call_ids:
                call = self._calls.get(call_id)
                if call is None or call.local or call.status != "live":
                    continue
                finals = sum(1 for m in call.history if m.get("type") == "final")
                ended = {"type": "ended", "call_id": call_id, "event_id": 0, "status": "interrupted",
                         "duration": call.elapsed(now), "utterances": finals}
                for sub, msg in self._record(call.info, ended, local=False):
                    self._deliver(sub, msg)
                call.orphaned = True

    # ------------------------------------------------------------ state

    def _record(
        self, info: CallInfo, msg: dict[str, Any], local: bool = True, age_s: float | None = None
    ) -> list[tuple[Subscription, dict[str, Any]]]:
        """Update the call's state and history; return (subscriber, message) pairs to deliver. Holds the lock."""
        kind = msg.get("type")
        if not isinstance(kind, str):
            log.warning("agent feed: dropped a message without a type for call %s", info.call_id)
            return []
        now = self.clock()
        self._sweep(now)
        out: list[tuple[Subscription, dict[str, Any]]] = []
        call = self._calls.get(info.call_id)
        if call is None:
            # A mirrored call counts its age from when its own instance first heard of it.
            opened = now - age_s if age_s else now
            call = _Call(info=info, opened=opened, history=deque(maxlen=self.history_limit), last_seen=now,
                         local=local)
            if kind in ("ended", "report"):  # first heard of at its end (e.g. the hub was replaced)
                call.status, call.ended_at = "ended", now
            self._calls[info.call_id] = call
            announce = self._call_message(call, now)
            out += [(s, announce) for s in self._subs if s.is_supervisor or s.sees_full(call)]
        call.last_seen = now
        msg.setdefault("call_id", info.call_id)
        sequenced = isinstance(msg.get("event_id"), int) and msg["event_id"] > 0
        if sequenced:
            call.last_event_id = max(call.last_event_id, msg["event_id"])
        summary_changed = False
        if kind == "partial":
            call.open_partials[str(msg.get("utterance_id"))] = msg
        elif sequenced:
            call.history.append(msg)  # bounded: a very long call forgets its oldest messages
        if kind == "final":
            call.open_partials.pop(str(msg.get("utterance_id")), None)
        elif kind == "emotion":
            call.mood = {k: msg.get(k) for k in ("t", "label", "valence", "arousal", "smoothed_valence", "turn")}
            value = msg.get("smoothed_valence", msg.get("valence"))
            if isinstance(value, (int, float)):
                call.mood_trend.append(round(float(value), 3))
            summary_changed = True
        elif kind == "prompt" and msg.get("prompt_id") is not None:
            call.open_prompts[str(msg["prompt_id"])] = {
                k: msg.get(k) for k in ("prompt_id", "rule_id", "severity", "t", "text")
            }
            summary_changed = True
        elif kind == "prompt_cleared":
            summary_changed = call.open_prompts.pop(str(msg.get("prompt_id")), None) is not None
        elif kind == "ended":
            call.status, call.ended_at = "ended", now
            call.open_partials.clear()
            summary_changed = True
        elif kind == "report":
            call.status = "ended"
            call.ended_at = now  # the forgetting clock starts again: the agent reads the score
            call.score = msg.get("score")
            summary_changed = True
        for sub in self._subs:
            if sub.sees_full(call):
                out.append((sub, msg))
        if kind == "ended":
            ended = self._call_message(call, now)
            out += [(s, ended) for s in self._subs if s.is_supervisor or s.sees_full(call)]
        if summary_changed:
            summary = self._summary(call, now)
            out += [(s, summary) for s in self._subs if s.is_supervisor]
        return out

    def _deliver(self, sub: Subscription, message: Any) -> None:
        try:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is sub.loop:
                sub.offer(message)
            elif not sub.loop.is_closed():
                sub.loop.call_soon_threadsafe(sub.offer, message)
        except RuntimeError:  # its loop closed meanwhile (a server shutting down): it is gone
            self.unsubscribe(sub)

    def _sweep(self, now: float) -> None:
        """Forget calls some minutes after they ended, and calls that went silent without an `ended`."""
        for call_id, call in list(self._calls.items()):
            if (call.ended_at is not None and now - call.ended_at > self.forget_after_s) or (
                now - call.last_seen > self.idle_forget_s
            ):
                del self._calls[call_id]

    # ------------------------------------------------------------ views

    def _call_message(self, call: _Call, now: float) -> dict[str, Any]:
        i = call.info
        return CallMessage(
            call_id=i.call_id, agent_id=i.agent_id, direction=i.direction, caller_number=i.caller_number,
            started_at=i.started_at, status=call.status, elapsed=call.elapsed(now),
        ).model_dump()

    def _summary(self, call: _Call, now: float) -> dict[str, Any]:
        i = call.info
        return SummaryMessage(
            call_id=i.call_id, agent_id=i.agent_id, caller_number=i.caller_number, direction=i.direction,
            status=call.status, elapsed=call.elapsed(now), mood=call.mood, mood_trend=list(call.mood_trend),
            open_prompts=list(call.open_prompts.values()), score=call.score,
        ).model_dump()

    def _replay(self, call: _Call, after: int) -> list[dict[str, Any]]:
        """What a client that saw up to `after` missed: history, the open partials, then the dismissals."""
        missed = [m for m in call.history if m["event_id"] > after]
        missed += [m for m in call.open_partials.values() if isinstance(m.get("event_id"), int) and m["event_id"] > after]
        missed.sort(key=lambda m: m["event_id"])
        missed += [DismissedMessage(call_id=call.info.call_id, prompt_id=p).model_dump() for p in call.dismissed]
        return missed

    def call_summaries(self, agent_id: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
        """Summaries of the calls the hub holds (live and recently ended), for one agent (of `tenant`, if
        given) or all."""
        with self._lock:
            now = self.clock()
            self._sweep(now)
            return [self._summary(c, now) for c in self._calls.values()
                    if agent_id is None or (c.info.agent_id == agent_id and (tenant is None or c.info.tenant == tenant))]

    # ------------------------------------------------------------ subscribers

    def subscribe(self, agent_id: str | None, name: str, resume: Resume | None = None,
                  tenant: str | None = None) -> Subscription:
        """Register a subscriber (on the running loop) and queue what it must see first.

        An agent gets, for each of their live calls, the `call` message and the call so far (after the resume
        point for the call it names; a call that ended while it was away is resumed too). A supervisor gets a
        `call` and a `summary` of every call. Then `ready`. Registration and the catch-up happen under the lock,
        so no message published meanwhile is lost or doubled.
        """
        sub = Subscription(agent_id, name, self.max_queue, tenant)
        with self._lock:
            now = self.clock()
            self._sweep(now)
            live = []
            for call in self._calls.values():
                if sub.is_supervisor:
                    sub.offer(self._call_message(call, now), catchup=True)
                    sub.offer(self._summary(call, now), catchup=True)
                    if call.status == "live":
                        live.append(call.info.call_id)
                    continue
                if not sub.is_agent_of(call):
                    continue
                resumed = resume is not None and resume.call_id == call.info.call_id
                if call.status != "live" and not resumed:
                    continue  # the page shows an ended call only if it was watching it
                sub.offer(self._call_message(call, now), catchup=True)
                for msg in self._replay(call, resume.after if resumed and resume else 0):
                    sub.offer(msg, catchup=True)
                if call.status == "live":
                    live.append(call.info.call_id)
            ready = ReadyMessage(role="supervisor" if sub.is_supervisor else "agent", name=name, live_calls=live)
            sub.offer(ready.model_dump(), catchup=True)
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def watch(self, sub: Subscription, call_id: str, after: int = 0) -> bool:
        """A supervisor starts following one call in full; False if the hub does not hold it."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or not sub.is_supervisor:
                return False
            sub.watching.add(call_id)
            sub.offer(self._call_message(call, self.clock()), catchup=True)
            for msg in self._replay(call, after):
                sub.offer(msg, catchup=True)
            return True

    def unwatch(self, sub: Subscription, call_id: str) -> None:
        with self._lock:
            sub.watching.discard(call_id)

    def disconnect_all(self) -> None:
        """Close every subscriber's socket (they reconnect and resume); for shutdown and for tests."""
        with self._lock:
            for sub in list(self._subs):
                self._deliver(sub, CLOSE)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def screens_of(self, agent_id: str) -> int:
        """How many screens of agent `agent_id` are signed in to this instance (any tenant): `callwatch demo`
        plays its call once the screen it linked to has said hello."""
        with self._lock:
            return sum(1 for sub in self._subs if sub.agent_id == agent_id)

    # ------------------------------------------------------------ dismissals

    async def dismiss(self, call_id: str, prompt_id: str, agent_id: str, tenant: str | None = None) -> bool:
        """Agent `agent_id` (of `tenant`; None: deployment-wide) dismissed a prompt of the call keyed
        `call_id`: remember it, tell every screen, and let the store know (QA). False, and nothing written,
        unless the call is that agent's: their agent id and, for an agent with a tenant, that tenant's."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or call.info.agent_id != agent_id or (tenant is not None and call.info.tenant != tenant):
                return False
            if prompt_id in call.dismissed:
                return True
            known = prompt_id in call.open_prompts or any(
                m.get("type") == "prompt" and str(m.get("prompt_id")) == prompt_id for m in call.history
            )
            if not known:
                return False
            self._dismissed(call, prompt_id)
            self.bus.dismissed(call_id, prompt_id)  # the other instances' screens of this call
        if self.on_dismiss is not None:
            try:
                result = self.on_dismiss(call_id, prompt_id, agent_id)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a store hiccup must not take the agent's screen down
                log.exception("agent feed: storing the dismissal of %s in %s failed", prompt_id, call_id)
        return True

    def _dismissed(self, call: _Call, prompt_id: str) -> None:
        """Mark a prompt dismissed and tell the screens that show the call. Holds the lock."""
        call.open_prompts.pop(prompt_id, None)
        call.dismissed.append(prompt_id)
        note = DismissedMessage(call_id=call.info.call_id, prompt_id=prompt_id).model_dump()
        summary = self._summary(call, self.clock())
        out = [(s, note) for s in self._subs if s.sees_full(call) or s.is_supervisor]
        out += [(s, summary) for s in self._subs if s.is_supervisor]
        for sub, msg in out:
            self._deliver(sub, msg)


def feed_hub_for(settings: Any) -> AgentFeedHub:
    """The hub a server process runs: in-process, or over Redis when `settings.redis_url` is set."""
    if not getattr(settings, "redis_url", None):
        return AgentFeedHub()
    from service.agent_feed.buses import RedisFeedBus, RedisFeedConfig

    return AgentFeedHub(bus=RedisFeedBus(RedisFeedConfig(url=settings.redis_url, prefix=settings.redis_key_prefix)))
