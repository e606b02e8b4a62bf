"""Every table and statement of the QA review workflow (docs/qa.md), and nothing else: the routes decide who may
do what (`service.qa.access`), this module stores it.

Each operation is one transaction run through the store's outage retry (`CallStore.retrying`), so a database
restart in the middle of a review loses nothing and stores nothing twice: every write appends one history row
under an id chosen before the first try, and a retry (`attempt` > 0) that finds that row knows the earlier try
committed. Writes to one review lock its row first (`FOR UPDATE` on PostgreSQL; SQLite has one writer at a
time anyway), so a submit and a late decision, or two rulings, cannot both pass their checks.

`qa_history` is append-only: no statement here updates or deletes a row of it. The other tables hold the
state as it is now; the history says who changed what, when and why.

The schema is made by revision 0007 (service/migrations); these definitions are its tables, for queries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from service.access.keys import Principal
from service.qa.errors import Conflict, NotFound
from service.qa.models import (
    Action,
    DisputeOut,
    HistoryEntry,
    ReviewFindingOut,
    ReviewOut,
    ReviewSummary,
    RulingOut,
)
from service.persistence.call_store import CallStore
from service.persistence.engine import is_duplicate
from service.persistence.tables import calls

qa_metadata = MetaData()

qa_reviews = Table(
    "qa_reviews",
    qa_metadata,
    Column("review_id", String(40), primary_key=True),
    Column("call_id", String(128), ForeignKey(calls.c.call_id), nullable=False, doc="the call's row key"),
    Column("tenant", String(128), doc="the call's tenant when the review was opened (access is checked against it)"),
    Column("agent_id", String(128), nullable=False),
    Column("state", String(16), nullable=False, doc="open | submitted"),
    Column("opened_by", String(128), nullable=False),
    Column("opened_by_role", String(16), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("submitted_by", String(128)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("automatic_score", Float, doc="the report's score when the review was opened"),
    Column("reviewed_score", Float, doc="null until submitted; then follows every ruling"),
    Column("acknowledged_at", DateTime(timezone=True), doc="when the agent acknowledged the reviewed call"),
    # One review of a call: the reviewed score beside the automatic one is that review's.
    UniqueConstraint("call_id", name="uq_qa_reviews_call_id"),
    Index("ix_qa_reviews_tenant_agent", "tenant", "agent_id"),
    Index("ix_qa_reviews_opened_at", "opened_at"),
)

qa_review_findings = Table(
    "qa_review_findings",
    qa_metadata,
    Column("finding_id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(40), ForeignKey("qa_reviews.review_id"), nullable=False, index=True),
    Column("source", String(16), nullable=False, doc="automatic (copied from the report at open) | added"),
    Column("report_index", Integer, doc="its place in the report's findings; null for an added one"),
    Column("rule_id", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("t", Float, nullable=False),
    Column("end", Float),
    Column("detail", Text, doc="the automatic finding's text"),
    Column("note", Text, doc="an added finding's note"),
    Column("decision", String(16), nullable=False, doc="pending | confirmed | rejected"),
    Column("reason", Text),
    Column("decided_by", String(128)),
    Column("decided_at", DateTime(timezone=True)),
)

qa_disputes = Table(
    "qa_disputes",
    qa_metadata,
    Column("dispute_id", String(40), primary_key=True),
    Column("review_id", String(40), ForeignKey("qa_reviews.review_id"), nullable=False, index=True),
    Column("finding_id", Integer, ForeignKey("qa_review_findings.finding_id"), nullable=False),
    Column("agent_id", String(128), nullable=False, doc="the agent who disputed"),
    Column("comment", Text, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    # A finding is disputed once; its ruling is final.
    UniqueConstraint("finding_id", name="uq_qa_disputes_finding_id"),
    Index("ix_qa_disputes_raised_at", "raised_at"),
)

qa_rulings = Table(
    "qa_rulings",
    qa_metadata,
    Column("ruling_id", String(40), primary_key=True),
    Column("dispute_id", String(40), ForeignKey("qa_disputes.dispute_id"), nullable=False),
    Column("outcome", String(16), nullable=False, doc="upheld | overturned"),
    Column("reason", Text, nullable=False),
    Column("ruled_by", String(128), nullable=False),
    Column("ruled_by_role", String(16), nullable=False),
    Column("ruled_at", DateTime(timezone=True), nullable=False),
    Column("score_before", Float),
    Column("score_after", Float),
    UniqueConstraint("dispute_id", name="uq_qa_rulings_dispute_id"),
)

qa_history = Table(
    "qa_history",
    qa_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(40), nullable=False, doc="chosen before the write: a retried write finds its own row"),
    Column("review_id", String(40), ForeignKey("qa_reviews.review_id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("finding_id", Integer),
    Column("dispute_id", String(40)),
    Column("reason", Text, doc="why"),
    Column("detail", Text, nullable=False, doc="JSON: what changed"),
    UniqueConstraint("entry_id", name="uq_qa_history_entry_id"),
    Index("ix_qa_history_review", "review_id", "id"),
)

Scorer = Callable[[list[str]], float | None]
"""The reviewed score of the rule ids that count (service.qa.scoring)."""

MAX_LIST = 500


@dataclass(frozen=True)
class ReviewOwner:
    """Whose review it is: what access is decided on."""

    review_id: str
    call_key: str
    tenant: str | None
    agent_id: str
    state: str


@dataclass(frozen=True)
class DisputeOwner:
    dispute_id: str
    review_id: str
    call_key: str
    tenant: str | None
    agent_id: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- inside a transaction


def _append(conn: Connection, entry_id: str, review_id: str, at: datetime, actor: Principal, action: Action, *,
            finding_id: int | None = None, dispute_id: str | None = None, reason: str | None = None,
            detail: Mapping[str, Any] | None = None) -> None:
    conn.execute(insert(qa_history).values(
        entry_id=entry_id, review_id=review_id, at=at, actor=actor.name, actor_role=actor.role, action=action,
        finding_id=finding_id, dispute_id=dispute_id, reason=reason,
        detail=json.dumps(dict(detail or {}), ensure_ascii=False)))


def _entry(conn: Connection, entry_id: str) -> Any:
    """The history row a write appended, if an earlier try of it committed."""
    return conn.execute(select(qa_history.c.finding_id, qa_history.c.dispute_id)
                        .where(qa_history.c.entry_id == entry_id)).first()


def _locked_review(conn: Connection, review_id: str) -> Any:
    review = conn.execute(select(qa_reviews).where(qa_reviews.c.review_id == review_id).with_for_update()).first()
    if review is None:
        raise NotFound("no such review")
    return review


def _refresh_trend_facts(conn: Connection, call_id: str) -> None:
    """The reviewed call's trend facts take its reviewed score and counted findings (docs/qa.md, Trends)."""
    from service.persistence.qa_call_facts import refresh_trend_facts  # here: that module reads these tables

    refresh_trend_facts(conn, [call_id])


