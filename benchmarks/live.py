"""Live latency: two-party calls streamed in real time into a real `callwatch serve`, 1, 2, 4 and 8 at once.

  final latency  = arrival of a final − the moment the end of its speech was sent (t0 + the final's `end`);
  partial cadence = gaps between successive partials (and the closing final) of one utterance while it is open.

Prints p50/p95 per concurrency level and writes benchmarks/results/live.json and live.md. The server runs
as its own process on loopback with the embedded defaults; the calls are the two-party test calls of
../shared/audio/calls plus the bundled sample, taken in turn.

    python benchmarks/live.py [--levels 1 2 4 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
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
    latencies, short, gaps = [], [], []
    last_partial: dict[str, float] = {}
    for at, r in arrivals:
        if r["type"] == "partial":
            if r["utterance_id"] in last_partial:
                gaps.append(at - last_partial[r["utterance_id"]])
            last_partial[r["utterance_id"]] = at
        elif r["type"] == "final":
            latencies.append(at - (t0 + r["end"]))
            if r["end"] - r["start"] <= SHORT_UTTERANCE_S:
                short.append(latencies[-1])
            if r["utterance_id"] in last_partial:
                gaps.append(at - last_partial.pop(r["utterance_id"]))
    return {"latency": latencies, "short": short, "gaps": gaps}


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


async def level(url: str, n: int, run: int) -> dict[str, Any]:
    """n calls at once, in rounds until every test call has been played at least once (more samples at n=1)."""
    paths = calls()
    outs = []
    for round_ in range(-(-len(paths) // n)):
        outs += await asyncio.gather(*(
            one_call(url, paths[(round_ * n + i) % len(paths)], f"bench-{run}-{n}-{round_}-{i}") for i in range(n)
        ))
    latency = [x for o in outs for x in o["latency"]]
    gaps = [x for o in outs for x in o["gaps"]]
    short = [x for o in outs for x in o["short"]]
    return {"calls": n, "finals": len(latency), "final_latency_p50": pct(latency, 50), "final_latency_p95": pct(latency, 95),
            "final_latency_max": round(max(latency), 3) if latency else None,
            "short_finals": len(short), "short_latency_p50": pct(short, 50), "short_latency_p95": pct(short, 95),
            "partial_gap_p50": pct(gaps, 50), "partial_gap_p95": pct(gaps, 95), "partials": len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CALLWATCH_DATA_DIR": f"/tmp/callwatch-live-bench-{port}"}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"ws://127.0.0.1:{port}/v1/ingest"
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for run, n in enumerate(args.levels):
            print(f"{n} simultaneous call(s) in real time …", flush=True)
            rows.append(asyncio.run(level(url, n, run)))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    hardware = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    lines = [f"Live latency, calls streamed in real time, {hardware}, embedded Whisper base int8", "",
             "| calls | finals | final latency p50 s | p95 s | max s | finals ≤ 6 s: n | p50 s | p95 s | partial gap p50 s | p95 s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['calls']} | {r['finals']} | {r['final_latency_p50']} | {r['final_latency_p95']} | {r['final_latency_max']} | "
                     f"{r['short_finals']} | {r['short_latency_p50']} | {r['short_latency_p95']} | "
                     f"{r['partial_gap_p50']} | {r['partial_gap_p95']} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "live.json").write_text(json.dumps({"hardware": hardware, "levels": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
