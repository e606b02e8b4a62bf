"""Trends over generated calls (benchmarks/qa_trends_data.py) on SQLite and PostgreSQL: for every call, what
trends read (`trend_calls`) is what was drawn for it (reviewed or automatic score and findings, turns, prompts
shown, heeded and dismissed), whole and narrowed by tenant, date and agents, through the indexes of revision
0009. The expectations come from the generator's draws, not from the code under test."""

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
from service.persistence.qa_trends import trend_calls
from service.qa.trends import TrendCall

SHAPE = Shape(calls=600, agents=40, teams=5, weeks=8, review_share=0.2, open_review_share=0.05, no_team_every=10)
FIRST, LAST = SHAPE.first_monday, SHAPE.first_monday + timedelta(weeks=SHAPE.weeks, days=-1)
TEAMS = {(a.tenant, a.agent_id): a.team for a in agents_of(SHAPE)}

Facts = tuple[Any, ...]


def _of_trend(c: TrendCall) -> Facts:
    return (c.tenant, c.agent_id, c.team, c.week, c.score, c.reviewed, frozenset((+c.rules).items()), c.turned_negative,
            c.recovered, c.prompts.shown, c.prompts.heeded, c.prompts.dismissed)


def _of_expected(e: ExpectedCall) -> Facts:
    return (e.tenant, e.agent_id, e.team, e.week, e.score, e.reviewed, frozenset((+e.rules).items()), e.turned_negative,
            e.recovered, e.prompts_shown, e.prompts_heeded, e.prompts_dismissed)


def _read(store: CallStore, tenant: str | None, start: date, end: date, agent_ids: frozenset[str] | None = None,
          keep: Callable[[str | None, str, str | None], bool] = lambda *_: True) -> Counter[Facts]:
    found = trend_calls(store, tenant=tenant, date_from=start, date_to=end, agent_ids=agent_ids,
                        team_of=lambda t, a: TEAMS.get((t, a)), keep=keep)
    return Counter(map(_of_trend, found))


def _expected(calls: Iterable[ExpectedCall]) -> Counter[Facts]:
    return Counter(map(_of_expected, calls))


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


def test_the_customers_turns_and_a_tenants_calls_are_read_through_the_new_indexes(tmp_path: Path) -> None:
    """SQLite plans without statistics, so its plan is the same at 600 calls as at 100,000: each statement trends
    run on utterances goes through the partial index of turns, and on the call list through (tenant, start)."""
    store = CallStore(f"sqlite:///{tmp_path / 'plan.db'}")
    generate(store, SHAPE)
    ran: list[tuple[str, Any]] = []
    event.listen(store.db.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, parameters, _context, _many: ran.append((statement, parameters)))
    assert _read(store, SHAPE.tenants[0], FIRST, LAST)
    with store.db.engine.connect() as conn:
        plans = {statement: " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                               parameters))
                 for statement, parameters in ran if statement.lstrip().upper().startswith("SELECT")}
    store.close()
    on_utterances = [plan for statement, plan in plans.items() if "FROM audit_calls JOIN utterances" in statement]
    assert on_utterances and all("ix_utterances_customer_turns" in plan for plan in on_utterances), plans
    on_the_list = [plan for statement, plan in plans.items() if "audit_calls.tenant = ?" in statement]
    assert len(on_the_list) >= 5 and all("ix_audit_calls_tenant_started" in plan for plan in on_the_list), plans
