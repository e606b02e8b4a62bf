"""Every statement of calibration (docs/qa.md, Calibration): a calibration of one call with its reviewers, each
reviewer's own decisions and added findings, and what the result is computed from. The routes decide who may
see what (blindness included); this module stores it and never mixes one reviewer's work into another's view.

The call's automatic findings are copied once when the calibration is made, as a review copies them, and are
every reviewer's; a reviewer's decisions are rows of its own (none: pending), and a finding it adds carries its
name. Each operation is one transaction under the store's outage retry; writes lock the reviewer's row of the
calibration (`FOR UPDATE` on PostgreSQL) so a late decision and the submit cannot both pass their checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from service.access.keys import Principal
from service.qa.calibration_models import (
    CalibrationFinding,
    CalibrationOut,
    CalibrationReviewer,
    MyCalibration,
    MyCalibrationSummary,
)
from service.qa.calibration_result import AutomaticFinding, SubmittedScoring
from service.qa.errors import Conflict, NotFound
from service.qa.plan_models import ReviewProgress
from service.persistence.qa_work_tables import (
    qa_calibration_decisions,
    qa_calibration_findings,
    qa_calibration_reviewers,
    qa_calibrations,
)
from service.persistence.call_store import CallStore

MAX_LIST = 500
Scorer = Callable[[list[str]], float | None]


@dataclass(frozen=True)
class CalibrationOwner:
    """Whose calibration it is: what access is decided on."""

    calibration_id: str
    call_key: str
    call_tenant: str | None
    agent_id: str
    scope_tenant: str | None
    reviewers: dict[str, str]  # reviewer → open | submitted

    def takes_part(self, principal: Principal) -> bool:
        """Whether the principal is one of its reviewers: its name, within the supervisor's tenant."""
        return principal.name in self.reviewers and principal.tenant == self.scope_tenant


@dataclass(frozen=True)
class ResultInputs:
    automatic_score: float | None
    automatic: list[AutomaticFinding]
    submitted: list[tuple[SubmittedScoring, datetime, float | None]]  # with when, and its score


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _progress(state: str, started_at: datetime | None) -> ReviewProgress:
    return "submitted" if state == "submitted" else "in_progress" if started_at is not None else "not_started"


def create(store: CallStore, *, call_key: str, call_tenant: str | None, agent_id: str, scope_tenant: str | None,
           automatic_score: float | None, findings: Sequence[Mapping[str, Any]], reviewers: Sequence[str],
           note: str | None, actor: Principal) -> str:
    """Store a calibration of a call with its report's findings; its id."""
    calibration_id, now = uuid.uuid4().hex, _now()

    def write(attempt: int) -> str:
        with store.db.engine.begin() as conn:
            if attempt > 0 and conn.execute(select(qa_calibrations.c.calibration_id)
                                            .where(qa_calibrations.c.calibration_id == calibration_id)).first():
                return calibration_id
            conn.execute(insert(qa_calibrations).values(
                calibration_id=calibration_id, call_id=call_key, call_tenant=call_tenant, agent_id=agent_id,
                scope_tenant=scope_tenant, note=note, automatic_score=automatic_score, created_by=actor.name,
                created_by_role=actor.role, created_at=now))
            conn.execute(insert(qa_calibration_reviewers), [
                {"calibration_id": calibration_id, "reviewer": r, "position": i, "state": "open"}
                for i, r in enumerate(reviewers)])
            if findings:
                conn.execute(insert(qa_calibration_findings), [
                    {"calibration_id": calibration_id, "source": "automatic", "rule_id": str(f["rule_id"]),
                     "severity": str(f.get("severity", "")), "t": float(f.get("t", 0.0)), "end": f.get("end"),
                     "detail": f.get("detail")} for f in findings])
        return calibration_id

    return store.db.retrying(write)


# ---------------------------------------------------------------- reading


def owner(store: CallStore, calibration_id: str) -> CalibrationOwner | None:
    def read(_attempt: int) -> CalibrationOwner | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_calibrations).where(qa_calibrations.c.calibration_id == calibration_id)).first()
            if row is None:
                return None
            return _owner(conn, row)

    return store.db.retrying(read)


