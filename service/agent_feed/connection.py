"""The agent feed's socket: `/v1/agent-feed`, one `FeedConnection` per browser, and `/v1/live-calls`.

A connection signs in with a hello, subscribes to the hub (service/agent_feed/hub.py), sends what the hub
queues for it and takes the page's commands (dismiss, watch, unwatch). The hub holds calls by row key; the
connection's `FeedFilter` cuts what a tenant-scoped subscriber or a team supervisor receives to the calls it
may see (its tenant's; its teams' agents'), shows a tenant-scoped one the ids its phone systems sent, and turns
the ids it sends back into keys: a watch of a call it may not see is ignored, as for one that does not exist.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from service.access.guard import FEED_ROLES, FeedFilter, Keys, KeysDep, Refusal, bearer_key
from service.agent_feed.hub import CLOSE, OVERFLOW, AgentFeedHub, Subscription
from service.app_state import RuntimeDep
from service.persistence.call_store import CallStore
from wire.agent_feed import (
    AgentHello,
    Dismiss,
    SupervisorHello,
    Unwatch,
    Watch,
    command_adapter,
    hello_adapter,
)

router = APIRouter()

HELLO_TIMEOUT_S = 10.0
CLOSE_POLICY = 1008  # wrong or missing credentials
CLOSE_TOO_SLOW = 1013  # "try again later": the subscriber fell behind; it reconnects and resumes


# Keys, roles and tenants: service/access (docs/security.md). An agent's or supervisor's hello names who signs
# in and carries their key; a tenant-scoped key gets only its tenant's calls, a team supervisor only its teams'
# agents' (FeedFilter).


class FeedConnection:
    def __init__(self, websocket: WebSocket, hub: AgentFeedHub, keys: Keys, store: CallStore):
        self.ws = websocket
        self.hub = hub
        self.keys = keys
        self.store = store
        self.sub: Subscription | None = None

    async def run(self) -> None:
        hello = await self._hello()
        if hello is None:
            return
        tenant = self.visible.principal.tenant
        if isinstance(hello, AgentHello):
            resume = hello.resume
            if resume is not None:  # the call the page names by the id it was shown
                key = await self.visible.key_of(resume.call_id)
                resume = resume.model_copy(update={"call_id": key}) if key is not None else None
            self.sub = self.hub.subscribe(hello.agent_id, hello.agent_id, resume, tenant)
        else:
            self.sub = self.hub.subscribe(None, hello.supervisor, tenant=tenant)
        sender = asyncio.create_task(self._send_loop(self.sub))
        try:
            await self._receive_loop(hello)
        finally:
            self.hub.unsubscribe(self.sub)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _hello(self) -> AgentHello | SupervisorHello | None:
        try:
            raw = await asyncio.wait_for(self.ws.receive_text(), HELLO_TIMEOUT_S)
            hello = hello_adapter.validate_json(raw)
        except (asyncio.TimeoutError, ValidationError, ValueError, KeyError):
            await self._close(CLOSE_POLICY, "send hello with your id and token first")
            return None
        except (WebSocketDisconnect, RuntimeError):
            return None
        role, name = ("agent", hello.agent_id) if isinstance(hello, AgentHello) else ("supervisor", hello.supervisor)
        principal = self.keys.authorize(self.ws, (role,), hello.token, name=name, local_without_keys=False)
        if isinstance(principal, Refusal):  # logged by authorize, with who and why
            await self._close(CLOSE_POLICY, "wrong or missing token")
            return None
        self.visible = FeedFilter(principal, self.store, self.keys.team_book(principal))
        return hello

    async def _send_loop(self, sub: Subscription) -> None:
        try:
            while True:
                item = await sub.next()
                if item is OVERFLOW:
                    await self._close(CLOSE_TOO_SLOW, "too far behind; reconnect and resume")
                    return
                if item is CLOSE:
                    await self._close(CLOSE_TOO_SLOW, "server asked clients to reconnect")
                    return
                item = await self.visible(item)
                if item is None:
                    continue
                await self.ws.send_text(json.dumps(item, ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    async def _receive_loop(self, hello: AgentHello | SupervisorHello) -> None:
        sub = self.sub
        assert sub is not None
        while True:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return
            try:
                cmd = command_adapter.validate_json(raw)
            except (ValidationError, ValueError):
                continue  # an unknown or malformed command is ignored: the page may be newer than the server
            # The page names calls by the ids it was shown: within the principal's tenant, for one with a tenant.
            key = await self.visible.key_of(cmd.call_id)
            if key is None:
                continue  # no call of theirs: as for one that does not exist
            if isinstance(cmd, Dismiss) and isinstance(hello, AgentHello):
                await self.hub.dismiss(key, cmd.prompt_id, hello.agent_id, self.visible.principal.tenant)
            elif isinstance(cmd, Watch) and sub.is_supervisor:
                self.hub.watch(sub, key, cmd.after)
            elif isinstance(cmd, Unwatch):
                self.hub.unwatch(sub, key)

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        try:
            await self.ws.close(code=code, reason=reason)
        except (RuntimeError, OSError):
            pass


@router.websocket("/v1/agent-feed")
async def agent_feed(websocket: WebSocket, runtime: RuntimeDep, keys: KeysDep) -> None:
    await websocket.accept()
    await FeedConnection(websocket, runtime.feed_hub, keys, runtime.store).run()


@router.get("/v1/live-calls")
async def live_calls(request: Request, runtime: RuntimeDep, keys: KeysDep) -> Response:
    """The calls the hub holds, as supervisor summaries. `Authorization: Bearer TOKEN`: a supervisor token
    lists every call it may see (its tenant's; with teams, its teams' agents'), an agent token that agent's
    own; no token → 401, an unknown one → 403."""
    principal = keys.authorize(request, FEED_ROLES, bearer_key(request), local_without_keys=False)
    if isinstance(principal, Refusal):
        return JSONResponse({"detail": principal.reason}, status_code=principal.status,
                            headers={"WWW-Authenticate": "Bearer"} if principal.status == 401 else None)
    agent = principal.role == "agent"
    calls = runtime.feed_hub.call_summaries(principal.name if agent else None, principal.tenant if agent else None)
    visible = FeedFilter(principal, runtime.store, keys.team_book(principal))
    return JSONResponse({"calls": await visible.calls(calls)})
