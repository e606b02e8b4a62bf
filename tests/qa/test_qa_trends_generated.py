"""Trends over generated calls (benchmarks/qa_trends_data.py) on SQLite and PostgreSQL: for every agent and week,
what trends add up (`agent_weeks`, from the facts of revision 0010) is the sum of what was drawn for its calls
(reviewed or automatic score and findings, turns, prompts shown, heeded and dismissed), whole and narrowed by
tenant, date and agents, through the facts' indexes. The expectations come from the generator's draws, not from
the code under test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from benchmarks.qa_trends_data import ExpectedCall, Shape, agents_of, generate
from service.persistence.call_store import CallStore
from service.persistence.qa_trends import agent_weeks
from service.qa.trends import AgentWeek

SHAPE = Shape(calls=600, agents=40, teams=5, weeks=8, review_share=0.2, open_review_share=0.05, no_team_every=10)
FIRST, LAST = SHAPE.first_monday, SHAPE.first_monday + timedelta(weeks=SHAPE.weeks, days=-1)
TEAMS = {(a.tenant, a.agent_id): a.team for a in agents_of(SHAPE)}

Facts = tuple[Any, ...]
WeekKey = tuple[str | None, str, str]  # tenant, agent id, week


def _of_trend(w: AgentWeek) -> Facts:
    t = w.tally
    return (t.calls, t.scored, round(t.score_sum, 6), t.reviewed, dict(+t.findings), dict(+t.hits), t.turned_negative,
            t.recovered, t.prompts_shown, t.prompts_heeded, t.prompts_dismissed)


def _read(store: CallStore, tenant: str | None, start: date, end: date, agent_ids: frozenset[str] | None = None,
          keep: Callable[[str | None, str, str | None], bool] = lambda *_: True) -> dict[WeekKey, Facts]:
    found = agent_weeks(store, tenant=tenant, date_from=start, date_to=end, agent_ids=agent_ids)
    return {(w.tenant, w.agent_id, w.week): _of_trend(w) for w in found
            if keep(w.tenant, w.agent_id, TEAMS.get((w.tenant, w.agent_id)))}


def _expected(calls: Iterable[ExpectedCall]) -> dict[WeekKey, Facts]:
    """Each agent's week summed from its calls' draws."""
    grouped: dict[WeekKey, list[ExpectedCall]] = {}
    for e in calls:
        grouped.setdefault((e.tenant, e.agent_id, e.week), []).append(e)
    out: dict[WeekKey, Facts] = {}
    for key, group in grouped.items():
        findings: Counter[str] = Counter()
        hits: Counter[str] = Counter()
        for e in group:
            findings.update(+e.rules)
            hits.update(r for r, n in e.rules.items() if n > 0)
        turned = [e for e in group if e.turned_negative]
        out[key] = (len(group), len(group), round(sum(e.score for e in group), 6), sum(e.reviewed for e in group),
                    dict(findings), dict(hits), len(turned), sum(e.recovered for e in turned),
                    sum(e.prompts_shown for e in group), sum(e.prompts_heeded for e in group),
                    sum(e.prompts_dismissed for e in group))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[ExpectedCall]:
    """The shape's draws (the same on every database: one seed)."""
    store = CallStore(f"sqlite:///{tmp_path_factory.mktemp('draws') / 'callwatch.db'}")
    try:
        return generate(store, SHAPE)
    finally:
        store.close()


def test_the_generator_draws_a_realistic_mix(generated: list[ExpectedCall]) -> None:
    assert len(generated) == SHAPE.calls and len({e.agent_id for e in generated}) > SHAPE.agents * 0.9
    assert {e.tenant for e in generated} == set(SHAPE.tenants) and any(e.team is None for e in generated)
    for share in (sum(e.reviewed for e in generated), sum(e.turned_negative for e in generated),
                  sum(e.recovered for e in generated), sum(e.prompts_heeded > 0 for e in generated),
                  sum(e.prompts_dismissed > 0 for e in generated)):
        assert 0 < share < SHAPE.calls / 2
    assert any(e.reviewed and e.rules != Counter() for e in generated)


def test_two_runs_write_the_same_calls(tmp_path: Path, generated: list[ExpectedCall]) -> None:
    store = CallStore(f"sqlite:///{tmp_path / 'again.db'}")
    again = generate(store, SHAPE)
    with store.db.engine.connect() as conn:
        reports = conn.execute(text("SELECT count(DISTINCT report) FROM calls")).scalar()
    store.close()
    assert again == generated and reports == SHAPE.calls


def test_trends_read_what_was_drawn_for_every_call_on_both_databases(database_url: str,
                                                                     generated: list[ExpectedCall]) -> None:
    store = CallStore(database_url)
    assert generate(store, SHAPE) == generated
    assert _read(store, None, FIRST, LAST) == _expected(generated)

    tenant = SHAPE.tenants[0]
    month = (FIRST + timedelta(weeks=2), FIRST + timedelta(weeks=6, days=-1))
    in_month = [e for e in generated if e.tenant == tenant and month[0].isoformat() <= e.week <= month[1].isoformat()]
    assert in_month and _read(store, tenant, *month) == _expected(in_month)

    some = frozenset(a.agent_id for a in agents_of(SHAPE)[:7])
    theirs = [e for e in generated if e.tenant == tenant and e.agent_id in some]
    assert theirs and _read(store, tenant, FIRST, LAST, some) == _expected(theirs)

    team = next(e.team for e in generated if e.team is not None)
    of_team = [e for e in generated if e.team == team]
    assert _read(store, None, FIRST, LAST, keep=lambda _t, _a, t: t == team) == _expected(of_team)
    store.close()


def test_the_facts_are_written_through_the_turns_index_and_summed_through_the_tenant_indexes(tmp_path: Path) -> None:
    """SQLite plans without statistics, so its plan is the same at 600 calls as at 100,000: writing a call's
    facts reads the customer's turns through the partial index of turns, and a tenant's trends sum the facts
    through their (tenant, start) indexes."""
    store = CallStore(f"sqlite:///{tmp_path / 'plan.db'}")
    ran: list[tuple[str, Any]] = []
    event.listen(store.db.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, parameters, _context, _many: ran.append((statement, parameters)))
    generate(store, SHAPE)
    assert _read(store, SHAPE.tenants[0], FIRST, LAST)
    with store.db.engine.connect() as conn:
        plans = {statement: " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                               parameters))
                 for statement, parameters in ran if statement.lstrip().upper().startswith("SELECT")}
    store.close()
    on_utterances = [plan for statement, plan in plans.items() if "FROM audit_calls JOIN utterances" in statement]
    assert on_utterances and all("ix_utterances_customer_turns" in plan for plan in on_utterances), plans
    summed = {table: [plan for statement, plan in plans.items() if f"{table}.tenant = ?" in statement]
              for table in ("qa_trend_calls", "qa_trend_rules")}
    for table, found in summed.items():
        assert len(found) == 1 and f"ix_{table}_tenant_started" in found[0], plans
