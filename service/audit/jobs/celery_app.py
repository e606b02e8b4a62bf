"""The Celery side of bulk audits (audit_engine=celery): the app's configuration, the one task, and the
dispatcher the server and the command line send jobs with.

A task carries only a job id: the job (file, metadata, options, rules) is in the shared database. Delivery
is at least once (acks_late: a task is acknowledged after it ran, so a worker that dies mid-file leaves it
to be delivered again); `service.audit.jobs.claims` makes a second delivery of a finished or running job a no-op,
so each file is audited to completion once.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from celery import Celery

log = logging.getLogger("callwatch.audit")
TASK_NAME = "callwatch.audit.job"
QUEUE = "callwatch-audit"


class JobRunner(Protocol):
    def run(self, job_id: str) -> str: ...


def celery_config(settings: Any) -> dict[str, Any]:
    visibility = float(settings.audit_visibility_timeout_s)
    return {
        "broker_url": settings.audit_broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # An unacknowledged task goes back to the queue after this; it must outlast the longest audit,
            # or a running file's task is handed out again (harmless: the claim refuses it, but wasted).
            "visibility_timeout": visibility,
            # How often a worker looks for such tasks: a tenth of the timeout, between 1 s and 1 min.
            "unacked_restore_interval": max(1, min(60, int(visibility / 10))),
            "unacked_restore_throttle": 1,
        },
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        # A prefork child killed mid-task (OOM killer, SIGKILL): its task goes back to the queue at once.
        "task_reject_on_worker_lost": True,
        # Take one task per free slot: a task waiting in a busy worker's buffer is a file nobody audits.
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": True,
        "worker_redirect_stdouts": False,
    }


def make_celery(settings: Any, runner: JobRunner | None = None) -> Celery:
    """The app; with `runner` (a worker process) it has the task that runs jobs, without it it only sends
    them (by name)."""
    app = Celery("callwatch-audit", set_as_current=False)
    app.conf.update(celery_config(settings))
    if runner is None:
        return app

    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError

    # shared=False: Celery would otherwise hand this closure to every app made later in the process.
    @app.task(name=TASK_NAME, shared=False, bind=True, acks_late=True, reject_on_worker_lost=True,
              ignore_result=True,
              # The database or Redis away for a moment: try again later rather than drop the job.
              autoretry_for=(OperationalError, RedisConnectionError), retry_backoff=True, retry_backoff_max=300,
              max_retries=None)
    def audit_job(task: Any, job_id: str) -> str:
        return runner.run(job_id)

    return app


class CeleryDispatcher:
    """Sends one task per job to the broker (the server and `callwatch audit` with audit_engine=celery)."""

    def __init__(self, settings: Any):
        self.app = make_celery(settings)

    def send(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        with self.app.producer_or_acquire() as producer:
            for job_id in job_ids:
                self.app.send_task(TASK_NAME, args=[job_id], queue=QUEUE, producer=producer)
        log.info("sent %d audit job(s) to %s", len(job_ids), QUEUE)

    def close(self) -> None:
        self.app.close()
