"""How a message published into one instance's agent feed reaches the screens connected to other instances.

The hub (service/agent_feed/hub.py) applies everything it publishes to its own state first, so its own screens
never wait on anything; a bus then carries the message to the other instances, whose hubs apply it to a
mirror of the call. `LocalFeedBus` is the one-process case: there is nobody to carry anything to.
`RedisFeedBus` carries messages over Redis Streams when CALLWATCH_REDIS_URL is set; docs/agent-feed.md
("Several instances: Redis") describes the keys, what is kept for how long, and what happens when Redis
goes away.

Redis never sits on the audio path: `published` appends to an in-memory outbox and returns; one writer thread
empties it, one reader thread follows the other instances. Both reconnect by themselves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("callwatch.feed_bus")


@dataclass
class CallSnapshot:
    """One call as a hub holds it, for a bus that must write it again (Redis came back empty)."""

    call_id: str
    info: dict[str, Any]
    local: bool  # published by this instance (its history is the authoritative copy)
    age_s: float  # seconds since the hub first heard of the call
    ended: bool
    history: list[dict[str, Any]]  # every sequenced message but partials, oldest first (local calls only)
    dismissed: list[str]


class FeedReplica(Protocol):
    """What a bus needs of the hub it serves (AgentFeedHub)."""

    forget_after_s: float
    idle_forget_s: float

    @property
    def lock(self) -> Any: ...

    def apply_remote(self, info: dict[str, Any], message: dict[str, Any], age_s: float | None) -> None: ...

    def apply_remote_dismissal(self, call_id: str, prompt_id: str) -> None: ...

    def catch_up_point(self, call_id: str) -> int | None: ...

    def snapshot(self) -> list[CallSnapshot]: ...

    def remote_live_calls(self) -> list[str]: ...

    def end_orphaned(self, call_ids: list[str]) -> None: ...


class FeedBus(Protocol):
    def start(self, hub: FeedReplica) -> None:
        """Begin carrying messages for `hub` (called once, by the hub's constructor)."""

    def published(self, info: Any, message: dict[str, Any], age_s: float) -> None:
        """The hub took one message of one of its own calls. Called with the hub's lock held: never blocks."""

    def dismissed(self, call_id: str, prompt_id: str) -> None:
        """An agent on this instance dismissed a prompt (of a call of any instance)."""

    def close(self) -> None: ...


class LocalFeedBus:
    """One process: the hub's own fan-out is all there is."""

    def start(self, hub: FeedReplica) -> None:
        pass

    def published(self, info: Any, message: dict[str, Any], age_s: float) -> None:
        pass

    def dismissed(self, call_id: str, prompt_id: str) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- Redis


@dataclass(frozen=True)
class RedisFeedConfig:
    url: str
    prefix: str = "callwatch:feed:"
    tail_maxlen: int = 20000  # the shared stream; a reader further behind than this re-reads the histories
    history_maxlen: int = 5000  # per call, as the in-process hub keeps
    outbox_limit: int = 20000  # messages waiting while Redis is away; past it, the reseed covers them
    batch_size: int = 200
    heartbeat_s: float = 1.0
    read_block_ms: int = 250  # the reader's wait for new entries; short, so that close() is quick
    marker_ttl_s: float = 30.0
    owner_check_s: float = 5.0  # how often the reader looks for instances that vanished mid-call
    owner_grace_s: float = 15.0  # a vanished instance's live calls end (interrupted) after this
    startup_wait_s: float = 3.0
    socket_timeout_s: float = 5.0


@dataclass(frozen=True)
class RedisFeedKeys:
    prefix: str

    @property
    def tail(self) -> str:
        return f"{self.prefix}tail"

    @property
    def calls(self) -> str:
        return f"{self.prefix}calls"

    def meta(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}:meta"

    def history(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}:history"

    def dismissed(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}:dismissed"

    def instance(self, instance_id: str) -> str:
        return f"{self.prefix}instance:{instance_id}"


@dataclass
class _Outgoing:
    kind: str  # "m": a message of a call, "d": a dismissal
    call_id: str
    info: Any = None
    message: dict[str, Any] = field(default_factory=dict)
    opened_at: float = 0.0
    prompt_id: str = ""


class _RedisLost(Exception):
    """This instance's marker is gone: Redis restarted or was flushed, so what we wrote may be gone too."""


def _event_id(message: dict[str, Any]) -> int:
    value = message.get("event_id")
    return value if isinstance(value, int) and value > 0 else 0


def _history_id(event_id: int) -> str:
    # The call's own event id is the stream entry id: a repeated write is refused, a resume is one XRANGE.
    return f"0-{event_id}"


class RedisFeedBus:
    """The agent feed over Redis Streams.

    Writer: every message of this instance's calls goes to one shared stream (`tail`) that all instances
    follow, and, partials excepted, to the call's own stream (`call:ID:history`, entry id = event id) that
    an instance reads to catch up. Every write is a transaction that first checks this instance's marker key
    is still there; if Redis lost it (restart, flush), nothing is written until the writer has written its
    calls again from the hub's history ("reseed") and told the others (`r` entries on the tail).

    Reader: on start and after any error, reads the live calls and their histories (`bootstrap`), then
    follows the tail from where the bootstrap began; `r` entries make it read one call's history again.
    Messages are applied once per event id, so overlaps are harmless.
    """

    def __init__(self, config: RedisFeedConfig, instance_id: str | None = None):
        self.config = config
        self.keys = RedisFeedKeys(config.prefix)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._outbox: deque[_Outgoing] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resync = threading.Event()  # the writer must reseed before it writes anything else
        self._resync.set()  # the first connection writes the marker
        self.ready = threading.Event()  # the first bootstrap is done
        self.connected = threading.Event()  # the writer's last transaction went through
        self._hub: FeedReplica | None = None
        self._owners: dict[str, str] = {}  # another instance's call → that instance (reader thread only)
        self._missing_since: dict[str, float] = {}  # instances whose marker is gone → since when
        self._threads: list[threading.Thread] = []
        self.reseeds = 0
        self.bootstraps = 0

    # ------------------------------------------------------------ the hub's side

    def start(self, hub: FeedReplica) -> None:
        self._hub = hub
        for name, target in (("writer", self._write_loop), ("reader", self._read_loop)):
            thread = threading.Thread(target=target, name=f"callwatch-feed-redis-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self.ready.wait(self.config.startup_wait_s):
            log.warning("agent feed: Redis at %s not reachable yet; serving this instance's calls only until it is",
                        _redacted(self.config.url))

    def published(self, info: Any, message: dict[str, Any], age_s: float) -> None:
        self._queue(_Outgoing("m", info.call_id, info=info, message=message, opened_at=time.time() - age_s))

    def dismissed(self, call_id: str, prompt_id: str) -> None:
        self._queue(_Outgoing("d", call_id, prompt_id=prompt_id))

    def _queue(self, item: _Outgoing) -> None:
        if len(self._outbox) >= self.config.outbox_limit:
            # Redis has been away a long time: stop queueing; the reseed rewrites every call from the hub.
            self._resync.set()
            return
        self._outbox.append(item)
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=self.config.socket_timeout_s + 2)

    # ------------------------------------------------------------ connections

    def _client(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent retries: a failed command must be seen, so that a restarted Redis is noticed.
        return redis.Redis.from_url(
            self.config.url, decode_responses=True, socket_timeout=self.config.socket_timeout_s,
            socket_connect_timeout=min(2.0, self.config.socket_timeout_s), retry=Retry(NoBackoff(), 0),
            client_name=f"callwatch-feed-{self.instance_id}",
        )

    def _pause(self, attempt: int) -> None:
        self._stop.wait(min(2.0, 0.05 * 2**attempt))

    # ------------------------------------------------------------ writer

    def _write_loop(self) -> None:
        import redis

        client = self._client()
        failures = 0
        last_write = time.monotonic()
        while not self._stop.is_set():
            try:
                if self._resync.is_set():
                    self._reseed(client)
                batch = self._take()
                if batch:
                    self._write(client, batch)
                    last_write = time.monotonic()
                elif time.monotonic() - last_write >= self.config.heartbeat_s:
                    # Idle: a Redis that restarted meanwhile would otherwise go unnoticed until the next call.
                    if not client.expire(self.keys.instance(self.instance_id), int(self.config.marker_ttl_s)):
                        raise _RedisLost()
                    last_write = time.monotonic()
                if failures:
                    log.warning("agent feed: Redis is back; other instances' screens catch up")
                failures = 0
                self.connected.set()
            except (redis.RedisError, OSError, _RedisLost) as exc:
                self.connected.clear()
                self._resync.set()
                if failures == 0 and not isinstance(exc, _RedisLost):
                    log.warning("agent feed: Redis unreachable (%s); this instance's screens go on, the others "
                                "catch up when it is back", exc)
                failures += 1
                self._pause(failures)
        self._flush_on_close(client)
        try:  # the others end this instance's calls that are still live (as interrupted) without waiting
            client.delete(self.keys.instance(self.instance_id))
        except (redis.RedisError, OSError):
            pass
        client.close()

    def _take(self) -> list[_Outgoing]:
        if not self._outbox:
            self._wake.wait(self.config.heartbeat_s)
            self._wake.clear()
        batch: list[_Outgoing] = []
        while self._outbox and len(batch) < self.config.batch_size:
            batch.append(self._outbox.popleft())
        return batch

    def _flush_on_close(self, client: Any) -> None:
        """Best effort on shutdown: what is still queued goes out if Redis is there."""
        import redis

        try:
            while (batch := self._take_now()) and not self._resync.is_set():
                self._write(client, batch)
        except (redis.RedisError, OSError, _RedisLost):
            pass

    def _take_now(self) -> list[_Outgoing]:
        batch: list[_Outgoing] = []
        while self._outbox and len(batch) < self.config.batch_size:
            batch.append(self._outbox.popleft())
        return batch

    def _guarded(self, client: Any) -> Any:
        """A transaction on one connection that has just seen our marker: if Redis restarts before EXEC, the
        connection dies with it and nothing is written to the new, empty Redis behind the reseed's back."""
        pipe = client.pipeline(transaction=True)
        marker = self.keys.instance(self.instance_id)
        pipe.watch(marker)
        if not pipe.exists(marker):
            pipe.reset()
            raise _RedisLost()
        pipe.multi()
        return pipe

    def _ttl(self, ended: bool) -> int:
        hub = self._hub
        assert hub is not None
        return int((hub.forget_after_s + 60) if ended else hub.idle_forget_s)

    def _index_score(self, now: float, ended: bool) -> float:
        """The calls index is read back to `idle_forget_s` ago; an ended call is dated so that it drops out of
        that window when its keys expire."""
        hub = self._hub
        assert hub is not None
        return now - hub.idle_forget_s + self._ttl(True) if ended else now

    def _write(self, client: Any, batch: list[_Outgoing]) -> None:
        keys, cfg, me = self.keys, self.config, self.instance_id
        pipe = self._guarded(client)
        now = time.time()
        calls: dict[str, _Outgoing] = {}
        ended: set[str] = set()
        for item in batch:
            if item.kind == "d":
                pipe.sadd(keys.dismissed(item.call_id), item.prompt_id)
                pipe.xadd(keys.tail, {"o": me, "k": "d", "c": item.call_id, "p": item.prompt_id},
                          maxlen=cfg.tail_maxlen, approximate=True)
                continue
            msg = item.message
            body = json.dumps(msg, ensure_ascii=False)
            pipe.xadd(keys.tail, {"o": me, "k": "m", "c": item.call_id, "i": item.info.model_dump_json(),
                                  "a": repr(item.opened_at), "m": body}, maxlen=cfg.tail_maxlen, approximate=True)
            eid = _event_id(msg)
            if eid and msg.get("type") != "partial":
                pipe.xadd(keys.history(item.call_id), {"m": body}, id=_history_id(eid),
                          maxlen=cfg.history_maxlen, approximate=True)
            calls[item.call_id] = item
            if msg.get("type") in ("ended", "report"):
                ended.add(item.call_id)
        for call_id, item in calls.items():
            meta = {"info": item.info.model_dump_json(), "opened_at": repr(item.opened_at), "owner": me}
            if call_id in ended:
                meta["status"] = "ended"
            pipe.hset(keys.meta(call_id), mapping=meta)
            pipe.zadd(keys.calls, {call_id: self._index_score(now, call_id in ended)})
            ttl = self._ttl(call_id in ended)
            for key in (keys.meta(call_id), keys.history(call_id), keys.dismissed(call_id)):
                pipe.expire(key, ttl)
        pipe.expire(keys.instance(me), int(cfg.marker_ttl_s))
        # A refused entry (an event id Redis already has) is an expected overlap with a reseed, not a failure.
        pipe.execute(raise_on_error=False)

    def _reseed(self, client: Any) -> None:
        """Write this instance's calls again (what Redis lacks of their history, their dismissals), then the
        marker, in one transaction; announce each call on the tail so the other instances read it again."""
        hub = self._hub
        assert hub is not None
        keys, me = self.keys, self.instance_id
        with hub.lock:  # publishing holds the lock too: nothing slips between the snapshot and the outbox
            snapshots = hub.snapshot()
            self._outbox.clear()
            self._resync.clear()
        try:
            pipe = client.pipeline(transaction=True)
            pipe.watch(keys.instance(me))
            tops: dict[str, int] = {}
            for snap in snapshots:
                if snap.local:
                    top = pipe.xrevrange(keys.history(snap.call_id), count=1)
                    tops[snap.call_id] = int(top[0][0].split("-")[1]) if top else 0
            pipe.multi()
            now = time.time()
            for snap in snapshots:
                if not snap.local and not snap.dismissed:
                    continue
                ttl = self._ttl(snap.ended)
                if snap.local:
                    meta = {"info": json.dumps(snap.info, ensure_ascii=False), "opened_at": repr(now - snap.age_s),
                            "owner": me, "status": "ended" if snap.ended else "live"}
                    pipe.hset(keys.meta(snap.call_id), mapping=meta)
                    pipe.zadd(keys.calls, {snap.call_id: self._index_score(now, snap.ended)})
                    for msg in snap.history:
                        eid = _event_id(msg)
                        if eid > tops[snap.call_id]:
                            pipe.xadd(keys.history(snap.call_id), {"m": json.dumps(msg, ensure_ascii=False)},
                                      id=_history_id(eid), maxlen=self.config.history_maxlen, approximate=True)
                if snap.dismissed:
                    pipe.sadd(keys.dismissed(snap.call_id), *snap.dismissed)
                for key in (keys.meta(snap.call_id), keys.history(snap.call_id), keys.dismissed(snap.call_id)):
                    if snap.local or key == keys.dismissed(snap.call_id):
                        pipe.expire(key, ttl)
                pipe.xadd(keys.tail, {"o": me, "k": "r", "c": snap.call_id}, maxlen=self.config.tail_maxlen,
                          approximate=True)
            pipe.set(keys.instance(me), "1", ex=int(self.config.marker_ttl_s))
            pipe.execute(raise_on_error=False)
        except BaseException:
            self._resync.set()
            raise
        self.reseeds += 1
        if len(snapshots):
            log.info("agent feed: wrote %d calls to Redis again", len(snapshots))

    # ------------------------------------------------------------ reader

    def _read_loop(self) -> None:
        import redis

        client = self._client()
        failures = 0
        last: str | None = None
        checked = time.monotonic()
        while not self._stop.is_set():
            try:
                if last is None:
                    last = self._bootstrap(client)
                    self.ready.set()
                if time.monotonic() - checked >= self.config.owner_check_s:
                    self._end_calls_of_vanished_instances(client)
                    checked = time.monotonic()
                reply = client.xread({self.keys.tail: last}, count=500, block=self.config.read_block_ms)
                entries = reply[0][1] if reply else []
                for entry_id, fields in entries:
                    last = entry_id
                    self._apply(client, fields)
                if len(entries) == 500 and self._fell_behind(client, last):
                    log.warning("agent feed: fell behind the shared stream; reading the live calls again")
                    last = None
                failures = 0
            except (redis.RedisError, OSError) as exc:
                if failures == 0:
                    log.warning("agent feed: lost Redis while following other instances (%s); retrying", exc)
                failures += 1
                last = None  # whatever happened meanwhile is read from the calls' histories
                self._pause(failures)
        client.close()

    def _end_calls_of_vanished_instances(self, client: Any) -> None:
        """An instance that died mid-call never sends `ended`: once its marker has been gone for the grace
        period (longer than an instance takes to write itself again after a Redis restart), its live calls end
        here as interrupted, as the store marks them when it starts again."""
        hub = self._hub
        assert hub is not None
        calls = {c: self._owners[c] for c in hub.remote_live_calls() if c in self._owners}
        self._owners = dict(calls)  # ended and forgotten calls need no watching
        owners = sorted(set(calls.values()))
        if not owners:
            self._missing_since.clear()
            return
        pipe = client.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(self.keys.instance(owner))
        now = time.monotonic()
        gone = []
        for owner, alive in zip(owners, pipe.execute()):
            if alive:
                self._missing_since.pop(owner, None)
            elif now - self._missing_since.setdefault(owner, now) >= self.config.owner_grace_s:
                gone.append(owner)
        for owner in gone:
            log.warning("agent feed: instance %s is gone; its live calls end as interrupted", owner)
            hub.end_orphaned([c for c, o in calls.items() if o == owner])
            self._missing_since.pop(owner, None)

    def _fell_behind(self, client: Any, last: str) -> bool:
        first = client.xrange(self.keys.tail, count=1)
        return bool(first) and _stream_id(first[0][0]) > _stream_id(last)

    def _bootstrap(self, client: Any) -> str:
        """Read every live call's history and dismissals; return the tail position to follow from (taken
        first, so a message published meanwhile is read twice at worst, never missed)."""
        keys = self.keys
        top = client.xrevrange(keys.tail, count=1)
        start = top[0][0] if top else "0-0"
        horizon = time.time() - (self._hub.idle_forget_s if self._hub else 6 * 3600)
        client.zremrangebyscore(keys.calls, "-inf", horizon)
        self._catch_up(client, client.zrangebyscore(keys.calls, horizon, "+inf"))
        self.bootstraps += 1
        return start

    def _catch_up(self, client: Any, call_ids: list[str]) -> None:
        hub = self._hub
        assert hub is not None
        keys = self.keys
        todo = [(c, p) for c in call_ids if (p := hub.catch_up_point(c)) is not None]
        for i in range(0, len(todo), 100):
            chunk = todo[i : i + 100]
            pipe = client.pipeline(transaction=False)
            for call_id, after in chunk:
                pipe.hgetall(keys.meta(call_id))
                pipe.xrange(keys.history(call_id), min=f"({_history_id(after)}" if after else "-")
                pipe.smembers(keys.dismissed(call_id))
            replies = pipe.execute()
            now = time.time()
            for n, (call_id, _after) in enumerate(chunk):
                meta, entries, dismissed = replies[3 * n : 3 * n + 3]
                if not meta or meta.get("owner") == self.instance_id:
                    continue
                info = json.loads(meta["info"])
                age = max(0.0, now - float(meta.get("opened_at", now)))
                self._owners[call_id] = meta.get("owner", "")
                for _entry_id, fields in entries:
                    hub.apply_remote(info, json.loads(fields["m"]), age)
                for prompt_id in sorted(dismissed):
                    hub.apply_remote_dismissal(call_id, prompt_id)

    def _apply(self, client: Any, fields: dict[str, str]) -> None:
        hub = self._hub
        if hub is None or fields.get("o") == self.instance_id:
            return
        kind = fields.get("k")
        try:
            if kind == "m":
                self._owners[fields["c"]] = fields["o"]
                age = max(0.0, time.time() - float(fields.get("a", "0") or 0))
                hub.apply_remote(json.loads(fields["i"]), json.loads(fields["m"]), age)
            elif kind == "d":
                hub.apply_remote_dismissal(fields["c"], fields["p"])
            elif kind == "r":
                self._catch_up(client, [fields["c"]])
        except (KeyError, ValueError):
            log.warning("agent feed: ignored a malformed entry on the shared stream: %.200s", fields)


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _redacted(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
