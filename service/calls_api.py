"""REST for the parties to a call: GET /v1/calls/{call_id}, the call's transcript and judgement.

An integrator reads the calls its phone system streamed (its tenant's), an agent its own, a supervisor or
QA user its tenant's or all, a supervisor that leads teams only its teams' agents' (`check_call`; another
team's call is a 404, as another tenant's; docs/security.md). A tenant-scoped key names a call by the id its phone system
sent, looked up within its tenant; another tenant's call of the same id is never found. Personal numbers are masked when CALLWATCH_MASK_PII is on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from service.access.guard import CALL_ROLES, Keys, KeysDep, require
from service.access.keys import Principal
from service.app_state import RuntimeDep
from service.pii import masked
from service.runtime import Runtime

router = APIRouter(tags=["calls"])


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UtteranceOut(_Wire):
    utterance_id: str
    speaker: str = Field(description="agent, customer, or unknown (mono)")
    start: float = Field(description="seconds from the start of the call")
    end: float
    text: str


class EventOut(_Wire):
    event: str
    t: float
    by: str | None
    target: str | None


class CallOut(_Wire):
    call_id: str
    agent_id: str
    direction: str
    caller_number: str | None
    started_at: str | None = Field(description="as the phone system gave it, ISO 8601")
    status: str = Field(description="live, completed, dropped or interrupted")
    duration_s: float | None
    score: float | None = Field(description="the rules' score, once the call has ended")
    events: list[EventOut]
    utterances: list[UtteranceOut]
    findings: list[dict[str, Any]] = Field(description="the rules' findings (docs/report.md)")


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no key"},
    403: {"description": "a key that does not admit you"},
    404: {"description": "no such call, or not one this key may see"},
}


def _call(request: Request, runtime: Runtime, keys: Keys, principal: Principal, call_id: str) -> CallOut:
    # call ids are per tenant: the caller's tenant's call
    key = keys.check_call(request, runtime.store, principal, call_id)
    record = runtime.store.get_call(key)
    if record is None:
        raise HTTPException(status_code=404, detail="no such call")
    report = record.report or {}
    body = {
        "call_id": call_id, "agent_id": record.agent_id, "direction": record.direction,
        "caller_number": record.caller_number, "started_at": record.started_at, "status": record.status,
        "duration_s": record.duration, "score": record.score, "events": runtime.store.list_events(key),
        "utterances": [{k: u[k] for k in ("utterance_id", "speaker", "start", "end", "text")}
                       for u in runtime.store.list_utterances(key)],
        "findings": report.get("findings", []),
    }
    return CallOut.model_validate(masked(body, runtime.settings.mask_pii))


@router.get("/v1/calls/{call_id}", response_model=CallOut, responses=_REFUSALS)
async def get_call(request: Request, call_id: str, runtime: RuntimeDep, keys: KeysDep,
                   principal: Principal = Depends(require(CALL_ROLES))) -> CallOut:
    """One call as stored so far (a live call too): its events, final transcript, and findings."""
    return await asyncio.to_thread(_call, request, runtime, keys, principal, call_id)
