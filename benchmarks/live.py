"""Live latency under load: two-party calls streamed in real time into a real `callwatch serve`, N at once,
N rising until the live target breaks.

  final latency   = arrival of a final − the moment the end of its speech was sent (t0 + the final's `end`);
  partial cadence = gaps between successive partials of one utterance while it is open; the wait from its
                    last partial to its final is reported beside it (it is end-of-speech silence plus the
                    final's decode, which final latency measures);
  prompt latency  = arrival of a prompt − the end of the speech that raised it, for prompts raised by speech:
                    those that come right behind a final (a rule judges each final as it arrives). Prompts
                    raised by the clock (dead air, holds, rings) are due at a threshold, not at a sound, and
                    are counted but not timed;
  CPU, memory     = the server process's CPU time over the level's wall time (100% = one core) and its
                    largest resident set, sampled from /proc.

A level holds when its final latency p95 is at most --target (2.0 s, issue 8's target for several calls).
Prints p50/p95 per level and writes benchmarks/results/live.json and live.md. The server runs as its own
process on loopback with the embedded defaults; the calls are the two-party test calls of
../shared/audio/calls plus the bundled sample, taken in turn.

    python benchmarks/live.py [--levels 1 2 4 6 8] [--target 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
RESULTS = REPO / "benchmarks" / "results"
# Service-call turns are mostly this short; the shared test calls also hold 15 s podcast monologues, whose
# finals take longer to decode, so latency is reported for both.
SHORT_UTTERANCE_S = 6.0


def calls() -> list[Path]:
    return sorted((SHARED / "calls").glob("*.wav")) + [REPO / "samples" / "demo_call.wav"]


async def one_call(url: str, path: Path, call_id: str) -> dict[str, list[float]]:
    from clients.ingest_client import stream_file

    arrivals: list[tuple[float, dict[str, Any]]] = []
    t0_box: list[float] = []

    def on_result(result: dict[str, Any]) -> None:
        arrivals.append((time.monotonic(), result))
        if result["type"] == "started":
            t0_box.append(time.monotonic())

    await stream_file(path, url=url, realtime=True, call_id=call_id, on_result=on_result)
    t0 = t0_box[0]
    latencies, short, gaps, to_final, prompts = [], [], [], [], []
    last_partial: dict[str, float] = {}
    last_final: tuple[float, dict[str, Any]] | None = None
    for at, r in arrivals:
        if r["type"] == "prompt" and last_final is not None:
            final_at, final = last_final
            if r["event_id"] - final["event_id"] <= 3 and at - final_at < 0.25:
                prompts.append(at - (t0 + final["end"]))
        if r["type"] == "partial":
            if r["utterance_id"] in last_partial:
                gaps.append(at - last_partial[r["utterance_id"]])
            last_partial[r["utterance_id"]] = at
        elif r["type"] == "final":
            last_final = (at, r)
            latencies.append(at - (t0 + r["end"]))
            if r["end"] - r["start"] <= SHORT_UTTERANCE_S:
                short.append(latencies[-1])
            if r["utterance_id"] in last_partial:
                to_final.append(at - last_partial.pop(r["utterance_id"]))
    return {"latency": latencies, "short": short, "gaps": gaps, "to_final": to_final, "prompts": prompts}


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def resident_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB, from /proc (0 for one that has just gone)."""
    total_kib, pending = 0, [pid]
    while pending:
        p = pending.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


