"""What sampling plans and trends read about stored calls, and only that: every statement here runs on a
connection the caller opened (inside its transaction and its outage retry) and reads, never writes.

The calls are the call list's (`audit_calls`: every stored call with a report, its tenant, agent, start,
automatic score; `audit_call_rules`: its findings per rule), so a plan and a trend see the calls QA sees in
the list, with the same tenant. The rest comes from the call itself: the report (`calls.report`: findings
with their severity, prompts with `cleared_at`), the customer's emotion per utterance (`utterances.emotion`),
the prompts the agent's screen was sent (`call_prompts`), and the submitted QA reviews (`qa_reviews`,
`qa_review_findings`, rulings).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, Table, Text, and_, cast, delete, exists, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from service.persistence.tables import audit_call_rules, audit_calls, qa_trend_calls, qa_trend_rules
from service.qa.call_outcomes import NO_MOOD, NO_PROMPTS, MoodOutcome, PromptOutcome, cleared_prompt_ids, mood_outcome, prompt_outcome
from service.persistence.qa_reviews import qa_disputes, qa_review_findings, qa_reviews, qa_rulings
from service.persistence.tables import CUSTOMER_TURN, call_prompts, calls, utterances
from service.qa.weeks import week_of_start

if TYPE_CHECKING:  # the store and the call list keep the trend facts right through this module
    from service.persistence.call_store import CallStore

SYNC_BATCH = 500


@dataclass(frozen=True)
class CallScope:
    """Which listed calls: of `tenant` (None: every tenant's), started from `start_from` (inclusive) to
    `start_before` (exclusive), both ISO dates compared with the start text as the call list does (None: no
    bound), of `agent_ids` (None: every agent), among `call_ids` (None: any)."""

    tenant: str | None
    start_from: str | None
    start_before: str | None
    agent_ids: frozenset[str] | None = None
    call_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class ListedCall:
    call_key: str
    tenant: str | None
    agent_id: str
    started_at: str | None
    automatic_score: float | None


@dataclass(frozen=True)
class ReviewedCall:
    reviewed_score: float | None
    counted_rules: Counter[str]  # the findings the review counts, per rule


def list_ended_calls(store: CallStore) -> None:
    """Put live calls that ended with a report on the call list (`CallList.sync`), all of them: the list
    itself does it at most every 30 s, a plan's run must not miss one."""
    from service.persistence.call_list import CallList  # here: the call list imports this module

    listing = CallList(store.db)
    while listing.sync(limit=SYNC_BATCH) == SYNC_BATCH:
        pass


def _in_scope(scope: CallScope) -> list[ColumnElement[bool]]:
    c = audit_calls.c
    where = []
    if scope.start_from is not None:
        where.append(c.started_at >= scope.start_from)
    if scope.start_before is not None:
        where.append(c.started_at < scope.start_before)
    if scope.call_ids is not None:
        where.append(c.call_id.in_(sorted(scope.call_ids)))
    if scope.tenant is not None:
        where.append(c.tenant == scope.tenant)
    if scope.agent_ids is not None:
        where.append(c.agent_id.in_(sorted(scope.agent_ids)))
    return where


def _keys(scope: CallScope) -> Select[Any]:
    """The scope's call keys, as a subquery for the other tables."""
    return select(audit_calls.c.call_id).where(*_in_scope(scope))


def _scoped(scope: CallScope, table: Table, *columns: Any) -> Select[Any]:
    """`columns` of `table`'s rows of the scope's calls, joined from the call list: the database walks the
    scope's calls once by its (tenant, start) or (agent, start) index and finds each call's rows by key, where
    `call_id IN (subquery)` may scan `table` or the list's tenant index whole."""
    return (select(*columns).select_from(audit_calls.join(table, table.c.call_id == audit_calls.c.call_id))
            .where(*_in_scope(scope)))


def listed_calls(conn: Connection, scope: CallScope) -> list[ListedCall]:
    c = audit_calls.c
    rows = conn.execute(select(c.call_id, c.tenant, c.agent_id, c.started_at, c.score)
                        .where(*_in_scope(scope)).order_by(c.started_at, c.call_id)).all()
    return [ListedCall(r.call_id, r.tenant, r.agent_id, r.started_at, r.score) for r in rows]


def report_findings(conn: Connection, scope: CallScope) -> dict[str, tuple[tuple[str, str, float], ...]]:
    """Per call, its report's findings as (rule id, severity, t): the call list keeps no severity."""
    rows = conn.execute(select(calls.c.call_id, calls.c.report).where(calls.c.call_id.in_(_keys(scope))))
    out: dict[str, tuple[tuple[str, str, float], ...]] = {}
    for key, report in rows:
        findings = (json.loads(report) if report else {}).get("findings") or []
        out[key] = tuple((str(f["rule_id"]), str(f.get("severity", "")), float(f.get("t", 0.0))) for f in findings)
    return out


def _customer_emotions(conn: Connection, scope: CallScope) -> dict[str, list[dict[str, Any]]]:
    u = utterances.c
    rows = conn.execute(select(u.call_id, u.emotion)
                        .where(u.call_id.in_(_keys(scope)), u.speaker == "customer", u.emotion.is_not(None))
                        .order_by(u.call_id, u.start, u.id))
    out: dict[str, list[dict[str, Any]]] = {}
    for key, emotion in rows:
        out.setdefault(key, []).append(json.loads(emotion))
    return out


def customer_moods(conn: Connection, scope: CallScope) -> dict[str, MoodOutcome]:
    """Per call with emotion results, how its customer's mood went (every result: the last label counts)."""
    return {key: mood_outcome(samples) for key, samples in _customer_emotions(conn, scope).items()}


def customer_turns(conn: Connection, scope: CallScope) -> dict[str, MoodOutcome]:
    """Per call whose customer turned, whether they turned negative and recovered; read from the utterances
    with a turn only (the words of the two turn values are in no other field of a result), so `ended_negative`
    is not known here."""
    u = utterances.c
    moods: dict[str, list[dict[str, Any]]] = {}
    # The conditions are those of the partial index ix_utterances_customer_turns, word for word: the index
    # holds just these rows, and a planner uses it only where the query names its condition.
    for key, emotion in conn.execute(_scoped(scope, utterances, u.call_id, u.emotion).where(*CUSTOMER_TURN)
                                     .order_by(u.call_id, u.start, u.id)):
        moods.setdefault(key, []).append(json.loads(emotion))
    out: dict[str, MoodOutcome] = {}
    for key, samples in moods.items():
        turns = [s for s in samples if s.get("turn") in ("negative", "recovered")]
        mood = mood_outcome(turns)
        out[key] = MoodOutcome(mood.turned_negative, mood.recovered, None) if turns else NO_MOOD
    return out


def automatic_rule_counts(conn: Connection, scope: CallScope) -> dict[str, Counter[str]]:
    r = audit_call_rules.c
    out: dict[str, Counter[str]] = {}
    for key, rule_id, n in conn.execute(_scoped(scope, audit_call_rules, r.call_id, r.rule_id, r.findings)):
        out.setdefault(key, Counter())[rule_id] += n
    return out


def submitted_reviews(conn: Connection, scope: CallScope) -> dict[str, ReviewedCall]:
    """Per call with a submitted review: the reviewed score and the findings it counts (confirmed, automatic
    or added, and not overturned by a ruling), as the review's own answer counts them."""
    rv, f = qa_reviews.c, qa_review_findings.c
    reviewed = {key: ReviewedCall(score, Counter()) for key, score in conn.execute(
        select(rv.call_id, rv.reviewed_score).where(rv.call_id.in_(_keys(scope)), rv.state == "submitted"))}
    if not reviewed:
        return reviewed
    overturned = exists().where(qa_disputes.c.finding_id == f.finding_id,
                                qa_rulings.c.dispute_id == qa_disputes.c.dispute_id,
                                qa_rulings.c.outcome == "overturned")
    rows = conn.execute(select(rv.call_id, f.rule_id)
                        .join(qa_review_findings, f.review_id == rv.review_id)
                        .where(rv.call_id.in_(_keys(scope)), rv.state == "submitted", f.decision == "confirmed",
                               ~overturned))
    for key, rule_id in rows:
        reviewed[key].counted_rules[rule_id] += 1
    return reviewed


def prompt_outcomes(conn: Connection, scope: CallScope) -> dict[str, PromptOutcome]:
    """Per call whose agent was shown prompts: how many, how many were heeded and dismissed."""
    p = call_prompts.c
    shown: dict[str, list[tuple[str, bool]]] = {}
    for key, prompt_id, dismissed_at in conn.execute(
            _scoped(scope, call_prompts, p.call_id, p.prompt_id, p.dismissed_at).order_by(p.call_id, p.id)):
        shown.setdefault(key, []).append((prompt_id, dismissed_at is not None))
    cleared = _cleared(conn, shown)
    return {key: prompt_outcome(prompts, cleared.get(key, set())) for key, prompts in shown.items()}


def _cleared(conn: Connection, keys: Iterable[str]) -> dict[str, set[str]]:
    """The cleared prompt ids in the reports of these calls (read only for calls that showed prompts)."""
    wanted = sorted(keys)
    prompts = _report_prompts(conn)
    out: dict[str, set[str]] = {}
    for start in range(0, len(wanted), SYNC_BATCH):  # a bounded IN list per statement
        part = wanted[start:start + SYNC_BATCH]
        for key, listed in conn.execute(select(calls.c.call_id, prompts)
                                        .where(and_(calls.c.call_id.in_(part), calls.c.report.is_not(None)))):
            out[key] = cleared_prompt_ids((json.loads(listed) if listed else None) or [])
    return out


def _report_prompts(conn: Connection) -> ColumnElement[Any]:
    """The report's `prompts` as JSON text (null where it has none), cut out by the database: a report is
    kilobytes of findings and figures, its prompts a few hundred bytes, and parsing whole reports in Python
    took a fifth of a wide trends answer's time (benchmarks/qa_trends.py)."""
    if conn.dialect.name == "postgresql":
        return cast(cast(calls.c.report, JSONB)["prompts"], Text)
    return func.json_extract(calls.c.report, "$.prompts")


def refresh_trend_facts(conn: Connection, call_ids: Iterable[str]) -> None:
    """Write these calls' trend facts (`qa_trend_calls`, `qa_trend_rules`) afresh from what is stored now, on
    the caller's connection and inside its transaction: every writer that changes a figure trends sum calls
    it (the call listed or its report replaced, a review submitted, a ruling, a prompt dismissed). A call that
    is not listed, or has no start, has none."""
    wanted = sorted(set(call_ids))
    for start in range(0, len(wanted), SYNC_BATCH):  # a bounded IN list per statement
        part = wanted[start:start + SYNC_BATCH]
        for table in (qa_trend_rules, qa_trend_calls):
            conn.execute(delete(table).where(table.c.call_id.in_(part)))
        facts, rules = _settled_facts(conn, CallScope(None, None, None, call_ids=frozenset(part)))
        if facts:
            conn.execute(insert(qa_trend_calls), facts)
        if rules:
            conn.execute(insert(qa_trend_rules), rules)


def _settled_facts(conn: Connection, scope: CallScope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The scope's calls' fact rows and rule rows: the score and findings QA settled on (the submitted
    review's, after rulings, where it has a reviewed score; else the automatic ones), the customer's turns,
    the prompts shown, heeded and dismissed."""
    listed = [c for c in listed_calls(conn, scope) if week_of_start(c.started_at) is not None]
    if not listed:
        return [], []
    reviewed, automatic = submitted_reviews(conn, scope), automatic_rule_counts(conn, scope)
    turns, prompts = customer_turns(conn, scope), prompt_outcomes(conn, scope)
    facts: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for c in listed:
        week = week_of_start(c.started_at)
        assert week is not None and c.started_at is not None  # kept above
        review = reviewed.get(c.call_key)
        use_review = review is not None and review.reviewed_score is not None
        counted = review.counted_rules if review is not None and use_review else automatic.get(c.call_key, Counter())
        mood, shown = turns.get(c.call_key, NO_MOOD), prompts.get(c.call_key, NO_PROMPTS)
        where = {"tenant": c.tenant, "agent_id": c.agent_id, "started_at": c.started_at, "week": week.isoformat()}
        facts.append({"call_id": c.call_key, **where,
                      "score": review.reviewed_score if review is not None and use_review else c.automatic_score,
                      "reviewed": int(use_review), "turned_negative": int(mood.turned_negative),
                      "recovered": int(mood.turned_negative and mood.recovered), "prompts_shown": shown.shown,
                      "prompts_heeded": shown.heeded, "prompts_dismissed": shown.dismissed})
        rules.extend({"call_id": c.call_key, "rule_id": rule_id, **where, "findings": n}
                     for rule_id, n in sorted(counted.items()) if n > 0)
    return facts, rules
