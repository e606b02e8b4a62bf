"""Trends under /v1/qa/trends and /v1/qa/trends.csv (docs/qa.md, Trends): per agent and week and per team and
week, filterable by date range, team and agent; the CSV through the project's one spreadsheet writer, so no
cell is ever a formula.

Who sees what:
- a QA user, or a supervisor without teams: every agent and team of its tenant (without a tenant: all);
- a supervisor with teams: its teams' agents and its teams, nothing else (another team named is a 404);
- an agent: its own rows only (its agent id in its tenant); no team rows, since a team's figures are its
  colleagues'; another agent or a team named is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

from fastapi import APIRouter, Depends, Query, Request

from rules.catalog import RULE_IDS
from service.access.keys import Principal
from service.access.teams import TeamBook
from service.app_state import RuntimeDep
from service.audit.outputs.exports import spreadsheet_csv
from service.audit.web.api import CSVResponse
from service.qa.access import AGENT_ROLES, REVIEWER_ROLES, leads_teams, owns
from service.qa.routing import REFUSALS, admitting, hidden, run, teams_of, unprocessable
from service.qa.trend_models import TrendRow, Trends
from service.qa.trends import TrendRows, trend_rows
from service.persistence.call_store import CallStore
from service.persistence.qa_trends import agent_weeks
from service.qa.weeks import monday_of

TREND_ROLES = (*REVIEWER_ROLES, *AGENT_ROLES)
DEFAULT_WEEKS = 12
MAX_DAYS = 366
# Agent rows a page: a tenant's twelve weeks are thousands of agent rows, a year tens of thousands (megabytes
# of JSON); the team rows come whole. The CSV has every row.
DEFAULT_LIMIT, MAX_LIMIT = 500, 5000
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)
CSV_COLUMNS = ["level", "week", "tenant", "team", "agent_id", "calls", "average_score", "score_source",
               "reviewed_calls", "automatic_calls", "top_breaches", "turned_negative", "recovered", "prompts_shown",
               "prompts_heeded", "prompts_dismissed"]

viewer = Depends(admitting(TREND_ROLES))
router = APIRouter(prefix="/v1/qa", tags=["qa"], responses=REFUSALS)


def _range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The days asked for (both included): by default the twelve weeks up to today (UTC)."""
    end = date_to or datetime.now(timezone.utc).date()
    start = date_from or monday_of(end) - timedelta(weeks=DEFAULT_WEEKS - 1)
    for name, day in (("date_from", start), ("date_to", end)):
        if not EARLIEST <= day <= LATEST:
            raise unprocessable(["query", name], f"a day from {EARLIEST} to {LATEST}")
    if start > end:
        raise unprocessable(["query", "date_from"], "date_from is after date_to")
    if (end - start).days >= MAX_DAYS:
        raise unprocessable(["query", "date_from"], f"at most {MAX_DAYS} days at a time")
    return start, end


@dataclass(frozen=True)
class _Seen:
    """Which calls' figures a principal sees: of `agent_ids` (None: any), of agents in `teams` (None: any team or
    none), and for an agent (`own`) its own calls only."""

    agent_ids: frozenset[str] | None
    teams: frozenset[str] | None
    own: Principal | None = None

    def keeps(self, tenant: str | None, agent_id: str, team: str | None) -> bool:
        if self.own is not None:
            return owns(self.own, tenant, agent_id)
        return self.teams is None or team in self.teams


def _seen(request: Request, principal: Principal, teams: TeamBook, team: str | None, agent_id: str | None) -> _Seen:
    """What the principal sees of what it asks for; 404 for a team or agent it may not see."""
    if principal.role in AGENT_ROLES:
        if team is not None or (agent_id is not None and agent_id != principal.name):
            raise hidden(request, principal, "agent or team" if team is None else f"team {team!r}")
        return _Seen(frozenset({principal.name}), None, own=principal)
    asked = frozenset({agent_id}) if agent_id is not None else None
    allowed = frozenset(principal.teams) if leads_teams(principal) else None
    if team is not None:
        if allowed is not None and team not in allowed:
            raise hidden(request, principal, f"team {team!r}")
        allowed = frozenset({team})
    if allowed is None:
        return _Seen(asked, None)
    in_teams = frozenset(teams.agent_ids_in(allowed))
    if agent_id is not None and agent_id not in in_teams and leads_teams(principal):
        raise hidden(request, principal, f"agent {agent_id!r}")
    return _Seen(in_teams if asked is None else asked & in_teams, allowed)