def _owner(conn: Connection, row: Any) -> CalibrationOwner:
    r = qa_calibration_reviewers.c
    states = dict(conn.execute(select(r.reviewer, r.state).where(r.calibration_id == row.calibration_id)).all())
    return CalibrationOwner(row.calibration_id, row.call_id, row.call_tenant, row.agent_id, row.scope_tenant, states)


def _calibration_out(conn: Connection, row: Any) -> CalibrationOut:
    r = qa_calibration_reviewers.c
    reviewers = conn.execute(select(qa_calibration_reviewers).where(r.calibration_id == row.calibration_id)
                             .order_by(r.position)).all()
    return CalibrationOut(
        calibration_id=row.calibration_id, call_id=row.call_id, agent_id=row.agent_id, note=row.note,
        automatic_score=row.automatic_score, created_by=row.created_by, created_at=row.created_at,
        reviewers=[CalibrationReviewer(reviewer=x.reviewer, state=_progress(x.state, x.started_at),
                                       submitted_at=x.submitted_at) for x in reviewers])


def get(store: CallStore, calibration_id: str) -> CalibrationOut | None:
    def read(_attempt: int) -> CalibrationOut | None:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_calibrations).where(qa_calibrations.c.calibration_id == calibration_id)).first()
            return _calibration_out(conn, row) if row is not None else None

    return store.db.retrying(read)


def list_calibrations(store: CallStore, call_tenant: str | None) -> list[tuple[CalibrationOwner, CalibrationOut]]:
    """Calibrations of `call_tenant`'s calls (None: every call's), newest first, at most MAX_LIST."""
    c = qa_calibrations.c

    def read(_attempt: int) -> list[tuple[CalibrationOwner, CalibrationOut]]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(select(qa_calibrations).where(*([c.call_tenant == call_tenant] if call_tenant is not None else []))
                                .order_by(c.created_at.desc(), c.calibration_id).limit(MAX_LIST)).all()
            return [(_owner(conn, row), _calibration_out(conn, row)) for row in rows]

    return store.db.retrying(read)


@dataclass(frozen=True)
class Assignment:
    summary: MyCalibrationSummary
    call_tenant: str | None


def assigned_to(store: CallStore, reviewer: str, scope_tenant: str | None) -> list[Assignment]:
    """The calibrations a reviewer (its name within `scope_tenant`) takes part in, oldest first."""
    c, r = qa_calibrations.c, qa_calibration_reviewers.c
    of_tenant = c.scope_tenant.is_(None) if scope_tenant is None else c.scope_tenant == scope_tenant

    def read(_attempt: int) -> list[Assignment]:
        with store.db.engine.connect() as conn:
            rows = conn.execute(select(qa_calibrations, r.state, r.started_at, r.submitted_at)
                                .join(qa_calibration_reviewers, r.calibration_id == c.calibration_id)
                                .where(r.reviewer == reviewer, of_tenant)
                                .order_by(c.created_at, c.calibration_id).limit(MAX_LIST)).all()
        return [Assignment(MyCalibrationSummary(
            calibration_id=x.calibration_id, call_id=x.call_id, agent_id=x.agent_id, created_by=x.created_by,
            created_at=x.created_at, state=_progress(x.state, x.started_at), submitted_at=x.submitted_at),
            x.call_tenant) for x in rows]

    return store.db.retrying(read)


def _visible_findings(calibration_id: str, reviewer: str) -> Any:
    """The findings a reviewer sees: the automatic ones and those it added, never another reviewer's."""
    f = qa_calibration_findings.c
    return (f.calibration_id == calibration_id) & or_(f.source == "automatic", f.added_by == reviewer)


