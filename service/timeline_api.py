"""REST: judge a call timeline against the rules, as `callwatch audit-timeline` does.

It reads no stored call, but it runs the rules engine on the caller's behalf: integrators, supervisors and QA
users may (docs/security.md). The judging runs off the event loop within `CALLWATCH_JUDGE_BUDGET_S`, and stops
when the client hangs up (service/judging.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from rules.config import RulesConfigError, load_rules_config_text
from rules.engine import RuleBook
from rules.timeline import CallTimeline, TimelineError, parse_timeline
from service.access.guard import TIMELINE_ROLES, require
from service.app_state import RuntimeDep
from service.judging import JudgingOverBudget, judge_off_loop

router = APIRouter()


@router.post("/v1/audit-timeline", dependencies=[Depends(require(TIMELINE_ROLES))],
             responses={401: {"description": "no key"}, 403: {"description": "a key that does not admit you"},
                        422: {"description": "the timeline or the rules are not valid, or too large to judge in time"}})
async def audit_timeline_endpoint(
    request: Request,
    runtime: RuntimeDep,
    timeline: dict[str, Any] = Body(..., description="a call timeline (docs/timeline.md)"),
    rules_yaml: str | None = Body(None, description="rules YAML merged over the defaults; default: the service's rules"),
) -> dict[str, Any]:
    try:
        parsed, book = await asyncio.to_thread(_read, timeline, rules_yaml, runtime.rule_book)
    except (TimelineError, RulesConfigError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    try:
        report = await judge_off_loop(parsed, book, runtime.settings.judge_budget_s, gone=request.is_disconnected)
    except JudgingOverBudget as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return report.model_dump(mode="json", exclude={"prompts"})


def _read(timeline: dict[str, Any], rules_yaml: str | None, book: RuleBook) -> tuple[CallTimeline, RuleBook]:
    # Validating a large timeline and compiling rules are CPU work too: off the event loop with the judging.
    parsed = parse_timeline(timeline, "request body")
    return parsed, RuleBook(load_rules_config_text(rules_yaml, "rules_yaml")) if rules_yaml is not None else book
