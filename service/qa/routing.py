"""What every /v1/qa router shares: who is asking (keys as for the QA REST), running a step in a worker thread
with the workflow's errors as HTTP answers, and shaping what leaves (call ids as the caller names them,
personal numbers masked where the deployment asks for it). Status codes as docs/security.md says: 401 without
a key, 403 with a key of a role the route is not for, 404 for what the key may not see, 409 for a step the
state does not allow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel

from service.access.guard import KeysDep, Refusal, refuse
from service.access.keys import Principal
from service.access.teams import TeamBook
from service.app_state import get_key_ring, get_runtime
from service.audit.web.auth import request_token
from service.persistence.call_store import CallStore
from service.pii import MASKED_FIELDS, mask_fields
from service.qa.errors import Conflict, NotFound

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# What people wrote (reasons, notes, comments) may quote a customer's number, like a finding's detail.
QA_MASKED_FIELDS = MASKED_FIELDS | {"note", "reason", "comment"}
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no key"},
    403: {"description": "a key of a role this is not for"},
    404: {"description": "no such call, review or dispute, or one this key may not see"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the review or dispute is not in a state that allows this (the detail says why)"},
}


def admitting(roles: tuple[str, ...], *, local_without_keys: bool = True) -> Callable[..., Principal]:
    """A dependency admitting `roles` (by bearer key or the QA pages' cookie)."""

    def dependency(request: Request, keys: KeysDep) -> Principal:
        result = keys.authorize(request, roles, request_token(request), local_without_keys=local_without_keys)
        if isinstance(result, Refusal):
            raise result.http()
        request.state.principal = result
        return result

    return dependency


async def run(work: Callable[[], T]) -> T:
    """`work` in a worker thread (it reads and writes the store); the workflow's errors as HTTP answers."""
    try:
        return await asyncio.to_thread(work)
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from None
    except Conflict as err:
        raise HTTPException(status_code=409, detail=str(err)) from None


# The workflow's steps pass the request down to these, as they pass it to `hidden` and `shown`, rather than the
# parts of the app's state each step reads: they take those parts from the request's app, built at start-up.


def store_of(request: Request) -> CallStore:
    return get_runtime(request).store


def teams_of(request: Request) -> TeamBook:
    return get_key_ring(request).teams(get_runtime(request).settings)


def hidden(request: Request, principal: Principal, what: str) -> HTTPException:
    """The 404 for something the principal may not see (logged as a refusal), as for one that does not exist."""
    refuse(request, 404, f"{what} is not theirs", principal.describe())
    return HTTPException(status_code=404, detail=f"no such {what.split()[0]}")


def unprocessable(loc: list[str | int], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own request validation errors."""
    return HTTPException(status_code=422, detail=[{"loc": loc, "type": "value_error", "msg": message}])


def shown(request: Request, principal: Principal, value: M) -> M:
    """`value` (a review, a list, a dispute) as it may leave: the call ids as this principal names them, and
    personal numbers masked where the deployment asks for it."""
    data = value.model_dump()
    if principal.tenant is not None:
        found: list[dict[str, Any]] = []
        _with_call_ids(data, found)
        sent = store_of(request).sent_ids(d["call_id"] for d in found)
        for d in found:
            d["call_id"] = sent[d["call_id"]]
    if get_runtime(request).settings.mask_pii:
        data = mask_fields(data, fields=QA_MASKED_FIELDS)
    return type(value).model_validate(data)


def _with_call_ids(data: Any, into: list[dict[str, Any]]) -> None:
    """Every object inside `data` that names a call."""
    if isinstance(data, dict):
        if "call_id" in data:
            into.append(data)
        for v in data.values():
            _with_call_ids(v, into)
    elif isinstance(data, list):
        for v in data:
            _with_call_ids(v, into)
