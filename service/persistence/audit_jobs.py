"""The audit queue's rows: batches, one job per file, written as each job moves, so the web page, REST, a
resumed process and the workers on other machines (audit_engine=celery) all see the same thing.

A worker claims a job by one conditional update (`move`): `queued → running`, or a `running` job whose claim
has lapsed → `running` again, with a new `started_at` that fences out the previous claimant (its later
writes are conditional on its own `started_at`). A conditional update is not simply repeatable under the
outage retry: a retry after a commit that lost its answer finds the row already moved, so it checks whether
the row is as its own first try would have left it. Reads and plain updates are repeatable as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.engine import Connection

from service.persistence.engine import Database
from service.persistence.tables import audit_batches, audit_jobs


@dataclass(frozen=True)
class JobState:
    """Where a job stands, as a claim compares it: its state and the `started_at` of its current claim."""

    state: str
    started_at: datetime | None


class AuditJobs:
    def __init__(self, db: Database):
        self.db = db

    # --- batches -----------------------------------------------------------------------

    def add_batch(self, batch: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """A batch row and its job rows, in one transaction (a retry finds the batch its first try stored)."""
        def write(conn: Connection, attempt: int) -> None:
            if attempt > 0 and conn.execute(select(audit_batches.c.batch_id)
                                            .where(audit_batches.c.batch_id == batch["batch_id"])).first():
                return
            conn.execute(insert(audit_batches).values(**batch))
            if jobs:
                conn.execute(insert(audit_jobs), jobs)

        self.db.write_once(write)

    def batch(self, batch_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The batch row and its jobs' rows (in the order they were queued), or None."""
        def read(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            b = conn.execute(select(audit_batches).where(audit_batches.c.batch_id == batch_id)).mappings().first()
            if b is None:
                return None
            rows = conn.execute(select(audit_jobs).where(audit_jobs.c.batch_id == batch_id)
                                .order_by(audit_jobs.c.created_at, audit_jobs.c.file_name)).mappings().all()
            return dict(b), [dict(r) for r in rows]

        return self.db.read(read)

    def batch_tenant(self, batch_id: str) -> str | None:
        """The tenant a batch was queued under (None: deployment-wide, or no such batch)."""
        raw = self.db.read(lambda conn: conn.execute(
            select(audit_batches.c.options).where(audit_batches.c.batch_id == batch_id)).scalar())
        return json.loads(raw).get("tenant") if raw else None

    # --- jobs --------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.read(lambda conn: conn.execute(
            select(audit_jobs).where(audit_jobs.c.job_id == job_id)).mappings().first())
        return dict(row) if row is not None else None

    def jobs_of(self, batch_id: str) -> list[dict[str, Any]]:
        return self.db.read(lambda conn: [dict(r) for r in conn.execute(
            select(audit_jobs).where(audit_jobs.c.batch_id == batch_id)).mappings()])

    def job_to_run(self, job_id: str) -> dict[str, Any] | None:
        """The job's row with its batch's `options` and `rules_name`: all another process needs to run it."""
        return self.db.read(lambda conn: _first(conn.execute(_with_batch().where(audit_jobs.c.job_id == job_id))))

    def jobs_to_resume(self, states: Sequence[str], sources: Sequence[str]) -> list[dict[str, Any]]:
        """Jobs in `states` of batches from `sources`, each with its batch's `options` and `rules_name`."""
        return self.db.read(lambda conn: [dict(r) for r in conn.execute(_with_batch().where(
            audit_jobs.c.state.in_(states), audit_batches.c.source.in_(sources))).mappings()])

    def update_job(self, job_id: str, **values: Any) -> None:
        """Overwrite columns of a job (the local engine, whose one process owns its running jobs)."""
        self.db.write(lambda conn: conn.execute(update(audit_jobs).where(audit_jobs.c.job_id == job_id).values(**values)))

    def count_by_state(self, *, within_s: float | None = None) -> dict[str, int]:
        """How many jobs are in each state (the states without jobs are absent)."""
        rows = self.db.read(lambda conn: conn.execute(
            select(audit_jobs.c.state, func.count()).group_by(audit_jobs.c.state)).all(), within_s=within_s)
        return {state: int(count) for state, count in rows}

    # --- claims ------------------------------------------------------------------------

    def state(self, job_id: str) -> JobState | None:
        row = self.db.read(lambda conn: conn.execute(select(audit_jobs.c.state, audit_jobs.c.started_at)
                                                     .where(audit_jobs.c.job_id == job_id)).first())
        return JobState(row.state, row.started_at) if row is not None else None

    def move(self, job_id: str, was: JobState, values: dict[str, Any], then: JobState) -> bool:
        """Write `values` to the job if it still stands at `was`; True if it did. `then` is where those
        values leave it: on a retry, a job already there was moved by our own earlier try."""
        def write(conn: Connection, attempt: int) -> bool:
            moved = conn.execute(update(audit_jobs).where(audit_jobs.c.job_id == job_id, *_at(was)).values(**values))
            if moved.rowcount == 1:
                return True
            if attempt == 0:
                return False
            return conn.execute(select(audit_jobs.c.job_id)
                                .where(audit_jobs.c.job_id == job_id, *_at(then))).first() is not None

        return self.db.write_once(write)


def _at(where: JobState) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    started = (audit_jobs.c.started_at.is_(None) if where.started_at is None
               else audit_jobs.c.started_at == where.started_at)
    return audit_jobs.c.state == where.state, started


def _with_batch() -> Any:
    return (select(audit_jobs, audit_batches.c.options, audit_batches.c.rules_name)
            .join(audit_batches, audit_batches.c.batch_id == audit_jobs.c.batch_id))


def _first(result: Any) -> dict[str, Any] | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None
