"""The real app on its own store and keys file but the shared session's models, for the access tests
(tests/test_security_endpoints.py, tests/test_openapi_schemathesis.py), served by support.live_server."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any


def private_runtime(runtime: Any, tmp: Path, keys_file: Path, **settings: Any) -> Any:
    """The shared models with settings of one's own (the keys file; no plaintext keys), a SQLite store in
    `tmp`, and fresh per-process parts (feed hub, live calls, metrics). Close with `close_private`."""
    from service.persistence.call_store import CallStore

    own = runtime.settings.model_copy(update={"keys_file": keys_file, "data_dir": tmp, "database_url": "",
                                              "ingest_keys": {}, "agent_tokens": {}, "supervisor_tokens": {},
                                              **settings})
    fresh = {f.name: f.default_factory() for f in fields(runtime) if f.default_factory is not MISSING}  # type: ignore[misc]
    return replace(runtime, settings=own, store=CallStore(own.resolved_database_url), **fresh)


def close_private(rt: Any) -> None:
    """What is this runtime's own; the models stay with the session's runtime."""
    rt.feed_hub.close()
    rt.store.close()


def start_and_hang_up(ws: Any, call_id: str, agent_id: str) -> None:
    """On an open ingest socket: a call with no audio, started and hung up; reads until the server closes."""
    import json

    from websockets.exceptions import ConnectionClosed

    ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id,
                        "audio": {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}}))
    assert json.loads(ws.recv(timeout=10))["type"] == "started"
    ws.send(json.dumps({"type": "event", "event": "hangup", "by": "customer"}))
    try:
        while True:
            ws.recv(timeout=15)
    except ConnectionClosed:
        pass
