"""`callwatch serve`: uvicorn with the service's logging and a shutdown that ends calls properly.

Left to itself, uvicorn answers SIGTERM by closing every websocket with 1012 at once and only then runs
the application's shutdown: the calls in progress would lose their open utterance and never hear `ended`.
Here the listening socket is closed first (no new connections), then every call is ended by the app
(`service.app.end_calls_for_shutdown`), and only then does uvicorn's own shutdown close what is left (agent
screens) and run the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from service.app import create_app, end_calls_for_shutdown
from service.log_format import configure_logging
from service.settings import Settings

WS_MAX_SIZE = 16 * 1024 * 1024
log = logging.getLogger("callwatch.serve")


def device_problems(settings: Settings) -> list[str]:
    """Why the configured devices cannot be used here (empty when they can): said in one line at start,
    instead of a driver's traceback from the middle of loading a model."""
    problems = []
    if settings.asr_device.startswith("cuda"):
        import ctranslate2

        if ctranslate2.get_cuda_device_count() == 0:
            problems.append(f"CALLWATCH_ASR_DEVICE={settings.asr_device}: CTranslate2 finds no CUDA device "
                            "(no GPU, no driver, or the container was started without --gpus)")
    if settings.emotion_device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            problems.append(f"CALLWATCH_EMOTION_DEVICE={settings.emotion_device}: PyTorch has no CUDA "
                            f"(build {torch.__version__}; the CPU build cannot use a GPU)")
    return problems


def request_head_deadline(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing a connection that has not sent a whole request head (request line
    and headers) within `timeout_s` of connecting or of its last response.

    uvicorn itself times a connection only between requests (its keep-alive timeout starts when a response
    is complete, and the first byte of the next request stops it): a client that connects and sends nothing,
    or half a request line, held its connection (and a file descriptor) for as long as it liked."""

    # uvicorn picks its HTTP protocol class at import time, so mypy sees a variable, not a class, as the base.
    class RequestHeadDeadline(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(timeout_s, self._head_overdue)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_overdue(self) -> None:
            self._head_timer = None
            # A request being answered, or a connection upgraded to a websocket, has sent its head.
            upgraded = self.transport.get_protocol() is not self
            answering = self.cycle is not None and not self.cycle.response_complete
            if not (upgraded or answering or self.transport.is_closing()):
                self.transport.close()

    return RequestHeadDeadline


def server_config(app: FastAPI, host: str, port: int, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How `callwatch serve` runs uvicorn (the tests that need the same server use it too)."""
    options: dict[str, Any] = dict(
        log_config=None, log_level=settings.log_level, ws_max_size=WS_MAX_SIZE,
        # After the calls are ended, what is left (agent screens, page requests) gets a few seconds.
        timeout_graceful_shutdown=5,
        http=request_head_deadline(settings.request_head_timeout_s),
    )
    return uvicorn.Config(app, host=host, port=port, **{**options, **overrides})


class CallwatchServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.callwatch_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await end_calls_for_shutdown(self.callwatch_app)
        await super().shutdown(sockets=sockets)


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    problems = device_problems(settings)
    if problems:
        for problem in problems:
            log.error("cannot start: %s", problem)
        raise SystemExit(2)
    app = create_app(settings)
    CallwatchServer(server_config(app, host, port, settings), app).run()