def _overturned(review_id: str) -> Any:
    """The findings of a review whose dispute was overturned (a subquery)."""
    return (select(qa_disputes.c.finding_id)
            .join(qa_rulings, qa_rulings.c.dispute_id == qa_disputes.c.dispute_id)
            .where(qa_disputes.c.review_id == review_id, qa_rulings.c.outcome == "overturned"))


def _counted_rule_ids(conn: Connection, review_id: str) -> list[str]:
    """What the reviewed score deducts for: confirmed findings (automatic or added) not overturned."""
    f = qa_review_findings
    return list(conn.execute(select(f.c.rule_id).where(
        f.c.review_id == review_id, f.c.decision == "confirmed", f.c.finding_id.not_in(_overturned(review_id)))
        .order_by(f.c.finding_id)).scalars())


def _open_for_changes(review: Any) -> None:
    if review.state != "open":
        raise Conflict("the review is submitted: its decisions are final (a dispute may still overturn a finding)")


# ---------------------------------------------------------------- a reviewer


def open_review(store: CallStore, call_key: str, tenant: str | None, agent_id: str, automatic_score: float | None,
                findings: Sequence[Mapping[str, Any]], actor: Principal) -> tuple[str, bool]:
    """Open the review of a call with its report's findings, each pending; (review id, whether it was opened
    now). A call has one review: where it has one already, that one is returned."""
    review_id, entry_id, now = _new_id(), _new_id(), _now()

    def write(_attempt: int) -> tuple[str, bool]:
        with store.db.engine.begin() as conn:
            existing = conn.execute(select(qa_reviews.c.review_id).where(qa_reviews.c.call_id == call_key)).scalar()
            if existing is not None:
                return existing, existing == review_id  # the second: a retry finding its own commit
            conn.execute(insert(qa_reviews).values(
                review_id=review_id, call_id=call_key, tenant=tenant, agent_id=agent_id, state="open",
                opened_by=actor.name, opened_by_role=actor.role, opened_at=now, automatic_score=automatic_score))
            if findings:
                conn.execute(insert(qa_review_findings), [
                    {"review_id": review_id, "source": "automatic", "report_index": i, "rule_id": str(f["rule_id"]),
                     "severity": str(f.get("severity") or ""), "t": float(f.get("t") or 0.0), "end": f.get("end"),
                     "detail": f.get("detail"), "note": None, "decision": "pending", "reason": None,
                     "decided_by": None, "decided_at": None}
                    for i, f in enumerate(findings)])
            _append(conn, entry_id, review_id, now, actor, "opened",
                    detail={"automatic_score": automatic_score, "findings": len(findings)})
        return review_id, True

    def write_or_take_theirs(attempt: int) -> tuple[str, bool]:
        try:
            return write(attempt)
        except IntegrityError as err:
            # Another reviewer opened it between the look and the insert: theirs is the call's review.
            if not is_duplicate(err):
                raise
            return write(attempt)

    return store.db.retrying(write_or_take_theirs)


