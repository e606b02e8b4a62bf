"""The FastAPI application: ingest websocket, agent feed, QA audits, pages, and the operations endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import agent_feed, calls_api, connectors, health, ingest, names_api, timeline_api
from service.access.ring import KeyRing
from service.app_state import AppState, app_state_of, install
from service.audit.jobs.queue import AuditQueue
from service.audit.web import api as audit_api
from service.audit.web import pages as audit_pages
from service.connectors.asterisk_call import AsteriskCalls
from service.json_depth import JsonDepthGuard
from service.page_refusal import PageRefused, page_refused
from service.persistence.call_list import CallListSync
from service.qa import api as qa_api
from service.qa import page_api as qa_page_api
from service.qa import pages as qa_pages
from service.qa import calibration_api as qa_calibration_api
from service.qa import plans_api as qa_plans_api
from service.qa import queue_api as qa_queue_api
from service.qa import trends_api as qa_trends_api
from service.runtime import Runtime
from service.settings import Settings

log = logging.getLogger("callwatch.app")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. The runtime (models, store) is loaded at start-up, or passed in by tests that share one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        state = build_state(runtime or Runtime.load(settings))
        install(app, state)
        state.runtime.metrics.draining.set(0)
        # The audit jobs a stopped server left behind, queued again; in the background, so that a slow database
        # or broker does not hold up the start.
        resuming = asyncio.create_task(state.audit_queue.resume())
        resuming.add_done_callback(_log_failed_resume)
        try:
            yield
        finally:
            # `callwatch serve` has ended the calls before the server closed their sockets; under another
            # server this finds whatever is still open.
            await end_calls_for_shutdown(app)
            resuming.cancel()
            await state.audit_queue.close()
            state.ops_threads.close()
            if owned:
                state.runtime.close()

    app = FastAPI(title="callwatch", version="0.1.0", lifespan=lifespan)
    app.add_middleware(JsonDepthGuard)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(connectors.router)
    app.include_router(agent_feed.router)
    app.include_router(timeline_api.router)
    app.include_router(calls_api.router)
    app.include_router(names_api.router)
    app.include_router(audit_api.router)
    app.include_router(audit_pages.router)
    app.include_router(qa_api.router)
    app.include_router(qa_page_api.router)
    app.include_router(qa_pages.router)
    # The pages a person opens answer a refusal with a page saying why, not with JSON.
    app.add_exception_handler(PageRefused, page_refused)
    app.include_router(qa_plans_api.router)
    app.include_router(qa_queue_api.router)
    app.include_router(qa_calibration_api.router)
    app.include_router(qa_trends_api.router)
    return app


def build_state(runtime: Runtime) -> AppState:
    """Everything the app shares between requests, built once as it starts (service/app_state.py)."""
    key_ring = KeyRing()
    # Read now, so that a keys file that cannot be used (empty, invalid) is in the log from the start.
    key_ring.entries(runtime.settings)
    return AppState(
        runtime=runtime,
        key_ring=key_ring,
        ingest_connections=ingest.LiveConnections(),
        ops_threads=health.OpsThreads(),
        audit_queue=AuditQueue(runtime, runtime.settings.audit_workers or None),
        call_list_sync=CallListSync(runtime.store.db),
        asterisk_calls=AsteriskCalls(),
    )


def _log_failed_resume(task: asyncio.Task[int]) -> None:
    # Nothing awaits the resumption (start-up does not wait for it), so its failure is said here.
    if not task.cancelled() and task.exception() is not None:
        log.error("the audit jobs a stopped server left behind were not queued again", exc_info=task.exception())


async def end_calls_for_shutdown(app: FastAPI) -> None:
    """Stop taking calls and end each one in progress as `interrupted` (its last finals flushed and stored,
    `ended` sent, the socket closed with 1012), within CALLWATCH_SHUTDOWN_GRACE_S."""
    state = app_state_of(app)
    connections, runtime = state.ingest_connections, state.runtime
    runtime.metrics.draining.set(1)
    if not len(connections):
        connections.draining = True
        return
    grace = runtime.settings.shutdown_grace_s
    log.info("shutting down: ending %d ingest socket(s), up to %.0f s", len(connections), grace)
    ended, cut = await connections.drain(grace)
    if cut:
        log.warning("shutting down: %d call(s) were still flushing after %.0f s and were cut; stored as interrupted", cut, grace)
    else:
        log.info("shutting down: %d ingest socket(s) ended", ended)
