"""Which worker is auditing which job, across processes and machines (audit_engine=celery).

A job is claimed in the database by one conditional UPDATE: `queued → running`, or a `running` job whose
claim has lapsed → `running` again. The new `started_at` is the claim's fencing token: every later write
of the claimant (progress, the result) is conditional on it, so a worker that lost its claim can no longer
touch the job, and a job that is done stays done (a redelivered task finds nothing to do).

Liveness is a lease in Redis (the broker's server): one key per running job, its value the owner, renewed
by the owner every third of its lifetime. A killed worker's lease lapses; any live worker then puts the
job back to `queued` and sends its task again (`requeue_lapsed`). The set of claimed job ids lets that
sweep look only at jobs the workers hold. The audit tables need no owner column: the owner is in the lease.

Every database step rides out a brief outage under the store's retry (CALLWATCH_DATABASE_RETRY_S). The
conditional updates are not simply repeatable: a retry after a commit that lost its answer finds the row
already moved, so it checks whether the row is as its own first try would have left it.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update

from service.persistence.call_store import CallStore
from service.persistence.tables import audit_jobs

KEY_PREFIX = "callwatch:audit:"
CLAIMED_SET = KEY_PREFIX + "claimed"
TERMINAL = ("done", "skipped", "failed")

# Compare-and-act on a lease, so a worker never renews or drops a lease another worker now holds.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_DROP = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Forget a claimed job only while nobody holds its lease (a new claimant may have just taken it).
_FORGET = "if redis.call('exists', KEYS[1]) == 0 then return redis.call('srem', KEYS[2], ARGV[1]) end return 0"


class ClaimOutcome(str, enum.Enum):
    CLAIMED = "claimed"
    FINISHED = "finished"  # done, skipped or failed already: a redelivered task has nothing to do
    BUSY = "busy"  # a live worker holds it
    MISSING = "missing"  # no such job (its batch was removed)


@dataclass(frozen=True)
class Claim:
    job_id: str
    lease: str  # the lease key's value: owner and a random tag
    started_at: datetime  # the fencing token in the database


def lease_key(job_id: str) -> str:
    return f"{KEY_PREFIX}lease:{job_id}"


def default_owner(node: str | None = None) -> str:
    return f"{node or socket.gethostname()}/{os.getpid()}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobClaims:
    def __init__(self, store: CallStore, redis: Any, lease_s: float, owner: str | None = None):
        self.store = store
        self.engine = store.engine
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)
        self.owner = owner or default_owner()
        self._renew = redis.register_script(_RENEW)
        self._drop = redis.register_script(_DROP)
        self._forget = redis.register_script(_FORGET)

    def _row(self, job_id: str) -> Any:
        def read(_attempt: int) -> Any:
            with self.engine.connect() as conn:
                return conn.execute(select(audit_jobs.c.state, audit_jobs.c.started_at)
                                    .where(audit_jobs.c.job_id == job_id)).first()

        return self.store.retrying(read)

    def _moved(self, job_id: str, *where: Any, values: dict[str, Any], attempt: int,
               then: tuple[str, datetime | None]) -> bool:
        """One conditional update of the job's row; True if it moved it. On a retry (`attempt` > 0) a row
        already in state `then` (state, started_at) was moved by our own earlier try."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(audit_jobs).where(audit_jobs.c.job_id == job_id, *where).values(**values))
            if moved.rowcount == 1:
                return True
            if attempt == 0:
                return False
            state, started = then
            was = audit_jobs.c.started_at.is_(None) if started is None else audit_jobs.c.started_at == started
            return conn.execute(select(audit_jobs.c.job_id)
                                .where(audit_jobs.c.job_id == job_id, audit_jobs.c.state == state, was)).first() is not None

    def claim(self, job_id: str) -> tuple[ClaimOutcome, Claim | None]:
        row = self._row(job_id)
        if row is None:
            return ClaimOutcome.MISSING, None
        if row.state in TERMINAL:
            return ClaimOutcome.FINISHED, None
        key = lease_key(job_id)
        lease = f"{self.owner}/{uuid.uuid4().hex[:8]}"
        if not self.redis.set(key, lease, nx=True, px=self.lease_ms):
            return ClaimOutcome.BUSY, None
        self.redis.sadd(CLAIMED_SET, job_id)
        started = _now()
        was = audit_jobs.c.started_at.is_(None) if row.started_at is None else audit_jobs.c.started_at == row.started_at
        taken = self.store.retrying(lambda attempt: self._moved(
            job_id, audit_jobs.c.state == row.state, was, attempt=attempt, then=("running", started),
            values=dict(state="running", started_at=started, progress=0.0, finished_at=None, error=None,
                        error_code=None)))
        if taken:
            return ClaimOutcome.CLAIMED, Claim(job_id, lease, started)
        # Another worker moved the job between our read and our update (finished it, or put it back).
        self.redis.srem(CLAIMED_SET, job_id)
        self._drop(keys=[key], args=[lease])
        again = self._row(job_id)
        return (ClaimOutcome.FINISHED if again is not None and again.state in TERMINAL else ClaimOutcome.BUSY), None

    def _fenced(self, claim: Claim, values: dict[str, Any], then: str) -> bool:
        """Write `values` if this claim still holds the job (state `then` afterwards)."""
        return self.store.retrying(lambda attempt: self._moved(
            claim.job_id, audit_jobs.c.state == "running", audit_jobs.c.started_at == claim.started_at,
            values=values, attempt=attempt, then=(then, claim.started_at)))

    def renew(self, claim: Claim) -> bool:
        """False once the lease is gone or another worker's: this worker's writes will then be refused."""
        return bool(self._renew(keys=[lease_key(claim.job_id)], args=[claim.lease, self.lease_ms]))

    def progress(self, claim: Claim, value: float) -> bool:
        return self._fenced(claim, {"progress": value}, then="running")

    def finish(self, claim: Claim, **values: Any) -> bool:
        """Write the job's outcome if this claim still holds it; then let the lease go."""
        written = self._fenced(claim, values, then=values.get("state", "running"))
        self.redis.srem(CLAIMED_SET, claim.job_id)
        self._drop(keys=[lease_key(claim.job_id)], args=[claim.lease])
        return written

    def owner_of(self, job_id: str) -> str | None:
        """The worker holding the job's lease (`node/pid`), or None."""
        raw = self.redis.get(lease_key(job_id))
        if raw is None:
            return None
        return (raw.decode() if isinstance(raw, bytes) else raw).rsplit("/", 1)[0]

    def requeue_lapsed(self) -> list[str]:
        """Put back to `queued` the running jobs whose worker stopped renewing its lease (killed, machine
        gone); returns their ids, for the caller to send their tasks again. Any number of workers may sweep
        at once: the conditional update lets one of them requeue a job."""
        requeued = []
        for raw in self.redis.smembers(CLAIMED_SET):
            job_id = raw.decode() if isinstance(raw, bytes) else raw
            key = lease_key(job_id)
            if self.redis.exists(key):
                continue
            row = self._row(job_id)
            if row is not None and row.state == "running":
                lapsed = (audit_jobs.c.state == "running", audit_jobs.c.started_at == row.started_at)
                # Run at once, inside this iteration: the lambda needs no bound copies of the loop's names.
                done = self.store.retrying(lambda attempt: self._moved(
                    job_id, *lapsed, attempt=attempt, then=("queued", None),
                    values={"state": "queued", "started_at": None, "progress": 0.0}))
                if done:
                    requeued.append(job_id)
            elif row is not None and row.state == "queued":
                requeued.append(job_id)  # its claimant died before taking it: its task may be in a dead worker
            self._forget(keys=[key, CLAIMED_SET], args=[job_id])
        return requeued
