"""Which worker is auditing which job, across processes and machines (audit_engine=celery).

A job is claimed in the database by one conditional UPDATE: `queued → running`, or a `running` job whose
claim has lapsed → `running` again. The new `started_at` is the claim's fencing token: every later write
of the claimant (progress, the result) is conditional on it, so a worker that lost its claim can no longer
touch the job, and a job that is done stays done (a redelivered task finds nothing to do).

Liveness is a lease in Redis (the broker's server): one key per running job, its value the owner, renewed
by the owner every third of its lifetime. A killed worker's lease lapses; any live worker then puts the
job back to `queued` and sends its task again (`requeue_lapsed`). The set of claimed job ids lets that
sweep look only at jobs the workers hold. The audit tables need no owner column: the owner is in the lease.

Every database step rides out a brief outage under the database's retry (CALLWATCH_DATABASE_RETRY_S); the
conditional updates are `AuditJobs.move`, which tells a retry of its own committed move from a rival's.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from service.persistence.audit_jobs import AuditJobs, JobState
from service.persistence.call_store import CallStore

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
        self.jobs = AuditJobs(store.db)
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)
        self.owner = owner or default_owner()
        self._renew = redis.register_script(_RENEW)
        self._drop = redis.register_script(_DROP)
        self._forget = redis.register_script(_FORGET)

    def claim(self, job_id: str) -> tuple[ClaimOutcome, Claim | None]:
        was = self.jobs.state(job_id)
        if was is None:
            return ClaimOutcome.MISSING, None
        if was.state in TERMINAL:
            return ClaimOutcome.FINISHED, None
        key = lease_key(job_id)
        lease = f"{self.owner}/{uuid.uuid4().hex[:8]}"
        if not self.redis.set(key, lease, nx=True, px=self.lease_ms):
            return ClaimOutcome.BUSY, None
        self.redis.sadd(CLAIMED_SET, job_id)
        started = _now()
        taken = self.jobs.move(job_id, was, then=JobState("running", started),
                               values=dict(state="running", started_at=started, progress=0.0, finished_at=None,
                                           error=None, error_code=None))
        if taken:
            return ClaimOutcome.CLAIMED, Claim(job_id, lease, started)
        # Another worker moved the job between our read and our update (finished it, or put it back).
        self.redis.srem(CLAIMED_SET, job_id)
        self._drop(keys=[key], args=[lease])
        again = self.jobs.state(job_id)
        return (ClaimOutcome.FINISHED if again is not None and again.state in TERMINAL else ClaimOutcome.BUSY), None

    def _fenced(self, claim: Claim, values: dict[str, Any], then: str) -> bool:
        """Write `values` if this claim still holds the job (state `then` afterwards)."""
        return self.jobs.move(claim.job_id, JobState("running", claim.started_at), values=values,
                              then=JobState(then, claim.started_at))

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
            row = self.jobs.state(job_id)
            if row is not None and row.state == "running":
                if self.jobs.move(job_id, row, then=JobState("queued", None),
                                  values={"state": "queued", "started_at": None, "progress": 0.0}):
                    requeued.append(job_id)
            elif row is not None and row.state == "queued":
                requeued.append(job_id)  # its claimant died before taking it: its task may be in a dead worker
            self._forget(keys=[key, CLAIMED_SET], args=[job_id])
        return requeued
