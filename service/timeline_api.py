"""REST: judge a call timeline against the rules, as `callwatch audit-timeline` does.

It reads no stored call, but it runs the rules engine on the caller's behalf: integrators, supervisors and QA
users may (docs/security.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from rules.config import RulesConfigError, load_rules_config_text
from rules.engine import RuleBook, audit_timeline
from rules.timeline import TimelineError, parse_timeline
from service.access.guard import TIMELINE_ROLES, require

router = APIRouter()


@router.post("/v1/audit-timeline", dependencies=[Depends(require(TIMELINE_ROLES))],
             responses={401: {"description": "no key"}, 403: {"description": "a key that does not admit you"},
                        422: {"description": "the timeline or the rules are not valid"}})
def audit_timeline_endpoint(
    request: Request,
    timeline: dict[str, Any] = Body(..., description="a call timeline (docs/timeline.md)"),
    rules_yaml: str | None = Body(None, description="rules YAML merged over the defaults; default: the service's rules"),
) -> dict[str, Any]:
    try:
        parsed = parse_timeline(timeline, "request body")
        book: RuleBook = request.app.state.runtime.rule_book
        if rules_yaml is not None:
            book = RuleBook(load_rules_config_text(rules_yaml, "rules_yaml"))
    except (TimelineError, RulesConfigError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return audit_timeline(parsed, book).model_dump(mode="json", exclude={"prompts"})
