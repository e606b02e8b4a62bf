"""The demo's server: the real app in a thread of the demo's own process, so the demo can ask its feed hub
whether the agent screen has signed in."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from service.agent_feed.hub import AgentFeedHub
from service.app import create_app
from service.app_state import app_state_of
from service.serving import CallwatchServer, server_config
from service.settings import Settings

SAMPLE_CALL = Path(__file__).resolve().parents[2] / "samples" / "demo_call.wav"
DEMO_AGENT = "agent-demo"
# A server listening on every address is still reached, from this machine, at loopback.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


class DemoServer:
    """`callwatch serve`'s server (the same config and shutdown, which ends a call in progress as interrupted)
    in a daemon thread; the runtime, models included, loads as it starts."""

    def __init__(self, settings: Settings, host: str, port: int, **uvicorn_options: Any):
        self.settings = settings
        self.app = create_app(settings)
        config = server_config(self.app, host, port, settings, **{"log_level": "warning", **uvicorn_options})
        self._server = CallwatchServer(config, self.app)
        # Set when the server thread has finished. Not Thread.is_alive(): a join() that Ctrl-C interrupts can
        # leave that reading False (CPython 3.11) while the server, its models and threads still run, and the
        # interpreter then tears them down under its feet at exit (an abort).
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-demo-server", daemon=True)
        reachable = _ANY_ADDRESS.get(host, f"[{host}]" if ":" in host else host)
        self.base_url = f"http://{reachable}:{port}"
        self.ingest_url = f"ws://{reachable}:{port}/v1/ingest"

    def _run(self) -> None:
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def start(self) -> bool:
        """Start and wait until it answers; False if it stopped instead (the port taken, a model missing)."""
        self._thread.start()
        while not self._server.started:
            if self._stopped.wait(0.1):
                return False
        return True

    @property
    def hub(self) -> AgentFeedHub:
        return app_state_of(self.app).runtime.feed_hub

    def qa_pages_need_a_key(self) -> bool:
        """Whether the QA pages (the report) ask for a key: with a keys file, or supervisor or QA keys
        configured; with neither they answer this machine without one (docs/security.md)."""
        ring = app_state_of(self.app).key_ring
        return bool(ring.uses_keys_file(self.settings) or ring.configured_roles(self.settings) & {"supervisor", "qa"})

    def serve_until_stopped(self) -> None:
        """Block while the server runs (Ctrl-C raises KeyboardInterrupt here)."""
        while not self._stopped.wait(0.5):
            pass

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop and wait for the server's shutdown: calls ended, the runtime closed (its recogniser threads
        finish the decode in hand first)."""
        self._server.should_exit = True
        self._stopped.wait(timeout_s)
