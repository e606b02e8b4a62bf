"""The checks every endpoint and socket makes: who is this key's holder, may that role use this, may it see
this call. Every refusal is logged with who tried what from where (never the key).

Status codes: 401 without a key; 403 with a key that does not let one in (unknown, expired, another role);
404 for a call one may not see, exactly as for a call that does not exist, so a key never learns which call
ids exist elsewhere.

A supervisor that leads `teams` (the keys file) sees, within its tenant, only its teams' agents' calls
(`service.access.teams.sees_agent`, the rule the QA review workflow applies too); another team's call is a
404 like another tenant's.

Call ids are per tenant (service/persistence/call_store.py): a tenant-scoped principal names a call by the
id its phone system sent, resolved within its tenant (`call_key`), and is shown that id; a deployment-wide
one names and sees row keys, which are those ids unless two tenants sent the same one. Whose a call is comes
from the store (`CallStore.owner`), under its outage retry like every query.

A surface whose roles have no keys at all (no keys file, none in the settings) answers loopback clients
only: the laptop default works, and a deployment that forgot its keys is not open to the network. Behind a
reverse proxy on the same machine every request looks local: configure keys there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Iterable

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from service.access.keys import LOCAL, Principal
from service.access.ring import KeyRing
from service.access.teams import NO_TEAMS, TeamBook, leads_teams, sees_agent
from service.app_state import KeyRingDep, RuntimeDep
from service.persistence.call_store import CallOwner, CallStore
from service.settings import Settings

log = logging.getLogger("callwatch.access")

INGEST_ROLES = ("integrator",)
QA_ROLES = ("supervisor", "qa")
TIMELINE_ROLES = ("integrator", "supervisor", "qa")
CALL_ROLES = ("integrator", "agent", "supervisor", "qa")
FEED_ROLES = ("agent", "supervisor")
# Every role: each one's pages, reports or own screens name rules (GET /v1/rules/names).
NAMES_ROLES = ("integrator", "agent", "supervisor", "qa")
_LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost", "testclient"}


@dataclass(frozen=True)
class Refusal:
    status: int  # 401 or 403
    reason: str  # safe to show: names no key

    def http(self) -> HTTPException:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return HTTPException(status_code=self.status, detail=self.reason, headers=headers)


def bearer_key(conn: HTTPConnection) -> str:
    scheme, _, key = conn.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _client(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def _what(conn: HTTPConnection) -> str:
    method = conn.scope.get("method") or "WEBSOCKET"
    return f"{method} {conn.url.path}"


def refuse(conn: HTTPConnection, status: int, reason: str, who: str = "") -> Refusal:
    log.warning("access refused: %s from %s%s: %s", _what(conn), _client(conn), f" ({who})" if who else "", reason,
                extra={"path": conn.url.path, "client": _client(conn), "status": status})
    return Refusal(status, reason)


@dataclass(frozen=True)
class Keys:
    """The keys as they stand: those configured in the settings and the keys file the app's key ring reads
    (built at start-up, service/app_state.py); a handler takes them as `KeysDep`."""

    settings: Settings
    ring: KeyRing

    def authorize(self, conn: HTTPConnection, roles: Iterable[str], key: str, *, name: str | None = None,
                  local_without_keys: bool = True) -> Principal | Refusal:
        """The principal `key` belongs to, if it may use a surface open to `roles` (and, with `name`, is that
        principal: the feed's hello names who signs in); else why not."""
        roles = tuple(roles)
        settings, ring = self.settings, self.ring
        if local_without_keys and not ring.uses_keys_file(settings) and not ring.configured_roles(settings) & set(roles):
            if _client(conn) in _LOOPBACK:
                return LOCAL
            return refuse(conn, 403, "no keys are configured for this: it answers this machine only")
        if not key:
            return refuse(conn, 401, "a key is required (Authorization: Bearer KEY)", name or "")
        found = ring.lookup(settings, key)
        if not found:
            return refuse(conn, 403, "unknown key", f"claims to be {name!r}" if name else "")
        now = datetime.now(timezone.utc)
        live = [e for e in found if not e.expired(now)]
        if not live:
            expired = found[0]
            return refuse(conn, 403, "expired key", f"{expired.principal.describe()}, key {expired.key_id}")
        fitting = [e for e in live if e.principal.role in roles and (name is None or e.principal.name == name)]
        if not fitting:
            holder = live[0]
            role = holder.principal.role
            why = f"claims to be {name!r}" if name is not None else f"{'an' if role[0] in 'aeiou' else 'a'} {role} key"
            return refuse(conn, 403, "this key does not admit you here",
                          f"{holder.principal.describe()}, key {holder.key_id}, {why}")
        return fitting[0].principal

    def team_book(self, principal: Principal) -> TeamBook:
        """The teams as the keys file has them now, for a principal that leads teams; no one else is cut by
        team, so no one else needs them."""
        return self.ring.teams(self.settings) if leads_teams(principal) else NO_TEAMS

    def check_call(self, conn: HTTPConnection, store: CallStore, principal: Principal, call_id: str) -> str:
        """The row key of the call `call_id` names for the principal; 404 unless it may see that call (run in
        a worker thread: it reads the store)."""
        if sees_every_call(principal):
            return call_id
        key = call_key(store, principal, call_id)
        if key is None or not may_see(principal, store.owner(key), self.team_book(principal)):
            refuse(conn, 404, f"call {call_id!r} is not theirs", principal.describe())
            raise HTTPException(status_code=404, detail="no such call")
        return key


def get_keys(runtime: RuntimeDep, ring: KeyRingDep) -> Keys:
    return Keys(runtime.settings, ring)


KeysDep = Annotated[Keys, Depends(get_keys)]


def require(roles: Iterable[str]) -> Callable[[Request, Keys], Principal]:
    """A FastAPI dependency admitting `roles` by bearer key; the principal lands on `request.state.principal`."""
    roles = tuple(roles)

    def dependency(request: Request, keys: KeysDep) -> Principal:
        result = keys.authorize(request, roles, bearer_key(request))
        if isinstance(result, Refusal):
            raise result.http()
        request.state.principal = result
        return result

    return dependency


# ---------------------------------------------------------------- calls


def sees_every_call(principal: Principal) -> bool:
    return principal.tenant is None and principal.role in ("local", "supervisor", "qa") and not leads_teams(principal)


def may_see(principal: Principal, owner: CallOwner | None, teams: TeamBook) -> bool:
    """An agent sees its own calls, an integrator its tenant's, a supervisor or QA user its tenant's or (without
    a tenant) all, a supervisor that leads teams only its teams' agents' (`sees_agent`, as in the QA review
    workflow); a tenant-scoped key never sees a call of another tenant or of none."""
    if owner is None:
        return False
    if principal.role in ("local", "supervisor", "qa"):
        return sees_agent(principal, owner.tenant, owner.agent_id, teams)
    if principal.tenant is not None and owner.tenant != principal.tenant:
        return False
    if principal.role == "agent":
        return owner.agent_id == principal.name
    return principal.role == "integrator"


def call_key(store: CallStore, principal: Principal, call_id: str) -> str | None:
    """The row key of the call `call_id` names for `principal`: within its tenant for a tenant-scoped one
    (None: the tenant has no such call), the key itself for a deployment-wide one."""
    return call_id if principal.tenant is None else store.find_call(principal.tenant, call_id)


# ---------------------------------------------------------------- the live feed


class FeedFilter:
    """What of the feed a tenant-scoped principal, or a supervisor that leads teams, may receive: messages of
    the calls it may see only (its tenant's; its teams' agents'), a tenant-scoped one with the call ids its
    phone systems sent, and the `ready` message's list of live calls cut to those; and which call a call id
    it sends names (`key_of`). Other deployment-wide principals get everything unchanged and name calls by
    key (the hub already limits an agent to its own calls)."""

    def __init__(self, principal: Principal, store: CallStore, teams: TeamBook):
        self.principal = principal
        self.store = store
        self.teams = teams
        self._cut = principal.tenant is not None or leads_teams(principal)
        self._shown: dict[str, str | None] = {}  # key → the id to show; None: not to be shown

    async def _shown_as(self, key: str) -> str | None:
        if key not in self._shown:
            owner = await asyncio.to_thread(self.store.owner, key)
            if owner is None or not may_see(self.principal, owner, self.teams):
                self._shown[key] = None
            else:  # a deployment-wide principal names calls by their keys
                self._shown[key] = owner.call_id if self.principal.tenant is not None else key
        return self._shown[key]

    async def key_of(self, call_id: str) -> str | None:
        """The key of the call this principal calls `call_id`; None: none it may see."""
        if not self._cut:
            return call_id
        key = await asyncio.to_thread(call_key, self.store, self.principal, call_id)
        return key if key is not None and await self._shown_as(key) is not None else None

    async def __call__(self, item: Any) -> Any:
        """The item to send, trimmed, or None to send nothing."""
        if not self._cut or not isinstance(item, dict):
            return item
        if item.get("type") == "ready":
            shown = [await self._shown_as(c) for c in item.get("live_calls", [])]
            return {**item, "live_calls": [c for c in shown if c is not None]}
        key = item.get("call_id")
        if key is None:
            return item
        shown_id = await self._shown_as(str(key))
        return None if shown_id is None else {**item, "call_id": shown_id}

    async def calls(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in [await self(s) for s in summaries] if s is not None]

