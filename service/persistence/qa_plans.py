"""Every statement of sampling plans (docs/qa.md, Sampling plans): a plan and its reviewers, a run over one week
and the calls it picked, and a reviewer's picks for the work queue. Who may do what is decided by the routes
(`service.qa.access`); which calls a run picks by `service.qa.sampling`.

Each operation is one transaction under the store's outage retry (`CallStore.retrying`). A run locks its plan's
row (`FOR UPDATE` on PostgreSQL; SQLite has one writer at a time), so two runs of one plan cannot both pick
the same week's calls; its run id is chosen before the first try, so a retry that finds its run committed
answers it instead of running twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from service.access.keys import Principal
from service.access.teams import TeamBook
from service.persistence.qa_call_facts import CallScope, customer_moods, list_ended_calls, listed_calls, report_findings
from service.qa.errors import NotFound
from service.qa.plan_models import PickOut, PickReason, PlanIn, PlanOut, RunOut
from service.persistence.qa_reviews import qa_reviews
from service.qa.sampling import SAMPLE, Candidate, EarlierPick, Pick, PlanRules, choose
from service.qa.weeks import week_bounds
from service.persistence.qa_work_tables import qa_plan_picks, qa_plan_reviewers, qa_plan_runs, qa_sampling_plans
from service.persistence.call_store import CallStore
from service.persistence.engine import is_duplicate

MAX_PICKS = 2000


@dataclass(frozen=True)
class PlanOwner:
    """Whose plan it is: what access is decided on."""

    plan_id: str
    tenant: str | None
    teams: tuple[str, ...] | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex


def _plan_values(plan: PlanIn) -> dict[str, Any]:
    return {"name": plan.name, "share": plan.share, "score_below": plan.score_below,
            "severities": " ".join(plan.severities), "negative_end": plan.negative_end,
            "teams": json.dumps(plan.teams, ensure_ascii=False) if plan.teams is not None else None}


def _write_reviewers(conn: Connection, plan_id: str, reviewers: Sequence[str]) -> None:
    conn.execute(delete(qa_plan_reviewers).where(qa_plan_reviewers.c.plan_id == plan_id))
    conn.execute(insert(qa_plan_reviewers), [{"plan_id": plan_id, "reviewer": r, "position": i}
                                             for i, r in enumerate(reviewers)])


def create_plan(store: CallStore, tenant: str | None, plan: PlanIn, actor: Principal) -> str:
    """Store a plan of `tenant` (None: of every tenant); its id."""
    plan_id, now = _new_id(), _now()

    def write(attempt: int) -> str:
        with store.db.engine.begin() as conn:
            if attempt > 0 and conn.execute(select(qa_sampling_plans.c.plan_id)
                                            .where(qa_sampling_plans.c.plan_id == plan_id)).first():
                return plan_id
            conn.execute(insert(qa_sampling_plans).values(
                plan_id=plan_id, tenant=tenant, seed=plan.seed or plan_id, created_by=actor.name,
                created_by_role=actor.role, created_at=now, updated_at=now, **_plan_values(plan)))
            _write_reviewers(conn, plan_id, plan.reviewers)
        return plan_id

    return store.db.retrying(write)


def replace_plan(store: CallStore, plan_id: str, plan: PlanIn) -> None:
    """A plan's settings and reviewers from now on; its picks stay as they were made (and with whom). The
    seed changes only where one is given."""
    values = _plan_values(plan) | ({"seed": plan.seed} if plan.seed else {})

    def write(_attempt: int) -> None:  # overwrites with the same values: safe to repeat
        with store.db.engine.begin() as conn:
            done = conn.execute(update(qa_sampling_plans).where(qa_sampling_plans.c.plan_id == plan_id)
                                .values(updated_at=_now(), **values))
            if done.rowcount != 1:
                raise NotFound("no such plan")
            _write_reviewers(conn, plan_id, plan.reviewers)

    store.db.retrying(write)


def _teams_of(row: Any) -> tuple[str, ...] | None:
    return tuple(json.loads(row.teams)) if row.teams is not None else None


def _reviewers(conn: Connection, plan_id: str) -> list[str]:
    r = qa_plan_reviewers.c
    return list(conn.execute(select(r.reviewer).where(r.plan_id == plan_id).order_by(r.position)).scalars())


def _plan_out(conn: Connection, row: Any) -> PlanOut:
    teams = _teams_of(row)
    return PlanOut(plan_id=row.plan_id, tenant=row.tenant, name=row.name, share=row.share, score_below=row.score_below,
                   severities=row.severities.split(), negative_end=bool(row.negative_end),
                   reviewers=_reviewers(conn, row.plan_id), teams=list(teams) if teams is not None else None,
                   seed=row.seed, created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at)


def plan_owner(store: CallStore, plan_id: str) -> PlanOwner | None:
    def read(_attempt: int) -> PlanOwner | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_sampling_plans).where(qa_sampling_plans.c.plan_id == plan_id)).first()
        return PlanOwner(row.plan_id, row.tenant, _teams_of(row)) if row is not None else None

    return store.db.retrying(read)


def get_plan(store: CallStore, plan_id: str) -> PlanOut | None:
    def read(_attempt: int) -> PlanOut | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_sampling_plans).where(qa_sampling_plans.c.plan_id == plan_id)).first()
            return _plan_out(conn, row) if row is not None else None

    return store.db.retrying(read)


def list_plans(store: CallStore, tenant: str | None) -> list[tuple[PlanOwner, PlanOut]]:
    """The plans of `tenant` (None: every plan), oldest first."""
    p = qa_sampling_plans.c

    def read(_attempt: int) -> list[tuple[PlanOwner, PlanOut]]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(select(qa_sampling_plans).where(*([p.tenant == tenant] if tenant is not None else []))
                                .order_by(p.created_at, p.plan_id)).all()
            return [(PlanOwner(r.plan_id, r.tenant, _teams_of(r)), _plan_out(conn, r)) for r in rows]

    return store.db.retrying(read)


# ---------------------------------------------------------------- a run


def _candidates(conn: Connection, plan: Any, monday: date, teams: TeamBook) -> list[Candidate]:
    """The week's listed calls in the plan's scope, with what its conditions look at."""
    plan_teams = _teams_of(plan)
    agents = frozenset(teams.agent_ids_in(plan_teams)) if plan_teams is not None else None
    scope = CallScope(plan.tenant, *week_bounds(monday), agent_ids=agents)
    listed = [c for c in listed_calls(conn, scope)
              if plan_teams is None or teams.team_of(c.tenant, c.agent_id) in plan_teams]
    if not listed:
        return []
    findings, moods = report_findings(conn, scope), customer_moods(conn, scope)
    return [Candidate(c.call_key, c.tenant, c.agent_id, c.automatic_score, findings.get(c.call_key, ()),
                      moods[c.call_key].ended_negative if c.call_key in moods else None) for c in listed]


def _earlier(conn: Connection, plan_id: str, week: str) -> list[EarlierPick]:
    k = qa_plan_picks.c
    rows = conn.execute(select(k.call_id, k.tenant, k.agent_id, k.reasons, k.reviewer)
                        .where(k.plan_id == plan_id, k.week == week)).all()
    return [EarlierPick(r.call_id, (r.tenant, r.agent_id), any(x["code"] == SAMPLE for x in json.loads(r.reasons)),
                        r.reviewer) for r in rows]


def _insert_picks(conn: Connection, plan_id: str, run_id: str, week: str, picks: Sequence[Pick], now: datetime) -> None:
    if picks:
        conn.execute(insert(qa_plan_picks), [
            {"plan_id": plan_id, "run_id": run_id, "call_id": p.call_key, "tenant": p.tenant, "agent_id": p.agent_id,
             "week": week, "reasons": json.dumps([{"code": r.code, "detail": r.detail} for r in p.reasons],
                                                 ensure_ascii=False),
             "rank": p.rank, "reviewer": p.reviewer, "picked_at": now} for p in picks])


def run_plan(store: CallStore, plan_id: str, monday: date, actor: Principal, teams: TeamBook) -> RunOut:
    """Run the plan over the week starting `monday`: pick what `service.qa.sampling` says, assign, store."""
    list_ended_calls(store)
    run_id, now, week = _new_id(), _now(), monday.isoformat()

    def write(attempt: int) -> None:
        with store.db.engine.begin() as conn:
            if attempt > 0 and conn.execute(select(qa_plan_runs.c.run_id).where(qa_plan_runs.c.run_id == run_id)).first():
                return
            plan = conn.execute(select(qa_sampling_plans).where(qa_sampling_plans.c.plan_id == plan_id)
                                .with_for_update()).first()
            if plan is None:
                raise NotFound("no such plan")
            rules = PlanRules(plan.share, plan.score_below, frozenset(plan.severities.split()), bool(plan.negative_end),
                              plan.seed)
            candidates = _candidates(conn, plan, monday, teams)
            picks = choose(candidates, rules, _earlier(conn, plan_id, week), _reviewers(conn, plan_id))
            conn.execute(insert(qa_plan_runs).values(run_id=run_id, plan_id=plan_id, week=week, ran_at=now,
                                                     ran_by=actor.name, ran_by_role=actor.role,
                                                     calls_seen=len(candidates), picked=len(picks)))
            _insert_picks(conn, plan_id, run_id, week, picks, now)

    try:
        store.db.retrying(write)
    except IntegrityError as err:
        # Another run of the plan picked one of these calls between this run's reading and writing (SQLite,
        # where the plan's row is not locked): run again, over what is now picked.
        if not is_duplicate(err):
            raise
        store.db.retrying(write)
    out = run_out(store, run_id)
    assert out is not None, "a run is read back in the request that made it"
    return out


# ---------------------------------------------------------------- reading picks


def _progress() -> Any:
    return case((qa_reviews.c.state == "submitted", "submitted"), (qa_reviews.c.state == "open", "in_progress"),
                else_="not_started")


def _picks_query() -> Any:
    k = qa_plan_picks.c
    return (select(qa_plan_picks, qa_reviews.c.review_id, _progress().label("review_state"),
                   qa_sampling_plans.c.name.label("plan_name"), qa_sampling_plans.c.tenant.label("plan_tenant"))
            .join(qa_sampling_plans, qa_sampling_plans.c.plan_id == k.plan_id)
            .outerjoin(qa_reviews, qa_reviews.c.call_id == k.call_id))


def _pick_out(row: Any) -> PickOut:
    return PickOut(pick_id=row.pick_id, plan_id=row.plan_id, call_id=row.call_id, agent_id=row.agent_id, week=row.week,
                   reasons=[PickReason(**r) for r in json.loads(row.reasons)], reviewer=row.reviewer,
                   picked_at=row.picked_at, review_state=row.review_state, review_id=row.review_id)


def run_out(store: CallStore, run_id: str) -> RunOut | None:
    k = qa_plan_picks.c

    def read(_attempt: int) -> RunOut | None:
        with store.db.engine.connect() as conn:
            run = conn.execute(select(qa_plan_runs).where(qa_plan_runs.c.run_id == run_id)).first()
            if run is None:
                return None
            picks = conn.execute(_picks_query().where(k.run_id == run_id).order_by(k.pick_id)).all()
            week_picks: dict[str, int] = {reviewer: n for reviewer, n in conn.execute(
                select(k.reviewer, func.count(k.pick_id)).where(k.plan_id == run.plan_id, k.week == run.week)
                .group_by(k.reviewer))}
        return RunOut(run_id=run.run_id, plan_id=run.plan_id, week=run.week, ran_at=run.ran_at, ran_by=run.ran_by,
                      calls_seen=run.calls_seen, picked=run.picked, week_picks=dict(sorted(week_picks.items())),
                      picks=[_pick_out(p) for p in picks])

    return store.db.retrying(read)


def list_picks(store: CallStore, plan_id: str, week: str | None = None, reviewer: str | None = None) -> list[PickOut]:
    """A plan's picks, newest week first, at most MAX_PICKS."""
    k = qa_plan_picks.c
    where = [k.plan_id == plan_id]
    if week is not None:
        where.append(k.week == week)
    if reviewer is not None:
        where.append(k.reviewer == reviewer)

    def read(_attempt: int) -> list[PickOut]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(_picks_query().where(*where).order_by(k.week.desc(), k.pick_id).limit(MAX_PICKS)).all()
        return [_pick_out(r) for r in rows]

    return store.db.retrying(read)


@dataclass(frozen=True)
class QueuedPick:
    pick: PickOut
    plan_name: str
    tenant: str | None  # the call's


def picks_for(store: CallStore, reviewer: str, plan_tenant: str | None) -> list[QueuedPick]:
    """The picks assigned to a reviewer, by plans of its tenant (`plan_tenant`, None: deployment-wide plans):
    a reviewer is its key's name within its tenant. Oldest first (a queue), at most MAX_PICKS."""
    k = qa_plan_picks.c
    of_tenant = (qa_sampling_plans.c.tenant.is_(None) if plan_tenant is None
                 else qa_sampling_plans.c.tenant == plan_tenant)

    def read(_attempt: int) -> list[QueuedPick]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(_picks_query().where(k.reviewer == reviewer, of_tenant)
                                .order_by(k.picked_at, k.pick_id).limit(MAX_PICKS)).all()
        return [QueuedPick(_pick_out(r), r.plan_name, r.tenant) for r in rows]

    return store.db.retrying(read)
