"""One flooding call beside N real-time calls: does the flood take more than its share of the recogniser?

The flooding client pushes a 30-minute call (one of the shared test calls, looped) into the ingest socket as
fast as the socket takes it, while N two-party calls stream in real time (benchmarks/live.py's calls and
latency measure). Three runs, each on a fresh `callwatch serve`:

  alone     the N real-time calls by themselves;
  flood     the same N calls beside the flood, with the service's defaults (the flood's frames are taken at
            real time once it is CALLWATCH_LIVE_MAX_LEAD_S ahead, it is closed with 4429 twice that far ahead,
            and the recogniser serves calls in turn);
  unpaced   the same, with the lead set to an hour: the recogniser's turn-taking alone.

Reported: the real-time calls' final latency p50/p95/max (issue 16's target: p95 under 2 s with a flood beside
four calls), and how much of its audio the flood got in and how fast. Writes benchmarks/results/flood.json
and flood.md.

    python benchmarks/flood.py [--calls 4] [--target 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.live import ProcessSampler, calls, one_call, pct, running_server  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
FLOOD_SECONDS = 30 * 60


async def flood(url: str, stop: asyncio.Event) -> dict[str, Any]:
    """Send a 30-minute call as fast as the socket takes it until `stop` (or until the server closes it),
    then hang up."""
    from clients.ingest_client import CallStream, _wire_frames
    from pipelines.audio import load_audio_file

    audio, rate = load_audio_file(str(calls()[0]))
    audio = np.tile(audio, (int(np.ceil(FLOOD_SECONDS * rate / len(audio))), 1))[: FLOOD_SECONDS * rate]
    frames, wire_rate = _wire_frames(audio, rate, "pcm_s16le")
    frame_s = FLOOD_SECONDS / len(frames)
    sent, heard = 0, None
    finals: list[dict[str, Any]] = []
    async with CallStream(url) as call:
        await call.start(call_id=f"flood-{int(time.time())}", agent_id="flooder",
                         audio={"encoding": "pcm_s16le", "sample_rate": wire_rate, "layout": "stereo"})
        began = time.monotonic()
        try:
            for frame in frames:
                if stop.is_set():
                    break
                await call.send_audio(frame)
                sent += 1
            await call.event("hangup", by="customer")
        except ConnectionClosed:
            pass  # throttled: the close code says why
        wall = time.monotonic() - began
        async for result in call.results():
            if result["type"] == "final":
                finals.append(result)
            elif result["type"] == "ended":
                heard = result["duration"]
    return {"audio_sent_s": round(sent * frame_s, 1), "audio_heard_s": heard, "wall_s": round(wall, 1),
            "speed_x": round(heard / wall, 2) if wall and heard is not None else None, "finals": len(finals),
            "close_code": call.close_code}


async def scenario(url: str, n: int, with_flood: bool, name: str, server_pid: int) -> dict[str, Any]:
    paths = calls()
    stop = asyncio.Event()
    with ProcessSampler(server_pid) as sampler:
        flooding = asyncio.create_task(flood(url, stop)) if with_flood else None
        if flooding is not None:
            await asyncio.sleep(1.0)  # the flood is running before the real-time calls begin
        outs = await asyncio.gather(*(one_call(url, paths[i % len(paths)], f"{name}-{i}") for i in range(n)))
        stop.set()
        flood_out = await flooding if flooding is not None else None
    latency = [x for o in outs for x in o["latency"]]
    return {"run": name, "calls": n, "finals": len(latency), "final_latency_p50": pct(latency, 50),
            "final_latency_p95": pct(latency, 95), "final_latency_max": round(max(latency), 3) if latency else None,
            "flood": flood_out, "server_cpu_percent": round(sampler.cpu_percent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4, help="real-time calls beside the flood")
    parser.add_argument("--target", type=float, default=2.0, help="final latency p95 the real-time calls must hold")
    args = parser.parse_args()

    rows = []
    for name, with_flood, env in (("alone", False, {}), ("flood", True, {}),
                                  ("unpaced", True, {"CALLWATCH_LIVE_MAX_LEAD_S": "3600"})):
        with running_server(env) as (url, server_pid):
            print(f"{name}: {args.calls} real-time call(s){' beside a flood' if with_flood else ''} …", flush=True)
            rows.append(asyncio.run(scenario(url, args.calls, with_flood, name, server_pid)))
            rows[-1]["holds"] = rows[-1]["final_latency_p95"] <= args.target
            print(json.dumps(rows[-1]), flush=True)

    from benchmarks.hardware import describe

    hardware = describe()
    lines = [f"One flooding call beside {args.calls} real-time calls, embedded Whisper base int8", "", hardware, "",
             "| run | real-time finals | final latency p50 s | p95 s | max s | flood audio heard, s | flood wall s | "
             "flood speed × | flood closed with | server CPU % | p95 ≤ target |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = r["flood"] or {}
        lines.append(f"| {r['run']} | {r['finals']} | {r['final_latency_p50']} | {r['final_latency_p95']} | "
                     f"{r['final_latency_max']} | {f.get('audio_heard_s', '–')} | {f.get('wall_s', '–')} | "
                     f"{f.get('speed_x', '–')} | {f.get('close_code', '–')} | {r['server_cpu_percent']} | {'yes' if r['holds'] else 'no'} |")
    lines += ["", f"Target: the real-time calls' final latency p95 ≤ {args.target} s beside the flood. "
                  f"(100% CPU = one core; the machine has {os.cpu_count()}.)"]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flood.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "flood.json").write_text(json.dumps({"hardware": hardware, "target_p95_s": args.target, "runs": rows},
                                                   indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