def _rows(request: Request, store: CallStore, principal: Principal, start: date, end: date, team: str | None,
          agent_id: str | None, offset: int, limit: int | None) -> TrendRows:
    teams: TeamBook = teams_of(request)
    seen = _seen(request, principal, teams, team, agent_id)
    weeks = agent_weeks(store, tenant=principal.tenant, date_from=start, date_to=end, agent_ids=seen.agent_ids)
    return trend_rows(weeks, team_of=teams.team_of, keep=seen.keeps, offset=offset, limit=limit,
                      with_teams=seen.own is None)


def _trends(request: Request, store: CallStore, principal: Principal, date_from: date | None, date_to: date | None,
            team: str | None, agent_id: str | None, offset: int, limit: int) -> Trends:
    start, end = _range(date_from, date_to)
    rows = _rows(request, store, principal, start, end, team, agent_id, offset, limit)
    weeks, monday = [], monday_of(start)
    while monday <= end:
        weeks.append(monday.isoformat())
        monday += timedelta(weeks=1)
    return Trends(date_from=start, date_to=end, team=team, agent_id=agent_id, weeks=weeks, agents=rows.agents,
                  total_agents=rows.total_agents, offset=offset, limit=limit, teams=rows.teams)


_DateFrom = Query(None, description="the first day (the calls' own start), default: twelve weeks back")
_DateTo = Query(None, description="the last day, included; default: today (UTC)")
_Team = Query(None, max_length=128, description="one team's agents and its team row")
_Agent = Query(None, max_length=128, description="one agent's rows (and the team rows of its calls)")
_Offset = Query(0, ge=0, description="the first agent row to answer (0: the first), in the rows' order")
_Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="at most this many agent rows (the team rows come whole)")


@router.get("/trends", response_model=Trends)
async def trends(request: Request, runtime: RuntimeDep, date_from: Optional[date] = _DateFrom,
                 date_to: Optional[date] = _DateTo, team: Optional[str] = _Team, agent_id: Optional[str] = _Agent,
                 offset: int = _Offset, limit: int = _Limit, principal: Principal = viewer) -> Trends:
    """Per agent and week, and per team and week: the average score (reviewed where there is one, and which),
    the most frequent findings, each rule's hit rate, customers who turned negative and recovered, prompts
    shown, heeded and dismissed. The agent rows a page at a time (`offset`, `limit`; `total_agents` in all),
    the team rows whole."""
    return await run(lambda: _trends(request, runtime.store, principal, date_from, date_to, team, agent_id, offset, limit))


def _csv_row(row: TrendRow, rules: list[str]) -> list[Any]:
    top = "; ".join(f"{b.rule_id}×{b.findings}" for b in row.top_breaches)
    return [row.level, row.week, row.tenant or "", row.team or "", row.agent_id or "", row.calls,
            "" if row.average_score is None else row.average_score, row.score_source or "", row.reviewed_calls,
            row.automatic_calls, top, row.turned_negative, row.recovered, row.prompts_shown, row.prompts_heeded,
            row.prompts_dismissed, *(row.rule_hit_rates.get(r, 0.0) for r in rules)]


@router.get("/trends.csv", response_class=CSVResponse)
async def trends_csv(request: Request, runtime: RuntimeDep, date_from: Optional[date] = _DateFrom,
                     date_to: Optional[date] = _DateTo, team: Optional[str] = _Team, agent_id: Optional[str] = _Agent,
                     principal: Principal = viewer) -> CSVResponse:
    """The same rows as a spreadsheet: the agents' rows, then the teams'; one column per rule id holding its
    hit rate. Text cells that a spreadsheet would run as a formula are written as text."""
    start, end = _range(date_from, date_to)
    found = await run(lambda: _rows(request, runtime.store, principal, start, end, team, agent_id, 0, None))
    rows = [*found.agents, *found.teams]
    extra = sorted({r for row in rows for r in row.rule_hit_rates} - set(RULE_IDS))
    rules = [*RULE_IDS, *extra]
    body = spreadsheet_csv(CSV_COLUMNS + rules, (_csv_row(row, rules) for row in rows))
    return CSVResponse(body, headers={"Content-Disposition": 'attachment; filename="qa-trends.csv"'})
