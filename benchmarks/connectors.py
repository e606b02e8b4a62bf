"""Final latency per connector: the shared two-party calls streamed in real time into a real `callwatch serve`,
one call at a time, over `/v1/ingest` and over each platform connector, each by its own client
(`clients/ingest_client.py`, `clients/platforms/*.py`, written from the platforms' specifications).

  final latency = arrival of a final on the agent's screen (the agent feed, which every connector's calls
                  reach the same way) − the moment the end of its speech was sent (the call's first frame
                  + the final's `end`). The first frame is taken as the moment the client was started, so
                  the connection's handshake counts against the connector.

Prints p50/p95 per connector beside `/v1/ingest` and writes benchmarks/results/connectors.json and .md.

    python benchmarks/connectors.py [--connectors ingest audiohook twilio freeswitch asterisk-ws asterisk-tcp]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.live import SHARED, pct, running_server  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
AGENT, TOKEN = "bench-agent", "bench-token-0123456789abcdef"


@dataclass(frozen=True)
class Connector:
    name: str
    module: str  # whose `play_call` streams a call
    path: str  # the URL path on the server, or "tcp" for a socket of its own
    options: dict[str, Any]


CONNECTORS = {
    "ingest": Connector("ingest", "clients.ingest_client", "/v1/ingest", {}),
    "audiohook": Connector("audiohook", "clients.platforms.audiohook", "/v1/connectors/audiohook", {}),
    "twilio": Connector("twilio", "clients.platforms.twilio", "/v1/connectors/twilio", {}),
    "freeswitch": Connector("freeswitch", "clients.platforms.freeswitch", "/v1/connectors/freeswitch", {}),
    "asterisk-ws": Connector("asterisk-ws", "clients.platforms.asterisk", "/v1/connectors/asterisk", {}),
    "asterisk-tcp": Connector("asterisk-tcp", "clients.platforms.asterisk", "tcp", {}),
}


def two_party_calls() -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for path in sorted((SHARED / "calls").glob("*.wav")):
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 8000 and audio.shape[1] == 2, path
        out.append((path.stem, np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])))
    return out


async def finals_on_the_feed(base_ws: str, call: Callable[[], Awaitable[None]]) -> list[dict[str, Any]]:
    """Run `call` while signed in to the agent feed as the benchmark's agent; every final of the agent's calls,
    with its arrival time."""
    finals: list[dict[str, Any]] = []
    async with websockets.connect(f"{base_ws}/v1/agent-feed", max_size=2**24) as feed:
        await feed.send(json.dumps({"type": "hello", "agent_id": AGENT, "token": TOKEN}))

        async def read() -> None:
            async for raw in feed:
                message = json.loads(raw)
                if message.get("type") == "final":
                    finals.append({**message, "arrived": time.monotonic()})

        reader = asyncio.create_task(read())
        await call()
        await asyncio.sleep(3.0)  # the last finals of the call are flushed at hangup
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return finals


async def one_connector(connector: Connector, base_ws: str, tcp_port: int, run: str) -> dict[str, Any]:
    play = importlib.import_module(connector.module).play_call
    url = f"tcp://127.0.0.1:{tcp_port}" if connector.path == "tcp" else f"{base_ws}{connector.path}"
    latency: list[float] = []
    for name, agent, customer in two_party_calls():
        started = time.monotonic()
        print(f"  {name} ({len(agent) / 8000:.0f} s)", flush=True)
        # A client that never ends is a failure of that connector, not a reason to stop the benchmark.
        finals = await asyncio.wait_for(finals_on_the_feed(base_ws, lambda: play(
            url, agent, customer, 8000, call_id=f"{run}-{name}", agent_id=AGENT, speed=1.0, **connector.options)),
            timeout=len(agent) / 8000 + 60)
        latency += [f["arrived"] - (started + f["end"]) for f in finals]
    return {"connector": connector.name, "finals": len(latency), "final_latency_p50": pct(latency, 50),
            "final_latency_p95": pct(latency, 95), "final_latency_max": round(max(latency), 3) if latency else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connectors", nargs="+", default=list(CONNECTORS), choices=list(CONNECTORS))
    args = parser.parse_args()

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tcp_port = s.getsockname()[1]
    env = {"CALLWATCH_AGENT_TOKENS": json.dumps({AGENT: TOKEN}), "CALLWATCH_AUDIOSOCKET_PORT": str(tcp_port),
           "CALLWATCH_ASTERISK_AGENT_ID": AGENT}
    rows = []
    with running_server(env) as (ingest_url, _pid):
        base_ws = ingest_url.removesuffix("/v1/ingest")
        for n, name in enumerate(args.connectors):
            print(f"{name}: the shared calls one at a time, in real time …", flush=True)
            rows.append(asyncio.run(one_connector(CONNECTORS[name], base_ws, tcp_port, f"bench{os.getpid()}-{n}")))
            print(json.dumps(rows[-1]), flush=True)

    from benchmarks.hardware import describe

    hardware = describe()
    lines = ["Final latency by connector, one call at a time in real time, embedded Whisper base int8", "", hardware, "",
             "| connector | finals | final latency p50 s | p95 s | max s |", "|---|---|---|---|---|"]
    lines += [f"| {r['connector']} | {r['finals']} | {r['final_latency_p50']} | {r['final_latency_p95']} | "
              f"{r['final_latency_max']} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "connectors.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "connectors.json").write_text(json.dumps({"hardware": hardware, "rows": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
