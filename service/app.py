"""The FastAPI application: ingest websocket, health, and (later) the agent feed, REST and pages."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from service import agent_feed, ingest, timeline_api
from service.audit import api as audit_api
from service.audit import pages as audit_pages
from service.runtime import Runtime
from service.settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. The runtime (models, store) is loaded at start-up, or passed in by tests that share one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.load(settings)
        try:
            yield
        finally:
            audit_queue = getattr(app.state, "audit_queue", None)
            if audit_queue is not None:
                await audit_queue.close()
            if owned:
                app.state.runtime.close()

    app = FastAPI(title="callwatch", version="0.1.0", lifespan=lifespan)
    app.include_router(ingest.router)
    app.include_router(agent_feed.router)
    app.include_router(agent_feed.pages_router)
    app.include_router(timeline_api.router)
    app.include_router(audit_api.router)
    app.include_router(audit_pages.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
