"""What a load balancer, an orchestrator and Prometheus ask: /healthz, /readyz, /metrics.

/healthz answers as long as the event loop does (no I/O): a failing one means restart the process.
/readyz says whether new calls should be sent here: the models are loaded, the database answers, and the
process is not shutting down. The database is asked (for readiness, and for the audit job counts in
/metrics) on threads of their own, so a hanging database can neither stall the event loop nor take the
threads that store the calls' results.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.app_state import IngestConnectionsDep, OpsThreadsDep, RuntimeDep
from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])

# A load balancer's health check usually gives up after a few seconds; answer well within that.
DATABASE_PING_TIMEOUT_S = 2.0
METRICS_TIMEOUT_S = 10.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="each check: 'ok', or what is wrong")
    live_calls: int
    max_live_calls: int
    asr_finals_waiting: int
    max_asr_queue_depth: int


T = TypeVar("T")


class Busy(Exception):
    """The previous call on this thread has not come back yet."""


class OwnThread:
    """One blocking call at a time on a thread of its own; a call that has not come back is an answer too."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future[object] | None = None

    async def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        if self._pending is not None and not self._pending.done():
            raise Busy()
        future = self._executor.submit(fn)
        self._pending = future  # type: ignore[assignment]  # Future[T] is a Future[object]: it is only polled
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class OpsThreads:
    """The threads the operations endpoints may block: one for the readiness ping, one for /metrics."""

    def __init__(self) -> None:
        self.database_ping = OwnThread("db-ping")
        self.metrics = OwnThread("metrics")

    async def check_database(self, ping: Callable[[], None], timeout_s: float = DATABASE_PING_TIMEOUT_S) -> str:
        try:
            await self.database_ping.run(ping, timeout_s)
        except Busy:
            return "not answering (the previous check is still waiting)"
        except TimeoutError:
            return f"not answering within {timeout_s:g} s"
        except Exception as exc:  # any driver error means the same thing here: not reachable
            first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
            return f"unreachable: {type(exc).__name__}: {first_line}"
        return "ok"

    def close(self) -> None:
        self.database_ping.close()
        self.metrics.close()


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(runtime: RuntimeDep, ops_threads: OpsThreadsDep, connections: IngestConnectionsDep) -> JSONResponse:
    checks = {
        # The port opens only once the runtime has loaded (the app's start-up), so it always has by now.
        "models": "ok",
        "database": await ops_threads.check_database(runtime.ping_store),
        "accepting_calls": "shutting down" if connections.draining else "ok",
    }
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(
        status="ready" if ready else "not_ready",
        checks=checks,
        live_calls=len(runtime.sessions),
        max_live_calls=runtime.settings.max_live_calls,
        asr_finals_waiting=runtime.scheduler.finals_waiting,
        max_asr_queue_depth=runtime.settings.max_asr_queue_depth,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}, 401: {}})
async def metrics(request: Request, runtime: RuntimeDep, ops_threads: OpsThreadsDep) -> Response:
    token = runtime.settings.metrics_token
    if token:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), token.encode()):
            return Response("metrics need Authorization: Bearer TOKEN (CALLWATCH_METRICS_TOKEN)\n", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    try:
        body = await ops_threads.metrics.run(runtime.metrics.render, METRICS_TIMEOUT_S)
    except (TimeoutError, Busy):
        return Response("the previous scrape is still being collected (is the database answering?)\n",
                        status_code=503, media_type="text/plain")
    return Response(body, media_type=CONTENT_TYPE)
