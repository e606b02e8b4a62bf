"""REST for sampling plans under /v1/qa/plans (docs/qa.md, Sampling plans): a supervisor defines a plan for its
tenant, runs it over a week (as `callwatch qa-sample` does), and sees what it picked and for whom.

Supervisors only (a QA user's key is a 403). A plan is of the supervisor's tenant (a deployment-wide
supervisor's: of every tenant); a team supervisor's plan covers its teams, and it sees only plans over teams
it leads. Another tenant's or team's plan is a 404, as for one that does not exist.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from service.access.guard import Keys, KeysDep
from service.access.keys import Principal
from service.persistence import qa_plans
from service.qa.access import RULER_ROLES, leads_teams, plan_reviewer_refusal, sees_plan
from service.qa.errors import NotFound
from service.qa.plan_models import PickList, PlanIn, PlanList, PlanOut, RunIn, RunOut
from service.qa.reviewers import reviewer_keys
from service.qa.routing import ID_PATTERN, REFUSALS, admitting, hidden, run, shown, store_of, teams_of, unprocessable
from service.qa.weeks import last_whole_week, monday_of

supervisor = Depends(admitting(RULER_ROLES))
PlanId = Path(pattern=ID_PATTERN, description="a plan id")

router = APIRouter(prefix="/v1/qa", tags=["qa"], responses=REFUSALS)


def _checked(keys: Keys, principal: Principal, plan: PlanIn, tenant: str | None) -> PlanIn:
    """The plan as it will be stored: a team supervisor's over its teams (all of them unless it names some);
    every reviewer one who can open every call it may pick. 422 naming what does not fit."""
    teams = plan.teams
    if leads_teams(principal):
        if teams is None:
            teams = list(principal.teams)
        elif not set(teams) <= set(principal.teams):
            raise unprocessable(["body", "teams"], f"you lead only {', '.join(principal.teams)}")
    reviewers = reviewer_keys(keys.ring, keys.settings)
    for i, name in enumerate(plan.reviewers):
        why = plan_reviewer_refusal(reviewers.get((name, tenant)), name, tenant, tuple(teams) if teams is not None else None)
        if why is not None:
            raise unprocessable(["body", "reviewers", i], why)
    return plan.model_copy(update={"teams": teams})


def _plan(request: Request, principal: Principal, plan_id: str) -> qa_plans.PlanOwner:
    """The plan, if this supervisor sees it; else 404."""
    owner = qa_plans.plan_owner(store_of(request), plan_id)
    if owner is None or not sees_plan(principal, owner.tenant, owner.teams):
        raise hidden(request, principal, f"plan {plan_id!r}")
    return owner


def _plan_out(request: Request, plan_id: str) -> PlanOut:
    found = qa_plans.get_plan(store_of(request), plan_id)
    if found is None:
        raise NotFound("no such plan")
    return found


@router.post("/plans", response_model=PlanOut, status_code=201)
async def create_plan(request: Request, body: PlanIn, keys: KeysDep, principal: Principal = supervisor) -> PlanOut:
    """Define a sampling plan for the supervisor's tenant: the share of each agent's calls a week, the calls
    always picked, the reviewers who get them. A team supervisor's plan covers its teams."""

    def work() -> PlanOut:
        plan = _checked(keys, principal, body, principal.tenant)
        return _plan_out(request, qa_plans.create_plan(store_of(request), principal.tenant, plan, principal))

    return await run(work)


@router.get("/plans", response_model=PlanList)
async def list_plans(request: Request, principal: Principal = supervisor) -> PlanList:
    """The plans this supervisor sees, oldest first."""

    def work() -> PlanList:
        rows = qa_plans.list_plans(store_of(request), principal.tenant)
        return PlanList(plans=[p for o, p in rows if sees_plan(principal, o.tenant, o.teams)])

    return await run(work)


@router.get("/plans/{plan_id}", response_model=PlanOut)
async def get_plan(request: Request, plan_id: str = PlanId, principal: Principal = supervisor) -> PlanOut:
    def work() -> PlanOut:
        _plan(request, principal, plan_id)
        return _plan_out(request, plan_id)

    return await run(work)


@router.put("/plans/{plan_id}", response_model=PlanOut)
async def replace_plan(request: Request, body: PlanIn, keys: KeysDep, plan_id: str = PlanId,
                       principal: Principal = supervisor) -> PlanOut:
    """Change a plan from now on: its share, conditions, reviewers, teams. What it picked stays picked, with
    the reviewer it was given; the seed changes only where one is given."""

    def work() -> PlanOut:
        owner = _plan(request, principal, plan_id)
        qa_plans.replace_plan(store_of(request), plan_id, _checked(keys, principal, body, owner.tenant))
        return _plan_out(request, plan_id)

    return await run(work)


@router.post("/plans/{plan_id}/runs", response_model=RunOut, status_code=201)
async def run_plan(request: Request, body: Optional[RunIn] = Body(None), plan_id: str = PlanId,
                   principal: Principal = supervisor) -> RunOut:
    """Run the plan over a week (default: the last whole week): pick the week's calls it has not picked yet
    and assign them to its reviewers. Running it again over the same calls picks nothing new."""
    week = body.week if body is not None and body.week is not None else None

    def work() -> RunOut:
        _plan(request, principal, plan_id)
        monday = monday_of(week) if week is not None else last_whole_week(datetime.now(timezone.utc).date())
        done = qa_plans.run_plan(store_of(request), plan_id, monday, principal, teams_of(request))
        return shown(request, principal, done)

    return await run(work)


@router.get("/plans/{plan_id}/picks", response_model=PickList)
async def list_picks(request: Request, plan_id: str = PlanId,
                     week: Optional[date] = Query(None, description="any day of the week: its Monday is meant"),
                     reviewer: Optional[str] = Query(None, max_length=128),
                     principal: Principal = supervisor) -> PickList:
    """What the plan picked, newest week first: each call, why, for whom, and how far its review is."""

    def work() -> PickList:
        _plan(request, principal, plan_id)
        monday = monday_of(week).isoformat() if week is not None else None
        return shown(request, principal, PickList(picks=qa_plans.list_picks(store_of(request), plan_id, monday,
                                                                                    reviewer)))

    return await run(work)
