"""A real uvicorn server on loopback in a thread, and free ports for the servers tests start."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a thread on loopback, on `port` or a free one; given `settings`, configured as `callwatch
    serve` runs it (service/serving.py: its request-head deadline, websocket frame limit)."""

    def __init__(self, app: Any, port: int | None = None, settings: Any = None, lifespan: str = "auto"):
        """`lifespan="off"` for an app whose state the test has installed itself (support.stand_in_state: no
        models)."""
        import uvicorn

        from service.serving import WS_MAX_SIZE, server_config

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.ingest_url = f"{self.ws_url}/v1/ingest"
        config = (uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws_max_size=WS_MAX_SIZE,
                                 lifespan=lifespan)
                  if settings is None else server_config(app, "127.0.0.1", self.port, settings, log_level="warning"))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
