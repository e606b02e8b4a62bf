"""Two real `callwatch serve` processes (own ports, one SQLite file, one real redis-server): a call streamed
into instance A in real time (real Whisper, real rules) reaches an agent screen connected to instance B; the
screen drops and resumes on B with exactly what it missed; a dismissal on B reaches A and the store; and a
Redis killed mid-call and started again empty costs B's screen no stored final.

The call is built from real recordings: the agent's bare 喂 (tests/web/data/wei_short.flac, the only way to get
one) and clips of ../shared/audio that Whisper base hears without error (benchmarks/results/asr.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from call_audio import DATA
from feedkit import free_port
from redis_proc import RedisProcess, redis_server_binary

from clients.ingest_client import stream_file
from service.persistence.call_store import CallStore

RATE = 16000
AGENTS = {"x-a1": "tok-x-a1-secret", "x-a2": "tok-x-a2-secret"}
# (speaker, start s, source): "wei" is the agent's bare 喂 from wei_short.flac, the rest are shared clips.
SHORT_CALL = ([("agent", 0.0, "wei"), ("customer", 2.0, "aishell1_S0764_W0122.wav")], 12.0)  # time to prompt on a busy machine
LONG_CALL = ([("agent", 0.0, "wei"), ("customer", 2.0, "aishell1_S0764_W0122.wav"),
              ("agent", 7.0, "aishell2_IT0011_W0001.wav"), ("customer", 10.0, "aishell1_S0764_W0121.wav")], 15.5)


def build_call(path: Path, shared_audio: Path, layout: tuple[list[tuple[str, float, str]], float]) -> Path:
    """A stereo 16 kHz call (agent left, customer right) laid out from the turns."""
    import soundfile as sf

    turns, duration = layout
    track = np.zeros((int(duration * RATE), 2), dtype=np.float32)
    for speaker, start, source in turns:
        if source == "wei":
            audio, rate = sf.read(DATA / "wei_short.flac", dtype="float32")
            audio = audio[: int(1.6 * rate), 0]  # the 喂 (0.5–1.03 s) and its silence, agent channel only
        else:
            audio, rate = sf.read(shared_audio / source, dtype="float32")
            audio = audio if audio.ndim == 1 else audio.mean(axis=1)
        assert rate == RATE
        begin = int(start * RATE)
        channel = 0 if speaker == "agent" else 1
        track[begin : begin + len(audio), channel] += audio[: len(track) - begin]
    track += np.random.default_rng(3).normal(0, 0.00005, track.shape).astype(np.float32)  # a line's noise floor
    sf.write(path, np.clip(track, -1, 1), RATE, subtype="PCM_16")
    return path


# ---------------------------------------------------------------- the two instances


@dataclass
class Instance:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ingest_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ingest"

    @property
    def feed_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/agent-feed"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Cluster:
    a: Instance
    b: Instance
    redis: RedisProcess
    data_dir: Path

    def store(self) -> CallStore:
        return CallStore(f"sqlite:///{self.data_dir / 'callwatch.db'}")

    def logs(self) -> str:
        return "\n".join(f"--- {i.name}\n{i.log.read_text(errors='replace')[-4000:]}" for i in (self.a, self.b))


@pytest.fixture(scope="module")
def cluster(shared_audio: Path) -> Iterator[Cluster]:
    redis = RedisProcess(redis_server_binary()).start()
    work = Path(tempfile.mkdtemp(prefix="callwatch-two-"))
    data_dir = work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    env.update({
        "CALLWATCH_CACHE_DIR": os.environ["CALLWATCH_CACHE_DIR"],
        "CALLWATCH_DATA_DIR": str(data_dir),  # one SQLite file for both
        "CALLWATCH_REDIS_URL": redis.url,
        "CALLWATCH_AGENT_TOKENS": json.dumps(AGENTS),
        "CALLWATCH_SHARED_AUDIO": str(shared_audio),
    })
    # The schema exists before the instances start, as after a deployment's migration: two processes creating
    # the tables of one empty database at the same moment trip over each other.
    CallStore(f"sqlite:///{data_dir / 'callwatch.db'}").close()
    callwatch = Path(sys.executable).parent / "callwatch"
    instances = []
    for name in ("A", "B"):
        port = free_port()
        log = work / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(callwatch), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
        instances.append(Instance(name, port, proc, log))
    t0 = time.monotonic()
    try:
        for inst in instances:
            while not inst.healthy():
                if inst.proc.poll() is not None or time.monotonic() - t0 > 240:
                    pytest.fail(f"instance {inst.name} did not start:\n{inst.log.read_text(errors='replace')[-4000:]}")
                time.sleep(0.2)
        print(f"two instances up in {time.monotonic() - t0:.1f} s")
        yield Cluster(instances[0], instances[1], redis, data_dir)
    finally:
        for inst in instances:
            inst.stop()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- an agent screen and a phone system


class Screen:
    """An agent's feed socket (what the page does), read in a thread; every message is kept in order."""

    def __init__(self, url: str, agent_id: str, resume: dict[str, Any] | None = None):
        from websockets.sync.client import ClientConnection, connect

        self.ws: ClientConnection = connect(url, max_size=2**24, legacy=True)  # open until close(), not a block
        self.ws.send(json.dumps({"type": "hello", "agent_id": agent_id, "token": AGENTS[agent_id], "resume": resume}))
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                with self._cond:
                    self.messages.append(json.loads(raw))
                    self._cond.notify_all()
        except Exception:  # closed
            pass

    def wait_for(self, accept: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for m in self.messages[seen:]:
                    if accept(m):
                        return m
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {json.dumps(self.messages, ensure_ascii=False)[-3000:]}")
                self._cond.wait(left)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def close(self) -> list[dict[str, Any]]:
        self.ws.close()
        self._thread.join(timeout=5)
        return list(self.messages)


@dataclass
class PhoneCall:
    """The phone system streaming a recording into an instance in real time, in a thread."""

    url: str
    path: Path
    call_id: str
    agent_id: str
    results: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    ended: dict[str, Any] | None = None
    error: BaseException | None = None

    def start(self) -> "PhoneCall":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.ended = asyncio.run(stream_file(
                self.path, url=self.url, realtime=True, call_id=self.call_id, agent_id=self.agent_id,
                on_result=lambda r: self.results.append((time.monotonic(), r))))
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def finals(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, r) for t, r in list(self.results) if r["type"] == "final"]

    def wait_finals(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.finals()) < count:
            assert time.monotonic() < deadline and self.error is None, (self.error, self.results)
            time.sleep(0.02)

    def join(self, timeout: float = 90.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the call did not finish"
        assert self.error is None, self.error
        assert self.ended is not None and self.ended["status"] == "completed", self.ended


def of_call(messages: list[dict[str, Any]], call_id: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("call_id") == call_id]


def stored_finals(cluster: Cluster, call_id: str) -> dict[str, str]:
    store = cluster.store()
    try:
        return {u["utterance_id"]: u["text"] for u in store.list_utterances(call_id)}
    finally:
        store.close()


# ---------------------------------------------------------------- tests


def test_call_on_a_reaches_an_agent_screen_on_b_which_resumes_there(cluster: Cluster, shared_audio: Path, tmp_path: Path) -> None:
    call_id = f"two-{uuid.uuid4().hex[:8]}"
    wav = build_call(tmp_path / "short.wav", shared_audio, SHORT_CALL)
    on_a = Screen(cluster.a.feed_url, "x-a1")  # the reference: connected to the call's own instance throughout
    on_b = Screen(cluster.b.feed_url, "x-a1")
    other_on_b = Screen(cluster.b.feed_url, "x-a2")
    for screen in (on_a, on_b, other_on_b):
        screen.wait_for(lambda m: m["type"] == "ready", timeout=10)

    phone = PhoneCall(cluster.a.ingest_url, wav, call_id, "x-a1").start()
    prompt = on_b.wait_for(lambda m: m["type"] == "prompt" and m["rule_id"] == "opening.bare_wei", timeout=30)
    got = of_call(on_b.messages, call_id)
    assert got[0]["type"] == "call" and got[0]["agent_id"] == "x-a1" and got[0]["status"] == "live"
    assert next(m for m in got if m["type"] == "final")["text"].startswith("喂")
    board = urllib.request.Request(f"http://127.0.0.1:{cluster.b.port}/v1/live-calls",
                                   headers={"Authorization": f"Bearer {AGENTS['x-a1']}"})
    with urllib.request.urlopen(board, timeout=5) as r:  # B's board lists the call A is transcribing
        assert [c["call_id"] for c in json.load(r)["calls"] if c["status"] == "live"] == [call_id]

    # The agent dismisses the prompt on B: A's screen of the call hears of it, the shared store has it.
    on_b.send({"type": "dismiss", "call_id": call_id, "prompt_id": prompt["prompt_id"]})
    on_a.wait_for(lambda m: m["type"] == "dismissed" and m["prompt_id"] == prompt["prompt_id"], timeout=10)

    # The page on B drops mid-call; the call goes on and ends on A.
    before = on_b.close()
    last = max(m["event_id"] for m in of_call(before, call_id) if m.get("event_id"))
    phone.join()
    on_a.wait_for(lambda m: m["type"] == "report" and m["call_id"] == call_id, timeout=30)

    # It comes back to B, naming the last event id it saw: it gets exactly what it missed.
    resumed = Screen(cluster.b.feed_url, "x-a1", resume={"call_id": call_id, "after": last})
    resumed.wait_for(lambda m: m["type"] == "ready", timeout=10)
    replay = resumed.close()
    missed = [(m["type"], m["event_id"]) for m in of_call(on_a.messages, call_id)
              if (m.get("event_id") or 0) > last and m["type"] != "partial"]
    assert ("report", missed[-1][1]) == missed[-1] and ("ended", missed[-2][1]) == missed[-2]
    assert replay[0]["type"] == "call" and replay[0]["status"] == "ended"
    assert [(m["type"], m["event_id"]) for m in replay if m.get("event_id")] == missed
    assert [m["type"] for m in replay[-2:]] == ["dismissed", "ready"]

    # Between them, the two connections on B got every final that was stored.
    finals = {m["utterance_id"]: m["text"] for m in of_call(before + replay, call_id) if m["type"] == "final"}
    stored = stored_finals(cluster, call_id)
    assert finals == stored and len(stored) == 2
    assert "城市" in stored["customer-0"]  # 一二线城市虽然也处于调整中
    store = cluster.store()
    [dismissed] = [p for p in store.list_prompts(call_id) if p["prompt_id"] == prompt["prompt_id"]]
    store.close()
    assert dismissed["dismissed_by"] == "x-a1" and dismissed["dismissed_at"] is not None
    assert of_call(other_on_b.close(), call_id) == []  # another agent on B saw nothing of it
    on_a.close()


def test_redis_restart_mid_call_costs_the_screen_on_b_no_stored_final(cluster: Cluster, shared_audio: Path, tmp_path: Path) -> None:
    call_id = f"two-restart-{uuid.uuid4().hex[:8]}"
    wav = build_call(tmp_path / "long.wav", shared_audio, LONG_CALL)
    on_b = Screen(cluster.b.feed_url, "x-a2")
    on_b.wait_for(lambda m: m["type"] == "ready", timeout=10)
    phone = PhoneCall(cluster.a.ingest_url, wav, call_id, "x-a2").start()

    phone.wait_finals(1)  # the 喂
    on_b.wait_for(lambda m: m["type"] == "final" and m["call_id"] == call_id, timeout=10)
    cluster.redis.kill()
    down_at = time.monotonic()
    phone.wait_finals(2)  # at least one final is stored and published while Redis is gone
    time.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))  # and both instances have tried to reach it
    cluster.redis.start()  # same port, empty
    back_at = time.monotonic()
    print(f"Redis down {back_at - down_at:.1f} s mid-call")
    phone.join()  # the phone system noticed nothing

    report = on_b.wait_for(lambda m: m["type"] == "report" and m["call_id"] == call_id, timeout=40)
    print(f"report on B {time.monotonic() - back_at:.1f} s after Redis came back")
    got = of_call(on_b.close(), call_id)
    stored = stored_finals(cluster, call_id)
    finals_on_b = {m["utterance_id"]: m["text"] for m in got if m["type"] == "final"}
    assert finals_on_b == stored and len(stored) >= 3
    assert {r["utterance_id"]: r["text"] for _, r in phone.finals()} == stored
    assert any(down_at < t < back_at for t, _ in phone.finals()), "no final fell in the outage"
    event_ids = [m["event_id"] for m in got if m.get("event_id")]
    assert len(event_ids) == len(set(event_ids))  # nothing twice
    assert report["score"] is not None