def my_calibration(store: CallStore, calibration_id: str, reviewer: str) -> MyCalibration:
    """A reviewer's own view: the automatic findings and its added ones, with its own decisions only."""
    f, d, r = qa_calibration_findings.c, qa_calibration_decisions.c, qa_calibration_reviewers.c

    def read(_attempt: int) -> MyCalibration:
        with store.db.engine.connect() as conn:
            row = conn.execute(select(qa_calibrations).where(qa_calibrations.c.calibration_id == calibration_id)).first()
            mine = conn.execute(select(qa_calibration_reviewers)
                                .where(r.calibration_id == calibration_id, r.reviewer == reviewer)).first()
            if row is None or mine is None:
                raise NotFound("no such calibration")
            findings = conn.execute(
                select(qa_calibration_findings, d.decision, d.reason, d.decided_at)
                .outerjoin(qa_calibration_decisions, (d.finding_id == f.finding_id) & (d.reviewer == reviewer)
                           & (d.calibration_id == calibration_id))
                .where(_visible_findings(calibration_id, reviewer)).order_by(f.t, f.finding_id)).mappings().all()
        return MyCalibration(
            calibration_id=row.calibration_id, call_id=row.call_id, agent_id=row.agent_id, note=row.note,
            reviewer=reviewer, state=_progress(mine.state, mine.started_at), submitted_at=mine.submitted_at,
            automatic_score=row.automatic_score, score=mine.score,
            findings=[CalibrationFinding(
                finding_id=x["finding_id"], source=x["source"], rule_id=x["rule_id"], severity=x["severity"], t=x["t"],
                end=x["end"], detail=x["detail"], note=x["note"], decision=x["decision"] or "pending", reason=x["reason"],
                decided_at=x["decided_at"], counted=x["decision"] == "confirmed") for x in findings])

    return store.db.retrying(read)


# ---------------------------------------------------------------- a reviewer's work


def _locked_open(conn: Connection, calibration_id: str, reviewer: str) -> Any:
    r = qa_calibration_reviewers.c
    mine = conn.execute(select(qa_calibration_reviewers).where(r.calibration_id == calibration_id, r.reviewer == reviewer)
                        .with_for_update()).first()
    if mine is None:
        raise NotFound("no such calibration")
    if mine.state != "open":
        raise Conflict("you have submitted this calibration: your decisions are final")
    return mine


def _started(conn: Connection, calibration_id: str, reviewer: str, mine: Any, now: datetime) -> None:
    if mine.started_at is None:
        r = qa_calibration_reviewers.c
        conn.execute(update(qa_calibration_reviewers).where(r.calibration_id == calibration_id, r.reviewer == reviewer)
                     .values(started_at=now))


def _upsert_decision(conn: Connection, calibration_id: str, reviewer: str, finding_id: int, decision: str,
                     reason: str | None, now: datetime) -> None:
    d = qa_calibration_decisions.c
    where = (d.calibration_id == calibration_id, d.reviewer == reviewer, d.finding_id == finding_id)
    done = conn.execute(update(qa_calibration_decisions).where(*where)
                        .values(decision=decision, reason=reason, decided_at=now))
    if done.rowcount == 0:
        conn.execute(insert(qa_calibration_decisions).values(calibration_id=calibration_id, reviewer=reviewer,
                                                             finding_id=finding_id, decision=decision, reason=reason,
                                                             decided_at=now))


def decide(store: CallStore, calibration_id: str, reviewer: str, finding_id: int, decision: str,
           reason: str | None) -> None:
    """Confirm or reject a finding the reviewer sees (an automatic one, or one it added: rejecting that takes it
    back). It may change its mind until it submits."""
    f = qa_calibration_findings.c
    now = _now()

    def write(_attempt: int) -> None:  # an upsert of the same values: safe to repeat
        with store.db.engine.begin() as conn:
            mine = _locked_open(conn, calibration_id, reviewer)
            seen = conn.execute(select(f.finding_id).where(f.finding_id == finding_id,
                                                           _visible_findings(calibration_id, reviewer))).first()
            if seen is None:
                raise NotFound("no such finding in this calibration")
            _upsert_decision(conn, calibration_id, reviewer, finding_id, decision, reason, now)
            _started(conn, calibration_id, reviewer, mine, now)

    store.db.retrying(write)


def add_finding(store: CallStore, calibration_id: str, reviewer: str, rule_id: str, severity: str, t: float,
                note: str) -> int:
    """A finding the reviewer says the system missed; it counts (confirmed) and only this reviewer sees it until
    the result. Its id."""
    f = qa_calibration_findings.c
    now = _now()

    def write(attempt: int) -> int:
        with store.db.engine.begin() as conn:
            mine = _locked_open(conn, calibration_id, reviewer)
            if attempt > 0:  # the same finding, stored by a try whose commit got through
                same = conn.execute(select(f.finding_id).where(
                    f.calibration_id == calibration_id, f.added_by == reviewer, f.rule_id == rule_id, f.t == t,
                    f.note == note)).scalar()
                if same is not None:
                    return int(same)
            inserted = conn.execute(insert(qa_calibration_findings).values(
                calibration_id=calibration_id, source="added", added_by=reviewer, rule_id=rule_id, severity=severity,
                t=t, note=note)).inserted_primary_key
            assert inserted is not None
            finding_id = int(inserted[0])
            _upsert_decision(conn, calibration_id, reviewer, finding_id, "confirmed", None, now)
            _started(conn, calibration_id, reviewer, mine, now)
        return finding_id

    return store.db.retrying(write)