def decide(store: CallStore, review_id: str, finding_id: int, decision: str, reason: str | None,
           actor: Principal) -> None:
    """Confirm or reject one finding of an open review (`decision`: confirmed | rejected)."""
    f = qa_review_findings
    entry_id, now = _new_id(), _now()

    def write(attempt: int) -> None:
        with store.db.engine.begin() as conn:
            if attempt > 0 and _entry(conn, entry_id) is not None:
                return
            _open_for_changes(_locked_review(conn, review_id))
            finding = conn.execute(select(f.c.rule_id, f.c.decision)
                                   .where(f.c.finding_id == finding_id, f.c.review_id == review_id)).first()
            if finding is None:
                raise NotFound("no such finding in this review")
            conn.execute(update(f).where(f.c.finding_id == finding_id)
                         .values(decision=decision, reason=reason, decided_by=actor.name, decided_at=now))
            _append(conn, entry_id, review_id, now, actor, "confirmed" if decision == "confirmed" else "rejected",
                    finding_id=finding_id, reason=reason,
                    detail={"rule_id": finding.rule_id, "from": finding.decision, "to": decision})

    store.db.retrying(write)


def add_finding(store: CallStore, review_id: str, rule_id: str, severity: str, t: float, note: str,
                actor: Principal) -> int:
    """A finding the system missed, confirmed as it is added; its id."""
    entry_id, now = _new_id(), _now()

    def write(attempt: int) -> int:
        with store.db.engine.begin() as conn:
            if attempt > 0 and (done := _entry(conn, entry_id)) is not None:
                return int(done.finding_id)
            _open_for_changes(_locked_review(conn, review_id))
            added = conn.execute(insert(qa_review_findings).values(
                review_id=review_id, source="added", report_index=None, rule_id=rule_id, severity=severity, t=t,
                end=None, detail=None, note=note, decision="confirmed", reason=None, decided_by=actor.name,
                decided_at=now))
            inserted = added.inserted_primary_key
            assert inserted is not None, "an insert of one row has its key"
            finding_id = int(inserted[0])
            _append(conn, entry_id, review_id, now, actor, "added", finding_id=finding_id, reason=note,
                    detail={"rule_id": rule_id, "t": t})
        return finding_id

    return store.db.retrying(write)


def submit(store: CallStore, review_id: str, actor: Principal, score: Scorer) -> float | None:
    """Close the review: every automatic finding decided, the reviewed score computed and kept beside the
    automatic one. The reviewed score."""
    f = qa_review_findings
    entry_id, now = _new_id(), _now()

    def write(attempt: int) -> float | None:
        with store.db.engine.begin() as conn:
            if attempt > 0 and _entry(conn, entry_id) is not None:
                return conn.execute(select(qa_reviews.c.reviewed_score)
                                    .where(qa_reviews.c.review_id == review_id)).scalar()
            review = _locked_review(conn, review_id)
            if review.state != "open":
                raise Conflict("the review is already submitted")
            pending = list(conn.execute(select(f.c.finding_id).where(f.c.review_id == review_id, f.c.decision == "pending")
                                        .order_by(f.c.finding_id)).scalars())
            if pending:
                raise Conflict(f"confirm or reject every automatic finding first; pending: {pending}")
            reviewed = score(_counted_rule_ids(conn, review_id))
            conn.execute(update(qa_reviews).where(qa_reviews.c.review_id == review_id).values(
                state="submitted", submitted_by=actor.name, submitted_at=now, reviewed_score=reviewed))
            _append(conn, entry_id, review_id, now, actor, "submitted",
                    detail={"automatic_score": review.automatic_score, "reviewed_score": reviewed})
            _refresh_trend_facts(conn, review.call_id)
        return reviewed

    return store.db.retrying(write)


