"""What the app builds once at start-up, and the typed dependencies that hand it to the handlers.

The app's lifespan (service/app.py) builds one `AppState` before the first request and `install`s it on the
app; nothing of it is built later, inside a request. A handler takes the part it needs as a parameter, as
FastAPI's tutorial shares state through dependencies:

    @router.get("/v1/rules/names")
    async def rule_names(runtime: RuntimeDep) -> NameTable: ...

and a test that serves routes without the lifespan swaps the parts in with
`app.dependency_overrides[get_runtime] = ...` (and `get_key_ring`, for the key check: service.access.guard's
`KeysDep`). Every handler takes its parts so, service/audit/'s too (issue 13's last round), and none reads
`app.state`: the state lives there in one slot, read only through `app_state_of`; the names each part also had
there while handlers were being converted are gone.
Helpers handed the request rather than the parts (service/qa/routing.py's) call these getters with it, so a test
of routes that use them installs a whole state around its stand-in runtime (tests/support/stand_in_state.py,
through service.app.build_state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

# For the type checker only: every module that serves a route imports this one, and several of them are
# imported by these (service.runtime imports the agent feed's package, service.ingest is a handler module), so
# importing them at run time would be a cycle. The aliases below name the classes as strings for the same
# reason; FastAPI takes a dependency from `Depends` and never needs the class itself.
if TYPE_CHECKING:
    from service.access.ring import KeyRing
    from service.audit.jobs.queue import AuditQueue
    from service.connectors.asterisk_call import AsteriskCalls
    from service.health import OpsThreads
    from service.ingest import LiveConnections
    from service.persistence.call_list import CallListSync
    from service.runtime import Runtime

# The one attribute of `app.state` that holds the whole of it.
_SLOT = "callwatch"


@dataclass(frozen=True)
class AppState:
    """Everything the app shares between requests, for one run of the app (start-up to shutdown)."""

    runtime: Runtime  # the settings, models, store, metrics and feed hub (service/runtime.py)
    key_ring: KeyRing  # who may use what: the configured keys and the keys file
    ingest_connections: LiveConnections  # the ingest sockets open, ended first at shutdown
    ops_threads: OpsThreads  # the threads /readyz and /metrics may block
    audit_queue: AuditQueue  # the bulk audits
    call_list_sync: CallListSync  # when the QA call list last picked up the live calls that ended
    asterisk_calls: AsteriskCalls  # Asterisk calls by id, so that a call's second leg finds its first


class NotStarted(RuntimeError):
    """The app's state was asked for before its lifespan built it."""


def install(app: Starlette, state: AppState) -> None:
    setattr(app.state, _SLOT, state)


def app_state_of(app: Starlette) -> AppState:
    """The state `app` was started with; for what runs outside a request (a listener, a shutdown, the demo)."""
    state = getattr(app.state, _SLOT, None)
    if not isinstance(state, AppState):
        raise NotStarted("the app's state is built by its lifespan (service.app.create_app), which has not run")
    return state


def get_runtime(conn: HTTPConnection) -> Runtime:
    return app_state_of(conn.app).runtime


def get_key_ring(conn: HTTPConnection) -> KeyRing:
    return app_state_of(conn.app).key_ring


def get_ingest_connections(conn: HTTPConnection) -> LiveConnections:
    return app_state_of(conn.app).ingest_connections


def get_ops_threads(conn: HTTPConnection) -> OpsThreads:
    return app_state_of(conn.app).ops_threads


def get_asterisk_calls(conn: HTTPConnection) -> AsteriskCalls:
    return app_state_of(conn.app).asterisk_calls


def get_audit_queue(conn: HTTPConnection) -> AuditQueue:
    return app_state_of(conn.app).audit_queue


def get_call_list_sync(conn: HTTPConnection) -> CallListSync:
    return app_state_of(conn.app).call_list_sync


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]
KeyRingDep = Annotated["KeyRing", Depends(get_key_ring)]
IngestConnectionsDep = Annotated["LiveConnections", Depends(get_ingest_connections)]
OpsThreadsDep = Annotated["OpsThreads", Depends(get_ops_threads)]
AsteriskCallsDep = Annotated["AsteriskCalls", Depends(get_asterisk_calls)]
AuditQueueDep = Annotated["AuditQueue", Depends(get_audit_queue)]
CallListSyncDep = Annotated["CallListSync", Depends(get_call_list_sync)]