class ProcessSampler:
    """CPU time of one process and peak resident memory of it and its descendants, from /proc, while a level runs."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_rss_mb = max(self.peak_rss_mb, resident_mib(self.pid))

    def __enter__(self) -> "ProcessSampler":
        self._cpu0, self._wall0 = self._cpu_seconds(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_percent = 100 * (self._cpu_seconds() - self._cpu0) / (time.monotonic() - self._wall0)


async def level(url: str, n: int, run: int, server_pid: int, repeat: int = 1) -> dict[str, Any]:
    """n calls at once, in rounds until every test call has been played at least `repeat` times (more samples
    at n=1)."""
    paths = calls()
    outs = []
    with ProcessSampler(server_pid) as sampler:
        for round_ in range(-(-len(paths) * repeat // n)):
            outs += await asyncio.gather(*(
                one_call(url, paths[(round_ * n + i) % len(paths)], f"bench-{run}-{n}-{round_}-{i}") for i in range(n)
            ))
    latency = [x for o in outs for x in o["latency"]]
    gaps = [x for o in outs for x in o["gaps"]]
    to_final = [x for o in outs for x in o["to_final"]]
    short = [x for o in outs for x in o["short"]]
    prompts = [x for o in outs for x in o["prompts"]]
    return {"calls": n, "finals": len(latency), "final_latency_p50": pct(latency, 50), "final_latency_p95": pct(latency, 95),
            "final_latency_max": round(max(latency), 3) if latency else None,
            "short_finals": len(short), "short_latency_p50": pct(short, 50), "short_latency_p95": pct(short, 95),
            "partial_gap_p50": pct(gaps, 50), "partial_gap_p95": pct(gaps, 95), "partials": len(gaps),
            "last_partial_to_final_p95": pct(to_final, 95),
            "prompts": len(prompts), "prompt_latency_p95": pct(prompts, 95),
            "server_cpu_percent": round(sampler.cpu_percent), "server_peak_rss_mb": round(sampler.peak_rss_mb)}


def bench_data_dir(port: int) -> Path:
    """The data folder (store, server.log) of the benchmark server on `port`."""
    return Path(f"/tmp/callwatch-bench-{port}")


@contextmanager
def running_server(env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A `callwatch serve` process on a free loopback port with its own data folder: (ingest URL, pid)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = bench_data_dir(port)
    data_dir.mkdir(parents=True, exist_ok=True)
    # The server's log goes to a file: an unread pipe fills up and stalls the server mid-benchmark.
    log = (data_dir / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=REPO,
                              env={**os.environ, "CALLWATCH_DATA_DIR": str(data_dir), **(env or {})},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/v1/ingest", server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still ending a flood's calls: the numbers are in already
            server.kill()
            server.wait()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--target", type=float, default=2.0, help="final latency p95 a level must hold, seconds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="play every test call this many times per level: 22 finals a time, so p95 is about the "
                             "second-worst final of one pass; three passes make it steadier")
    parser.add_argument("--keep-going", action="store_true", help="measure every level, also after one missed the target")
    args = parser.parse_args()

    rows = []
    with running_server() as (url, server_pid):
        for run, n in enumerate(args.levels):
            print(f"{n} simultaneous call(s) in real time …", flush=True)
            rows.append(asyncio.run(level(url, n, run, server_pid, args.repeat)))
            rows[-1]["holds"] = rows[-1]["final_latency_p95"] <= args.target
            print(json.dumps(rows[-1]), flush=True)
            if not rows[-1]["holds"] and not args.keep_going:
                break  # latency broke; more calls only break it further

    from benchmarks.hardware import describe

    hardware = describe()
    held = [r["calls"] for r in rows if r["holds"]]
    lines = ["Live latency, calls streamed in real time, embedded Whisper base int8", "", hardware, "",
             "| calls | finals | final latency p50 s | p95 s | max s | finals ≤ 6 s: n | p50 s | p95 s | partial gap p50 s | p95 s "
             "| last partial → final p95 s | prompts | prompt latency p95 s | server CPU % | server RSS MB | holds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['calls']} | {r['finals']} | {r['final_latency_p50']} | {r['final_latency_p95']} | {r['final_latency_max']} | "
                     f"{r['short_finals']} | {r['short_latency_p50']} | {r['short_latency_p95']} | "
                     f"{r['partial_gap_p50']} | {r['partial_gap_p95']} | {r['last_partial_to_final_p95']} | {r['prompts']} | {r['prompt_latency_p95']} | "
                     f"{r['server_cpu_percent']} | {r['server_peak_rss_mb']} | {'yes' if r['holds'] else 'no'} |")
    lines += ["", f"Largest number of simultaneous two-leg calls holding final latency p95 ≤ {args.target} s: "
                  f"{max(held) if held else 0}. (100% CPU = one core; the machine has {os.cpu_count()}.)"]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "live.json").write_text(json.dumps({"hardware": hardware, "target_p95_s": args.target,
                                                   "largest_holding": max(held) if held else 0, "levels": rows},
                                                  indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