def _counted_rules(conn: Connection, calibration_id: str, reviewer: str) -> list[str]:
    f, d = qa_calibration_findings.c, qa_calibration_decisions.c
    return list(conn.execute(
        select(f.rule_id).join(qa_calibration_decisions, d.finding_id == f.finding_id)
        .where(d.calibration_id == calibration_id, d.reviewer == reviewer, d.decision == "confirmed")
        .order_by(f.finding_id)).scalars())


def submit(store: CallStore, calibration_id: str, reviewer: str, score: Scorer) -> None:
    """Close the reviewer's scoring: every automatic finding decided; its score kept."""
    f, d, r = qa_calibration_findings.c, qa_calibration_decisions.c, qa_calibration_reviewers.c
    now = _now()

    def write(attempt: int) -> None:
        with store.db.engine.begin() as conn:
            if attempt > 0 and conn.execute(select(r.state).where(
                    r.calibration_id == calibration_id, r.reviewer == reviewer)).scalar() == "submitted":
                return  # an earlier try's commit got through
            _locked_open(conn, calibration_id, reviewer)
            decided = select(d.finding_id).where(d.calibration_id == calibration_id, d.reviewer == reviewer)
            pending = list(conn.execute(select(f.finding_id).where(
                f.calibration_id == calibration_id, f.source == "automatic", f.finding_id.not_in(decided))
                .order_by(f.finding_id)).scalars())
            if pending:
                raise Conflict(f"confirm or reject every automatic finding first; pending: {pending}")
            conn.execute(update(qa_calibration_reviewers).where(r.calibration_id == calibration_id, r.reviewer == reviewer)
                         .values(state="submitted", submitted_at=now,
                                 score=score(_counted_rules(conn, calibration_id, reviewer))))

    store.db.retrying(write)


def result_inputs(store: CallStore, calibration_id: str) -> ResultInputs:
    """The automatic findings and every submitted reviewer's decisions, in the calibration's reviewer order."""
    f, d, r = qa_calibration_findings.c, qa_calibration_decisions.c, qa_calibration_reviewers.c

    def read(_attempt: int) -> ResultInputs:
        with store.db.engine.connect() as conn:
            automatic_score = conn.execute(select(qa_calibrations.c.automatic_score)
                                           .where(qa_calibrations.c.calibration_id == calibration_id)).scalar()
            # `t` labelled: Row.t is the row as a tuple, not the column.
            automatic = [AutomaticFinding(x.finding_id, x.rule_id, x.at) for x in conn.execute(
                select(f.finding_id, f.rule_id, f.t.label("at")).where(f.calibration_id == calibration_id,
                                                                       f.source == "automatic")
                .order_by(f.t, f.finding_id))]
            done = conn.execute(select(r.reviewer, r.submitted_at, r.score)
                                .where(r.calibration_id == calibration_id, r.state == "submitted")
                                .order_by(r.position)).all()
            decisions: dict[str, dict[int, str]] = {x.reviewer: {} for x in done}
            added: dict[str, list[str]] = {x.reviewer: [] for x in done}
            for who, finding_id, decision, source, rule_id in conn.execute(
                    select(d.reviewer, d.finding_id, d.decision, f.source, f.rule_id)
                    .join(qa_calibration_findings, f.finding_id == d.finding_id)
                    .where(d.calibration_id == calibration_id)):
                if who not in decisions:
                    continue  # not submitted: its work stays its own
                if source == "automatic":
                    decisions[who][finding_id] = decision
                elif decision == "confirmed":
                    added[who].append(rule_id)
        return ResultInputs(automatic_score, automatic, [
            (SubmittedScoring(x.reviewer, decisions[x.reviewer], added[x.reviewer]), x.submitted_at, x.score)
            for x in done])

    return store.db.retrying(read)