# ---------------------------------------------------------------- the agent


def acknowledge(store: CallStore, review_id: str, actor: Principal) -> bool:
    """The agent has read the reviewed call; False where it was acknowledged before (nothing is written)."""
    entry_id, now = _new_id(), _now()

    def write(attempt: int) -> bool:
        with store.db.engine.begin() as conn:
            if attempt > 0 and _entry(conn, entry_id) is not None:
                return True
            review = _locked_review(conn, review_id)
            if review.state != "submitted":
                raise Conflict("the review is not submitted yet")
            if review.acknowledged_at is not None:
                return False
            conn.execute(update(qa_reviews).where(qa_reviews.c.review_id == review_id).values(acknowledged_at=now))
            _append(conn, entry_id, review_id, now, actor, "acknowledged")
        return True

    return store.db.retrying(write)


def raise_dispute(store: CallStore, review_id: str, finding_id: int, comment: str, actor: Principal) -> str:
    """The agent disputes a finding that counts against them; the dispute's id. Once per finding."""
    f = qa_review_findings
    dispute_id, entry_id, now = _new_id(), _new_id(), _now()

    def write(attempt: int) -> str:
        with store.db.engine.begin() as conn:
            if attempt > 0 and _entry(conn, entry_id) is not None:
                return dispute_id
            review = _locked_review(conn, review_id)
            if review.state != "submitted":
                raise Conflict("the review is not submitted yet")
            finding = conn.execute(select(f.c.rule_id, f.c.decision)
                                   .where(f.c.finding_id == finding_id, f.c.review_id == review_id)).first()
            if finding is None:
                raise NotFound("no such finding in this review")
            if finding.decision != "confirmed":
                raise Conflict("only a finding that counts against you can be disputed; this one was rejected")
            if conn.execute(select(qa_disputes.c.dispute_id).where(qa_disputes.c.finding_id == finding_id)).first():
                raise Conflict("this finding is already disputed")
            conn.execute(insert(qa_disputes).values(dispute_id=dispute_id, review_id=review_id, finding_id=finding_id,
                                                    agent_id=actor.name, comment=comment, raised_at=now))
            _append(conn, entry_id, review_id, now, actor, "disputed", finding_id=finding_id, dispute_id=dispute_id,
                    reason=comment, detail={"rule_id": finding.rule_id})
        return dispute_id

    return store.db.retrying(write)


# ---------------------------------------------------------------- a supervisor


def rule_dispute(store: CallStore, dispute_id: str, outcome: str, reason: str, actor: Principal,
                 score: Scorer) -> float | None:
    """Uphold or overturn a dispute (`outcome`: upheld | overturned); the reviewed score follows. The score
    the ruling left."""
    entry_id, now = _new_id(), _now()

    def write(attempt: int) -> float | None:
        with store.db.engine.begin() as conn:
            dispute = conn.execute(select(qa_disputes.c.review_id, qa_disputes.c.finding_id)
                                   .where(qa_disputes.c.dispute_id == dispute_id)).first()
            if dispute is None:
                raise NotFound("no such dispute")
            if attempt > 0 and _entry(conn, entry_id) is not None:
                return conn.execute(select(qa_reviews.c.reviewed_score)
                                    .where(qa_reviews.c.review_id == dispute.review_id)).scalar()
            review = _locked_review(conn, dispute.review_id)
            if conn.execute(select(qa_rulings.c.ruling_id).where(qa_rulings.c.dispute_id == dispute_id)).first():
                raise Conflict("the dispute is already ruled")
            conn.execute(insert(qa_rulings).values(
                ruling_id=_new_id(), dispute_id=dispute_id, outcome=outcome, reason=reason, ruled_by=actor.name,
                ruled_by_role=actor.role, ruled_at=now, score_before=review.reviewed_score))
            after = score(_counted_rule_ids(conn, dispute.review_id))
            conn.execute(update(qa_rulings).where(qa_rulings.c.dispute_id == dispute_id).values(score_after=after))
            conn.execute(update(qa_reviews).where(qa_reviews.c.review_id == dispute.review_id)
                         .values(reviewed_score=after))
            rule_id = conn.execute(select(qa_review_findings.c.rule_id)
                                   .where(qa_review_findings.c.finding_id == dispute.finding_id)).scalar()
            _append(conn, entry_id, dispute.review_id, now, actor, "upheld" if outcome == "upheld" else "overturned",
                    finding_id=dispute.finding_id, dispute_id=dispute_id, reason=reason,
                    detail={"rule_id": rule_id, "score_before": review.reviewed_score, "score_after": after})
            _refresh_trend_facts(conn, review.call_id)
        return after

    return store.db.retrying(write)


