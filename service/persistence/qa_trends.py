"""What trends read (docs/qa.md, Trends): per agent (within its tenant) and week of a date range, the sums of
its calls' facts (`qa_trend_calls`, `qa_trend_rules`: the score and findings QA settled on, the customer's
turns, the prompts), added up by the database in one read transaction under the store's outage retry. Teams
are applied by the caller, as the keys file has them now."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, select

from service.persistence.call_store import CallStore
from service.persistence.qa_call_facts import list_ended_calls
from service.persistence.tables import qa_trend_calls, qa_trend_rules
from service.qa.trends import AgentWeek, Tally


def _where(table: Table, tenant: str | None, start_from: str, start_before: str,
           agent_ids: frozenset[str] | None) -> list[ColumnElement[bool]]:
    c = table.c
    where = [c.started_at >= start_from, c.started_at < start_before]
    if tenant is not None:
        where.append(c.tenant == tenant)
    if agent_ids is not None:
        where.append(c.agent_id.in_(sorted(agent_ids)))
    return where


def agent_weeks(store: CallStore, *, tenant: str | None, date_from: date, date_to: date,
                agent_ids: frozenset[str] | None) -> list[AgentWeek]:
    """Per agent and week, the sums over the listed calls of `tenant` (None: every tenant's) that started from
    `date_from` to `date_to` (both days included, on the start text as the call list compares it), of
    `agent_ids` (None: any)."""
    list_ended_calls(store)
    bounds = (date_from.isoformat(), (date_to + timedelta(days=1)).isoformat())
    f, r = qa_trend_calls.c, qa_trend_rules.c
    sums = (select(f.tenant, f.agent_id, f.week, func.count(), func.count(f.score), func.coalesce(func.sum(f.score), 0.0),
                   func.sum(case((f.score.is_not(None), f.reviewed), else_=0)), func.sum(f.turned_negative),
                   func.sum(f.recovered), func.sum(f.prompts_shown), func.sum(f.prompts_heeded),
                   func.sum(f.prompts_dismissed))
            .where(*_where(qa_trend_calls, tenant, *bounds, agent_ids)).group_by(f.tenant, f.agent_id, f.week))
    per_rule = (select(r.tenant, r.agent_id, r.week, r.rule_id, func.sum(r.findings), func.count())
                .where(*_where(qa_trend_rules, tenant, *bounds, agent_ids))
                .group_by(r.tenant, r.agent_id, r.week, r.rule_id))

    def read(_attempt: int) -> list[AgentWeek]:
        tallies: dict[tuple[Any, ...], Tally] = {}
        with store.db.engine.connect() as conn:
            for tnt, agent, week, *n in conn.execute(sums):
                tallies[(tnt, agent, week)] = Tally(int(n[0]), int(n[1]), float(n[2]), int(n[3]), int(n[4]),
                                                    int(n[5]), int(n[6]), int(n[7]), int(n[8]), Counter(), Counter())
            for tnt, agent, week, rule_id, findings, hits in conn.execute(per_rule):
                tally = tallies.get((tnt, agent, week))
                if tally is not None:  # its call was listed between the two reads
                    tally.findings[rule_id] = int(findings)
                    tally.hits[rule_id] = int(hits)
        return [AgentWeek(tnt, agent, week, t) for (tnt, agent, week), t in tallies.items()]

    return store.db.retrying(read)
