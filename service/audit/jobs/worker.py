"""An audit worker process (`callwatch audit-worker`, audit_engine=celery).

One Runtime (the models, loaded once), one event loop in its own thread on which the jobs in flight share
the one recogniser (as the in-process queue does), a Celery consumer whose pool threads hand their job to
that loop and wait, and a keeper thread that renews this process's claims, writes the progress of its
running jobs to the database (the server reads it there) and queues again the jobs of workers that died.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from rules.engine import RuleBook
from service.audit.jobs.claims import Claim, JobClaims, default_owner
from service.audit.jobs.queue import StoredJob, load_job
from service.audit.running.rulesets import book_from_text
from service.audit.running.runner import audit_recording

log = logging.getLogger("callwatch.audit")
PROGRESS_EVERY_S = 1.0
MAX_BOOKS = 16


@dataclass
class _Running:
    claim: Claim
    progress: float = 0.0
    written: float = 0.0

    def set_progress(self, value: float) -> None:
        self.progress = value


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AuditJobRunner:
    """Runs audit jobs handed over by the Celery pool threads; `run` blocks its thread until the job ends."""

    def __init__(self, runtime: Any, claims: JobClaims, send: Callable[[list[str]], None]):
        self.runtime = runtime
        self.claims = claims
        self.send = send
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="audit-loop", daemon=True)
        self._keeper = threading.Thread(target=self._keep, name="audit-claims", daemon=True)
        self._stopping = threading.Event()
        self._running: dict[str, _Running] = {}
        self._books: dict[tuple[str, str | None], RuleBook] = {}

    def start(self) -> None:
        self._loop_thread.start()
        self._keeper.start()

    def close(self) -> None:
        self._stopping.set()
        self._keeper.join(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(timeout=10)

    def run(self, job_id: str) -> str:
        return asyncio.run_coroutine_threadsafe(self._run(job_id), self.loop).result()

    def _book(self, job: StoredJob) -> RuleBook:
        key = (job.rules_name, job.rules_text)
        if key not in self._books:
            if len(self._books) >= MAX_BOOKS:
                self._books.clear()
            self._books[key] = book_from_text(job.rules_text, job.rules_name, self.runtime)
        return self._books[key]

    async def _run(self, job_id: str) -> str:
        outcome, claim = await asyncio.to_thread(self.claims.claim, job_id)
        if claim is None:
            log.info("audit job %s %s, nothing to do (%s)", job_id, outcome.value, self.claims.owner)
            return outcome.value
        running = _Running(claim)
        self._running[job_id] = running
        file_name = job_id
        try:
            job = await asyncio.to_thread(load_job, self.runtime.store, job_id)
            assert job is not None  # it was claimed a moment ago
            file_name = job.file.file_name
            log.info("audit job %s claimed by %s: %s", job_id, self.claims.owner, file_name)
            result = await audit_recording(
                self.runtime, job.file.path, meta=job.file.meta, options=job.options, book=self._book(job),
                file_name=file_name, on_progress=running.set_progress, job_id=job_id, worker=self.claims.owner,
            )
            values: dict[str, Any] = dict(state=result.state, progress=1.0, call_id=result.call_id,
                                          error_code=result.error_code, error=result.error,
                                          audio_seconds=result.audio_seconds, finished_at=_now())
        except Exception:  # the worker must survive anything a job does
            log.exception("audit job %s (%s) failed", job_id, file_name)
            values = dict(state="failed", error_code="internal", error="审核失败 (internal error)", finished_at=_now())
        finally:
            self._running.pop(job_id, None)
        if await asyncio.to_thread(self.claims.finish, claim, **values):
            log.info("audit job %s %s by %s: %s", job_id, values["state"], self.claims.owner, file_name)
            return str(values["state"])
        log.warning("audit job %s: %s lost its claim (lease lapsed); another worker has it", job_id, self.claims.owner)
        return "lost"

    # --- the keeper thread -------------------------------------------------------------

    def _keep(self) -> None:
        lease_s = self.claims.lease_ms / 1000
        tick = min(PROGRESS_EVERY_S, lease_s / 6)
        renewed = swept = 0.0
        while not self._stopping.wait(tick):
            now = time.monotonic()
            try:
                if now - renewed >= lease_s / 3:
                    renewed = now
                    for job_id, running in list(self._running.items()):
                        if not self.claims.renew(running.claim):
                            log.warning("audit job %s: %s could not renew its claim", job_id, self.claims.owner)
                for running in list(self._running.values()):
                    if running.progress != running.written:
                        running.written = running.progress
                        self.claims.progress(running.claim, round(running.progress, 4))
                if now - swept >= lease_s / 2:
                    swept = now
                    lapsed = self.claims.requeue_lapsed()
                    if lapsed:
                        log.warning("queued again %d job(s) whose worker stopped: %s", len(lapsed), ", ".join(lapsed))
                        self.send(lapsed)
            except Exception:  # Redis or the database away for a moment: the next tick tries again
                log.exception("audit worker keeper")


def node_name(name: str | None) -> str:
    return name or f"audit{os.getpid()}@{socket.gethostname()}"


def run_worker(runtime: Any, *, concurrency: int, pool: str, name: str | None, loglevel: str) -> int:
    """Consume audit jobs until stopped (SIGTERM: finish the files in flight, then exit). Returns the exit
    code."""
    import redis

    from service.audit.jobs.celery_app import QUEUE, CeleryDispatcher, make_celery

    settings = runtime.settings
    node = node_name(name)
    client = redis.Redis.from_url(settings.audit_broker_url)
    claims = JobClaims(runtime.store, client, settings.audit_lease_s, owner=default_owner(node))
    dispatcher = CeleryDispatcher(settings)
    runner = AuditJobRunner(runtime, claims, dispatcher.send)
    app = make_celery(settings, runner)
    runner.start()
    try:
        worker = app.Worker(hostname=node, pool_cls=pool, concurrency=concurrency, loglevel=loglevel, queues=[QUEUE],
                            without_gossip=True, without_mingle=True, without_heartbeat=True)
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        runner.close()
        dispatcher.close()
        client.close()