# ---------------------------------------------------------------- reading


def _owner(row: Any) -> ReviewOwner:
    return ReviewOwner(row.review_id, row.call_id, row.tenant, row.agent_id, row.state)


def review_owner(store: CallStore, review_id: str) -> ReviewOwner | None:
    def read(_attempt: int) -> ReviewOwner | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_reviews).where(qa_reviews.c.review_id == review_id)).first()
        return _owner(row) if row is not None else None

    return store.db.retrying(read)


def review_of_call(store: CallStore, call_key: str) -> str | None:
    def read(_attempt: int) -> str | None:
        with store.db.engine.connect() as conn:
            return conn.execute(select(qa_reviews.c.review_id).where(qa_reviews.c.call_id == call_key)).scalar()

    return store.db.retrying(read)


def _open_disputes() -> Any:
    """Per review (correlated): its disputes without a ruling."""
    return (select(func.count()).select_from(qa_disputes)
            .outerjoin(qa_rulings, qa_rulings.c.dispute_id == qa_disputes.c.dispute_id)
            .where(qa_disputes.c.review_id == qa_reviews.c.review_id, qa_rulings.c.ruling_id.is_(None))
            .correlate(qa_reviews).scalar_subquery())


def _summary(row: Any) -> ReviewSummary:
    return ReviewSummary(
        review_id=row.review_id, call_id=row.call_id, agent_id=row.agent_id, state=row.state, opened_by=row.opened_by,
        opened_at=row.opened_at, submitted_by=row.submitted_by, submitted_at=row.submitted_at,
        automatic_score=row.automatic_score, reviewed_score=row.reviewed_score,
        acknowledged_at=row.acknowledged_at, open_disputes=row.open_disputes)


