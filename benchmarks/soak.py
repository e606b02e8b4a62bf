"""Soak: does one `callwatch serve` keep running? Calls stream into a real server in real time, several at once,
back to back, for an hour (issue 13), with misbehaving clients mixed in.

Each of --calls slots plays calls one after another; which call and how it behaves follows a seeded schedule
(--seed), so two runs send the same traffic. Every twelve calls of a slot are, in a shuffled order (the slots
play the same shuffled cycles from evenly spaced points, so that even a few minutes meet every kind):

  normal        five calls played to the end and hung up;
  vanish        two callers who go away mid-call: the TCP connection is cut without a websocket close or a
                `hangup` (the server must store the call as `dropped`);
  odd_frame     an audio frame one byte too long (`bad_audio_frame`, the call goes on);
  huge_frame    a frame over the 256 KiB frame limit (`frame_too_large`, dropped, the call goes on);
  unknown_type  a JSON message of no known type (`unknown_type`, the call goes on);
  bad_event     an event at t=1e308 (`invalid_message`, the call goes on);
  bad_json      a text frame that is not JSON (`malformed_json`, close 4400, stored as `dropped`).

The calls are the shared two-party test calls (../shared/audio/calls), the bundled sample, and conversations
laid out from the shared mono clips (../shared/audio, ../shared/audio/conversational), four clips a call,
turns alternating between agent and customer.

Measured:
  memory          resident set of the server process and its children, every 10 s; the least-squares slope
                  after --warmup-minutes in MB (10^6 bytes) per hour, and the peak over the whole run (sampled
                  every 0.25 s) in MiB and GiB;
  final latency   arrival of a final − the moment the end of its speech was sent (the first frame's send time
                  + the final's `end`), as in benchmarks/live.py; p50/p95 per --window-minutes after warm-up;
  calls           completed, and dropped: ended any other way although they should have completed;
  errors by kind  client exceptions, error codes nobody provoked (or provoked ones not sent), unexpected close
                  codes, stored calls whose status is not what the call should have left (GET /v1/calls/{id},
                  checked about every 30 s with /healthz), and the server's own ERROR log lines (/metrics).

Targets (issue 13): memory slope under 20 MB per hour; peak RSS at most 1.5 GiB; final latency flat: the last
window's p95 at most 1.25 times the first window's after warm-up.

--calls defaults to 2: the development machine has 2 cores, and benchmarks/live.py measured 2 calls there at
91 % of one core with final p95 1.18 s (README), leaving the other core to the second pass; 4 calls already
miss 2 s on a 2-core AMD EPYC (benchmarks/results/flood.md). A soak past capacity would measure a growing
queue, whose latency climbs for that reason alone and hides the drift a soak is looking for.

Prints a markdown table and writes benchmarks/results/soak.json and soak.md (--out names them).

    python benchmarks/soak.py [--minutes 60] [--calls 2] [--warmup-minutes 5] [--window-minutes 10] [--out soak]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.live import (  # noqa: E402
    SHARED,
    ProcessSampler,
    bench_data_dir,
    calls,
    pct,
    resident_mib,
    running_server,
)
from clients.ingest_client import FRAME_SECONDS, CallStream, _wire_frames  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
RATE = 16000  # the mono clips' rate; conversations built from them are streamed at it
TURN_GAP_S = 0.6  # silence between turns of a built conversation: longer than the 450 ms that ends an utterance
CLIPS_PER_CONVERSATION = 4
BETWEEN_CALLS_S = 1.0
RSS_EVERY_S = 10.0
CHECK_EVERY_S = 30.0
STORE_SETTLE_S = 5.0  # a call's record is final a moment after its socket closes
STORE_GIVE_UP_S = 120.0  # a record still `live` this long after its socket closed is an error
CALL_MARGIN_S = 90.0  # beyond its audio, how long a call may take (last finals, report) before it counts as hung
FLAT_TOLERANCE = 1.25  # last window's p95 over the first window's after warm-up
TARGET_SLOPE_MB_PER_H = 20.0
TARGET_PEAK_GIB = 1.5


@dataclass(frozen=True)
class Recording:
    name: str
    audio: np.ndarray  # (frames, 2): agent, customer
    rate: int


@dataclass(frozen=True)
class Misbehaviour:
    """What a call does wrong, once, mid-call, in place of sending one audio frame (the frame is sent too, so
    the call's clock and its latency are not shifted), and what docs/protocol.md says the server answers."""

    send: Callable[[CallStream, bytes], Awaitable[None]]
    code: str
    close: int | None  # None: the call goes on and ends with a hangup (close 1000)


async def _odd_frame(call: CallStream, frame: bytes) -> None:
    await call.send_audio(frame + b"\x00")  # the stray byte is dropped, the frame's whole samples kept


async def _huge_frame(call: CallStream, frame: bytes) -> None:
    await call.send_audio(b"\x00" * (262144 + 4))  # CALLWATCH_MAX_FRAME_BYTES' default, plus one stereo sample
    await call.send_audio(frame)


async def _unknown_type(call: CallStream, frame: bytes) -> None:
    await call.send_json({"type": "dance", "style": "waltz"})
    await call.send_audio(frame)


async def _bad_event(call: CallStream, frame: bytes) -> None:
    await call.send_json({"type": "event", "event": "hold", "t": 1e308})
    await call.send_audio(frame)


async def _bad_json(call: CallStream, frame: bytes) -> None:
    await call._ws.send("{this is not json")  # the client has no public way to send a broken frame, by design


MISBEHAVIOURS = {
    "odd_frame": Misbehaviour(_odd_frame, "bad_audio_frame", None),
    "huge_frame": Misbehaviour(_huge_frame, "frame_too_large", None),
    "unknown_type": Misbehaviour(_unknown_type, "unknown_type", None),
    "bad_event": Misbehaviour(_bad_event, "invalid_message", None),
    "bad_json": Misbehaviour(_bad_json, "malformed_json", 4400),
}
CYCLE = ["normal"] * 5 + ["vanish"] * 2 + list(MISBEHAVIOURS)


@dataclass(frozen=True)
class Plan:
    kind: str  # "normal", "vanish" or a MISBEHAVIOURS key
    recording: int
    at: float  # where in the call the caller vanishes or misbehaves, as a fraction of its frames

    @property
    def expected_close(self) -> int:
        if self.kind == "vanish":
            return 1006  # the client cut the connection itself: no close frame, an abnormal closure
        misbehaviour = MISBEHAVIOURS.get(self.kind)
        return misbehaviour.close if misbehaviour is not None and misbehaviour.close is not None else 1000

    @property
    def expected_status(self) -> str:
        """How the call should end, and be stored."""
        return "completed" if self.expected_close == 1000 else "dropped"


def plan(seed: int, slot: int, slots: int, n: int, recordings: int) -> Plan:
    """The n-th call of a slot: its kind from the shuffled cycles, its recording in turn, and where in it the
    caller misbehaves. Slots start at evenly spaced points of both the cycles and the recordings."""
    position = n + slot * len(CYCLE) // slots
    cycle = list(CYCLE)
    random.Random(f"{seed}:{position // len(cycle)}").shuffle(cycle)
    at = random.Random(f"{seed}:{slot}:{n}:at").uniform(0.2, 0.8)
    return Plan(cycle[position % len(cycle)], (n + slot * recordings // slots) % recordings, at)


def conversation(clips: list[np.ndarray]) -> np.ndarray:
    """Mono clips as alternating turns, agent first, each after a short silence: (frames, 2)."""
    total = sum(len(c) for c in clips) + int(TURN_GAP_S * RATE) * (len(clips) + 1)
    audio = np.zeros((total, 2), np.float32)
    at = int(TURN_GAP_S * RATE)
    for i, clip in enumerate(clips):
        audio[at : at + len(clip), i % 2] = clip
        at += len(clip) + int(TURN_GAP_S * RATE)
    return audio


def recordings() -> list[Recording]:
    from pipelines.audio import ChannelResampler, load_audio_file

    out = []
    for path in calls():
        audio, rate = load_audio_file(str(path))
        out.append(Recording(path.stem, audio, rate))
    clips = []
    for path in sorted(SHARED.glob("*.wav")) + sorted((SHARED / "conversational").glob("*.wav")):
        audio, rate = load_audio_file(str(path))
        mono = audio.mean(axis=1)
        clips.append(mono if rate == RATE else ChannelResampler(rate, RATE)(mono, last=True))
    for n, i in enumerate(range(0, len(clips), CLIPS_PER_CONVERSATION)):
        out.append(Recording(f"conversation-{n}", conversation(clips[i : i + CLIPS_PER_CONVERSATION]), RATE))
    return out


@dataclass
class Outcome:
    """One call as the client saw it. Times are seconds since the soak began."""

    call_id: str
    plan: Plan
    began: float
    ended: float = 0.0
    status: str | None = None  # from the server's `ended` message
    close_code: int | None = None
    codes: list[str] = field(default_factory=list)  # error codes the server sent
    finals: list[tuple[float, float]] = field(default_factory=list)  # (arrival, latency)
    exception: str | None = None
    stored: str | None = None  # the stored status once checked, or what went wrong reading it

    @property
    def should_complete(self) -> bool:
        return self.plan.expected_status == "completed"

    @property
    def completed(self) -> bool:
        return self.status == "completed" and self.close_code == 1000 and self.exception is None

    def record(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "kind": self.plan.kind, "recording": self.plan.recording,
                "began_s": round(self.began, 1), "ended_s": round(self.ended, 1), "status": self.status,
                "close": self.close_code, "codes": self.codes, "finals": len(self.finals), "stored": self.stored,
                "exception": self.exception}

    def answer(self) -> str:
        """How the server answered a misbehaving call: the code it provoked (if sent), the close, the record."""
        provoked = MISBEHAVIOURS[self.plan.kind].code if self.plan.kind in MISBEHAVIOURS else None
        code = provoked if provoked in self.codes else f"no {provoked}" if provoked else "–"
        return f"{code} / close {self.close_code} / stored {self.stored}"

    def surprises(self) -> list[str]:
        """What differs from what the protocol promises for this call, one kind each."""
        out = [f"client exception: {self.exception}"] if self.exception else []
        provoked = MISBEHAVIOURS[self.plan.kind].code if self.plan.kind in MISBEHAVIOURS else None
        out += [f"error code {c} (not provoked)" for c in self.codes if c != provoked]
        if provoked and provoked not in self.codes and self.exception is None:
            out.append(f"error code {provoked} not sent ({self.plan.kind})")
        if self.exception is None and self.close_code != self.plan.expected_close:
            out.append(f"close {self.close_code} (expected {self.plan.expected_close})")
        if self.stored is not None and self.stored != self.plan.expected_status:
            out.append(f"stored {self.stored} (expected {self.plan.expected_status})")
        return out


class Clock:
    """Seconds since the soak began."""

    def __init__(self) -> None:
        self.began = time.time()
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0


async def play(url: str, rec: Recording, plan_: Plan, agent_id: str, outcome: Outcome, clock: Clock) -> None:
    """Stream one call in real time as planned, recording into `outcome` what the server answered."""
    frames, wire_rate = _wire_frames(rec.audio, rec.rate, "pcm_s16le")
    at = int(len(frames) * plan_.at)
    async with CallStream(url) as call:
        await call.start(call_id=outcome.call_id, agent_id=agent_id,
                         audio={"encoding": "pcm_s16le", "sample_rate": wire_rate, "layout": "stereo"})
        await call.event("answered", t=0.0)
        t0 = time.monotonic()  # the first frame leaves now: the call's clock starts here

        async def collect() -> None:
            async for result in call.results():
                if result["type"] == "final":
                    outcome.finals.append((clock.now(), time.monotonic() - (t0 + result["end"])))
                elif result["type"] == "error":
                    outcome.codes.append(result["code"])
                elif result["type"] == "ended":
                    outcome.status = result["status"]

        collector = asyncio.create_task(collect())
        for i, frame in enumerate(frames):
            if (delay := t0 + i * FRAME_SECONDS - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            if i == at and plan_.kind == "vanish":
                call._ws.transport.abort()  # no close handshake, no hangup: the phone system just went away
                break
            if i == at and plan_.kind in MISBEHAVIOURS:
                await MISBEHAVIOURS[plan_.kind].send(call, frame)
                if MISBEHAVIOURS[plan_.kind].close is not None:
                    break  # the server closes the call: nothing more can be sent
            else:
                await call.send_audio(frame)
        else:
            await call.event("hangup", by="customer")
        await collector
    outcome.close_code = call.close_code


async def slot(url: str, index: int, slots: int, seed: int, recs: list[Recording], deadline: float, clock: Clock,
               outcomes: list[Outcome], checks: Checks) -> None:
    """Calls back to back until the deadline (or the server is gone); a call that fails is recorded and the
    next one starts."""
    n = 0
    while clock.now() < deadline and checks.server_exited_at is None:
        plan_ = plan(seed, index, slots, n, len(recs))
        rec = recs[plan_.recording]
        # The run's start time in the id: a rerun against a kept data folder never meets its own old calls.
        outcome = Outcome(f"soak-{int(clock.began)}-{index}-{n}", plan_, clock.now())
        outcomes.append(outcome)
        try:
            await asyncio.wait_for(play(url, rec, plan_, f"soak-agent-{index}", outcome, clock),
                                   len(rec.audio) / rec.rate + CALL_MARGIN_S)
        except Exception as exc:  # any failure of one call is a finding; the soak goes on
            outcome.exception = f"{type(exc).__name__}: {exc}"[:300]
        outcome.ended = clock.now()
        n += 1
        await asyncio.sleep(BETWEEN_CALLS_S)


def http_get(url: str) -> tuple[int | None, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return None, str(exc).encode()


def server_alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except FileNotFoundError:
        return False
    return "Z" not in state.split()[1]  # a zombie has exited and waits to be reaped


@dataclass
class Checks:
    health_ok: int = 0
    health_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # kinds not tied to one call
    server_exited_at: float | None = None


async def check_store(base: str, outcomes: list[Outcome], clock: Clock, final: bool) -> None:
    """Read back each ended call's stored record once it has settled; one still `live` is read again later."""
    for o in outcomes:
        age = clock.now() - o.ended
        if not o.ended or o.stored is not None or (age < STORE_SETTLE_S and not final):
            continue
        status, body = await asyncio.to_thread(http_get, f"{base}/v1/calls/{o.call_id}")
        if status != 200:
            o.stored = f"HTTP {status}"
            continue
        record = json.loads(body)
        if record["status"] == "live" and age < STORE_GIVE_UP_S and not final:
            continue
        o.stored = record["status"]
        if o.finals and not record["utterances"]:
            o.stored += ", without its utterances"


async def monitor(base: str, pid: int, outcomes: list[Outcome], clock: Clock, checks: Checks,
                  stop: asyncio.Event) -> None:
    """/healthz and the stored calls about every CHECK_EVERY_S; notices a server that has exited."""
    while not stop.is_set():
        if not server_alive(pid):
            checks.server_exited_at = clock.now()
            return
        began = time.monotonic()
        status, _ = await asyncio.to_thread(http_get, f"{base}/healthz")
        if status == 200:
            checks.health_ok += 1
            checks.health_ms.append(1000 * (time.monotonic() - began))
        else:
            checks.errors[f"healthz: {status}"] += 1
        await check_store(base, outcomes, clock, final=False)
        try:
            await asyncio.wait_for(stop.wait(), CHECK_EVERY_S)
        except TimeoutError:
            pass


class MemorySeries:
    """Every RSS_EVERY_S: (seconds since the soak began, RSS MiB of the server and its children, its open
    file descriptors, its threads), from /proc, on a thread of its own so a busy event loop cannot delay it."""

    def __init__(self, pid: int, clock: Clock):
        self.pid, self.clock = pid, clock
        self.samples: list[tuple[float, float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            fds = len(list(Path(f"/proc/{self.pid}/fd").iterdir()))
            threads = int(next(line for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                               if line.startswith("Threads:")).split()[1])
        except (FileNotFoundError, StopIteration):
            return  # the server has gone; the monitor reports it
        self.samples.append((round(self.clock.now(), 1), round(resident_mib(self.pid), 1), fds, threads))

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(RSS_EVERY_S):
            self._sample()

    def __enter__(self) -> MemorySeries:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def slope_mb_per_hour(samples: list[tuple[float, float, int, int]], after_s: float) -> float | None:
    """Least-squares slope of RSS over time after warm-up, MB (10^6 bytes) per hour."""
    points = [(t, mib) for t, mib, _, _ in samples if t >= after_s]
    if len(points) < 3:
        return None
    t, mib = np.array(points).T
    return round(float(np.polyfit(t / 3600, mib * 2**20 / 1e6, 1)[0]), 1)


def windows(outcomes: list[Outcome], warmup_s: float, window_s: float, end_s: float) -> list[dict[str, Any]]:
    """Final latency per window after warm-up (finals that arrive after the end, the last calls draining,
    count in the last window), and the warm-up itself as the first row."""
    edges = ([0.0] if warmup_s > 0 else []) + [float(e) for e in np.arange(warmup_s, end_s, window_s)] + [float("inf")]
    rows = []
    for lo, hi in pairwise(edges):
        latency = [lat for o in outcomes for at, lat in o.finals if lo <= at < hi]
        ended = [o for o in outcomes if o.ended and lo <= o.ended < hi]
        rows.append({"from_min": round(lo / 60, 1), "to_min": round(min(hi, end_s) / 60, 1), "warmup": hi <= warmup_s,
                     "calls_ended": len(ended), "finals": len(latency), "final_latency_p50": pct(latency, 50),
                     "final_latency_p95": pct(latency, 95),
                     "final_latency_max": round(max(latency), 3) if latency else None})
    return rows


def server_metrics(base: str) -> dict[str, dict[str, float]]:
    """The counters of /metrics that say how the server saw the soak, by their label."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(f"{base}/metrics")
    if status != 200:
        return {"unavailable": {str(status): 0.0}}
    wanted = {"callwatch_calls_ended_total": "status", "callwatch_calls_refused_total": "reason",
              "callwatch_ingest_errors_total": "code", "callwatch_log_errors_total": "logger",
              "callwatch_asr_partials_dropped_total": "", "process_open_fds": "", "process_resident_memory_bytes": ""}
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in wanted:
                label = sample.labels.get(wanted[sample.name], "") if wanted[sample.name] else "value"
                out.setdefault(sample.name.removesuffix("_total"), {})[label] = sample.value
    return out


def server_tracebacks(url: str) -> list[str]:
    """Tracebacks in the server's log (benchmarks/live.py's running_server writes it): the last lines of each."""
    log = bench_data_dir(urlsplit(url).port or 0) / "server.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return [chunk[-1500:] for chunk in text.split("Traceback (most recent call last):")[1:]]


async def wait_ready(base: str, timeout_s: float = 300) -> None:
    """Until /readyz says the models are loaded: a soak that began while they load would time the loading."""
    deadline = time.monotonic() + timeout_s
    while (await asyncio.to_thread(http_get, f"{base}/readyz"))[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready after {timeout_s:g} s")
        await asyncio.sleep(1.0)


async def soak(url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    base = url.removesuffix("/v1/ingest").replace("ws://", "http://")
    recs = recordings()
    await wait_ready(base)
    outcomes: list[Outcome] = []
    checks = Checks()
    stop = asyncio.Event()
    clock = Clock()
    end_s, warmup_s = args.minutes * 60, args.warmup_minutes * 60
    with ProcessSampler(pid) as whole, MemorySeries(pid, clock) as memory:
        watching = asyncio.create_task(monitor(base, pid, outcomes, clock, checks, stop))
        await asyncio.gather(*(slot(url, i, args.calls, args.seed, recs, end_s, clock, outcomes, checks) for i in range(args.calls)))
        stop.set()
        await watching
        await check_store(base, outcomes, clock, final=True)
        metrics = await asyncio.to_thread(server_metrics, base)
    return summarise(args, outcomes, checks, memory.samples, whole, metrics, server_tracebacks(url), warmup_s, end_s)


def summarise(args: argparse.Namespace, outcomes: list[Outcome], checks: Checks,
              samples: list[tuple[float, float, int, int]], whole: ProcessSampler, metrics: dict[str, dict[str, float]],
              tracebacks: list[str], warmup_s: float, end_s: float) -> dict[str, Any]:
    rows = windows(outcomes, warmup_s, args.window_minutes * 60, end_s)
    after = [r for r in rows if not r["warmup"] and r["finals"]]
    first_p95, last_p95 = (after[0]["final_latency_p95"], after[-1]["final_latency_p95"]) if after else (None, None)
    errors = Counter(kind for o in outcomes for kind in o.surprises()) + checks.errors
    if checks.server_exited_at is not None:
        errors[f"server exited at {checks.server_exited_at / 60:.1f} min"] += 1
    for logger, n in metrics.get("callwatch_log_errors", {}).items():
        errors[f"server ERROR log lines ({logger})"] += int(n)
    if tracebacks:
        errors["server tracebacks in its log"] += len(tracebacks)
    answers: dict[str, Counter[str]] = {}
    for o in outcomes:
        if o.plan.kind != "normal":
            answers.setdefault(o.plan.kind, Counter())[o.answer()] += 1
    slope = slope_mb_per_hour(samples, warmup_s)
    peak_mib = round(whole.peak_rss_mb)
    after_warmup = next((s for s in samples if s[0] >= warmup_s), samples[-1] if samples else None)
    return {
        "minutes": args.minutes, "calls_at_once": args.calls, "warmup_minutes": args.warmup_minutes,
        "window_minutes": args.window_minutes, "seed": args.seed,
        "calls_started": len(outcomes),
        "calls_completed": sum(o.completed for o in outcomes if o.should_complete),
        "calls_that_should_complete": sum(o.should_complete for o in outcomes),
        "calls_dropped": sum(not o.completed for o in outcomes if o.should_complete),
        "calls_by_kind": dict(Counter(o.plan.kind for o in outcomes)),
        "misbehaviour_answers": {k: dict(v) for k, v in sorted(answers.items())},
        "errors_by_kind": dict(errors.most_common()),
        "rss_slope_mb_per_h": slope, "peak_rss_mib": peak_mib, "peak_rss_gib": round(peak_mib / 1024, 3),
        "rss_after_warmup_mib": after_warmup[1] if after_warmup else None,
        "rss_at_end_mib": samples[-1][1] if samples else None,
        "open_fds_after_warmup_and_end": [after_warmup[2], samples[-1][2]] if after_warmup else None,
        "threads_after_warmup_and_end": [after_warmup[3], samples[-1][3]] if after_warmup else None,
        "server_cpu_percent": round(whole.cpu_percent),
        "windows": rows, "first_window_p95": first_p95, "last_window_p95": last_p95,
        "healthz_ok": checks.health_ok, "healthz_p95_ms": pct(checks.health_ms, 95),
        "stored_checked": sum(o.stored is not None for o in outcomes),
        "server_metrics": metrics, "server_tracebacks": tracebacks,
        "targets": {"rss_slope_mb_per_h_below": TARGET_SLOPE_MB_PER_H, "peak_rss_gib_at_most": TARGET_PEAK_GIB,
                    "last_window_p95_at_most_times_first": FLAT_TOLERANCE},
        "rss_samples": samples, "calls": [o.record() for o in outcomes],
    }


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else "yes" if ok else "no"


def report(s: dict[str, Any], hardware: str) -> str:
    slope, first, last = s["rss_slope_mb_per_h"], s["first_window_p95"], s["last_window_p95"]
    ratio = round(last / first, 2) if first and last else None
    lines = [f"Soak: {s['calls_at_once']} calls at once in real time for {s['minutes']} min "
             f"({s['warmup_minutes']} min warm-up), embedded Whisper base int8", "", hardware, "",
             "| measure | measured | target | met |", "|---|---|---|---|",
             f"| RSS slope after warm-up (server + children) | {slope} MB/h "
             f"({s['rss_after_warmup_mib']} → {s['rss_at_end_mib']} MiB) | < {TARGET_SLOPE_MB_PER_H:g} MB/h | "
             f"{verdict(None if slope is None else slope < TARGET_SLOPE_MB_PER_H)} |",
             f"| peak RSS | {s['peak_rss_mib']} MiB ({s['peak_rss_gib']} GiB) | ≤ {TARGET_PEAK_GIB} GiB | "
             f"{verdict(s['peak_rss_gib'] <= TARGET_PEAK_GIB)} |",
             f"| final latency p95, last window / first after warm-up | {last} s / {first} s (× {ratio}) | "
             f"≤ × {FLAT_TOLERANCE} | {verdict(None if ratio is None else ratio <= FLAT_TOLERANCE)} |",
             f"| calls completed | {s['calls_completed']} of {s['calls_that_should_complete']} that should have "
             f"({s['calls_started']} started) | all | "
             f"{verdict(s['calls_completed'] == s['calls_that_should_complete'])} |",
             f"| calls dropped (ended abnormally when they should have completed) | {s['calls_dropped']} | 0 | "
             f"{verdict(s['calls_dropped'] == 0)} |",
             f"| errors (kinds below) | {sum(s['errors_by_kind'].values())} | 0 | {verdict(not s['errors_by_kind'])} |",
             f"| /healthz answered | {s['healthz_ok']} (p95 {s['healthz_p95_ms']} ms) | every time | "
             f"{verdict(not any(k.startswith('healthz') for k in s['errors_by_kind']))} |",
             f"| stored calls read back | {s['stored_checked']} of {s['calls_started']} | all | "
             f"{verdict(s['stored_checked'] == s['calls_started'])} |",
             "", f"Server CPU {s['server_cpu_percent']} % (100 % = one core); open files after warm-up → end: "
             f"{s['open_fds_after_warmup_and_end']}; threads: {s['threads_after_warmup_and_end']}.", "",
             "| minutes | calls ended | finals | final latency p50 s | p95 s | max s |", "|---|---|---|---|---|---|"]
    for w in s["windows"]:
        span = f"{w['from_min']}–{w['to_min']}" + (" (warm-up)" if w["warmup"] else "")
        lines.append(f"| {span} | {w['calls_ended']} | {w['finals']} | {w['final_latency_p50']} | "
                     f"{w['final_latency_p95']} | {w['final_latency_max']} |")
    lines += ["", "| misbehaving call | how the server answered (the provoked error code / close / stored status) | calls |",
              "|---|---|---|"]
    lines += [f"| {kind} | {answer} | {n} |" for kind, got in s["misbehaviour_answers"].items() for answer, n in got.items()]
    lines += ["", "| error kind | count |", "|---|---|"]
    lines += [f"| {kind} | {n} |" for kind, n in s["errors_by_kind"].items()] or ["| none | 0 |"]
    ended = s["server_metrics"].get("callwatch_calls_ended", {})
    codes = s["server_metrics"].get("callwatch_ingest_errors", {})
    lines += ["", f"Server's own count (/metrics): calls ended {ended}; error messages sent {codes}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60, help="how long new calls are started")
    parser.add_argument("--calls", type=int, default=2, help="calls at once (one per slot); see above for why 2")
    parser.add_argument("--warmup-minutes", type=float, default=5, help="left out of the memory slope and the latency windows")
    parser.add_argument("--window-minutes", type=float, default=10, help="final latency is reported per window this long")
    parser.add_argument("--seed", type=int, default=13, help="the schedule of calls and misbehaviours")
    parser.add_argument("--out", default="soak", help="results as benchmarks/results/OUT.json and OUT.md")
    args = parser.parse_args()

    print(f"soak: {args.calls} call(s) at once for {args.minutes:g} min …", flush=True)
    with running_server() as (url, pid):
        summary = asyncio.run(soak(url, pid, args))

    from benchmarks.hardware import describe

    hardware = describe()
    table = report(summary, hardware)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"hardware": hardware, **summary}, indent=1, ensure_ascii=False),
                                              encoding="utf-8")


if __name__ == "__main__":
    main()