def _scope(tenant_col: Any, agent_col: Any, tenant: str | None, agent_ids: Iterable[str] | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if tenant is not None:
        where.append(tenant_col == tenant)
    if agent_ids is not None:
        where.append(agent_col.in_(sorted(set(agent_ids))))
    return where


def list_reviews(store: CallStore, *, tenant: str | None, agent_ids: Iterable[str] | None = None,
                 state: str | None = None, call_key: str | None = None) -> list[tuple[ReviewOwner, ReviewSummary]]:
    """Reviews, newest first, at most MAX_LIST: of `tenant` (None: any), of `agent_ids` (None: any agent), in
    `state`, of one call."""
    where = _scope(qa_reviews.c.tenant, qa_reviews.c.agent_id, tenant, agent_ids)
    if state is not None:
        where.append(qa_reviews.c.state == state)
    if call_key is not None:
        where.append(qa_reviews.c.call_id == call_key)

    def read(_attempt: int) -> list[tuple[ReviewOwner, ReviewSummary]]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(select(qa_reviews, _open_disputes().label("open_disputes")).where(*where)
                                .order_by(qa_reviews.c.opened_at.desc(), qa_reviews.c.review_id).limit(MAX_LIST)).all()
        return [(_owner(r), _summary(r)) for r in rows]

    return store.db.retrying(read)


def _dispute_query() -> Any:
    d, r = qa_disputes, qa_rulings
    return (select(d, qa_reviews.c.call_id, qa_reviews.c.tenant, qa_review_findings.c.rule_id,
                   r.c.outcome, r.c.reason.label("ruling_reason"), r.c.ruled_by, r.c.ruled_at, r.c.score_before,
                   r.c.score_after)
            .join(qa_reviews, qa_reviews.c.review_id == d.c.review_id)
            .join(qa_review_findings, qa_review_findings.c.finding_id == d.c.finding_id)
            .outerjoin(r, r.c.dispute_id == d.c.dispute_id))


def _dispute(row: Any) -> DisputeOut:
    ruling = None if row.outcome is None else RulingOut(
        outcome=row.outcome, reason=row.ruling_reason, ruled_by=row.ruled_by, ruled_at=row.ruled_at,
        score_before=row.score_before, score_after=row.score_after)
    # The agent of the review: the dispute is theirs (its `agent_id` is who raised it, the same agent).
    return DisputeOut(dispute_id=row.dispute_id, review_id=row.review_id, call_id=row.call_id, agent_id=row.agent_id,
                      finding_id=row.finding_id, rule_id=row.rule_id, comment=row.comment, raised_at=row.raised_at,
                      state="open" if ruling is None else ruling.outcome, ruling=ruling)


def _dispute_owner(row: Any) -> DisputeOwner:
    return DisputeOwner(row.dispute_id, row.review_id, row.call_id, row.tenant, row.agent_id)


def dispute_owner(store: CallStore, dispute_id: str) -> DisputeOwner | None:
    def read(_attempt: int) -> DisputeOwner | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(_dispute_query().where(qa_disputes.c.dispute_id == dispute_id)).first()
        return _dispute_owner(row) if row is not None else None

    return store.db.retrying(read)


def get_dispute(store: CallStore, dispute_id: str) -> DisputeOut | None:
    def read(_attempt: int) -> DisputeOut | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(_dispute_query().where(qa_disputes.c.dispute_id == dispute_id)).first()
        return _dispute(row) if row is not None else None

    return store.db.retrying(read)


def list_disputes(store: CallStore, *, tenant: str | None, agent_ids: Iterable[str] | None = None,
                  state: str | None = None) -> list[tuple[DisputeOwner, DisputeOut]]:
    """Disputes, oldest first (a queue), at most MAX_LIST: of `tenant` (None: any), of `agent_ids` (None: any);
    `state` open (no ruling yet) or ruled."""
    where = _scope(qa_reviews.c.tenant, qa_disputes.c.agent_id, tenant, agent_ids)
    if state == "open":
        where.append(qa_rulings.c.ruling_id.is_(None))
    elif state == "ruled":
        where.append(qa_rulings.c.ruling_id.is_not(None))

    def read(_attempt: int) -> list[tuple[DisputeOwner, DisputeOut]]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(_dispute_query().where(*where)
                                .order_by(qa_disputes.c.raised_at, qa_disputes.c.dispute_id).limit(MAX_LIST)).all()
        return [(_dispute_owner(r), _dispute(r)) for r in rows]

    return store.db.retrying(read)


def get_review(store: CallStore, review_id: str) -> ReviewOut | None:
    """The review with its findings (in call-time order), disputes and rulings."""
    f = qa_review_findings

    def read(_attempt: int) -> ReviewOut | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_reviews, _open_disputes().label("open_disputes"))
                               .where(qa_reviews.c.review_id == review_id)).first()
            if row is None:
                return None
            # As mappings: a column named `t` is no attribute of a Row (Row.t is the row as a tuple).
            findings = conn.execute(select(f).where(f.c.review_id == review_id)
                                    .order_by(f.c.t, f.c.finding_id)).mappings().all()
            overturned = set(conn.execute(_overturned(review_id)).scalars())
            disputes = [_dispute(d) for d in conn.execute(
                _dispute_query().where(qa_disputes.c.review_id == review_id).order_by(qa_disputes.c.raised_at))]
        return ReviewOut(
            **_summary(row).model_dump(),
            findings=[ReviewFindingOut(
                **{k: x[k] for k in ReviewFindingOut.model_fields if k != "counted" and k in x},
                counted=x["decision"] == "confirmed" and x["finding_id"] not in overturned)
                for x in findings],
            disputes=disputes)

    return store.db.retrying(read)


def history(store: CallStore, review_id: str) -> list[HistoryEntry]:
    """Every change to the review, in the order it was made."""
    h = qa_history

    def read(_attempt: int) -> list[HistoryEntry]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(select(h).where(h.c.review_id == review_id).order_by(h.c.id)).all()
        return [HistoryEntry(at=r.at, actor=r.actor, actor_role=r.actor_role, action=r.action, finding_id=r.finding_id,
                             dispute_id=r.dispute_id, reason=r.reason, detail=json.loads(r.detail)) for r in rows]

    return store.db.retrying(read)
