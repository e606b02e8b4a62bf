"""The audit queue: one job per file, a pool of asyncio workers feeding the one shared recogniser.

Several recordings in flight keep the recogniser's queue full (while one file is being decoded or judged,
another's utterances are being recognised); there is still one model. Job state is written to the database
as it changes, so the web page, REST and a resumed process see the same thing; the progress of a running
job is kept in memory (it changes many times a second).

With `audit_engine=celery` the same queue only writes the jobs and sends one Celery task per job
(`service.audit.jobs.celery_app`); `callwatch audit-worker` processes run them (`service.audit.jobs.worker`) and write
state, progress and results to the shared database, where `batch()` / `job()` read them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from rules.engine import RuleBook
from service.audit.intake.ids import new_id
from service.audit.running.rulesets import book_from_text
from service.audit.running.runner import AuditResult, audit_recording
from service.audit.web.models import AuditOptions, BatchOut, JobOut, RecordingMeta
from service.persistence.audit_jobs import AuditJobs
from service.persistence.call_store import CallStore

log = logging.getLogger("callwatch.audit")
JobListener = Callable[[str, JobOut, AuditResult | None], None]
TERMINAL = ("done", "skipped", "failed")
FOLLOW_INTERVAL_S = 0.5


class JobDispatcher(Protocol):
    """Hands jobs to workers elsewhere (the Celery broker)."""

    def send(self, job_ids: list[str]) -> None: ...

    def close(self) -> None: ...


def dispatcher_for(settings: Any) -> JobDispatcher | None:
    """None: run jobs in this process (the default); otherwise the configured engine's dispatcher."""
    if getattr(settings, "audit_engine", "local") != "celery":
        return None
    from service.audit.jobs.celery_app import CeleryDispatcher

    return CeleryDispatcher(settings)


def default_workers() -> int:
    """Recordings in flight at once: enough that the recogniser never waits for the next utterance (one more
    than the cores, which decode, resample and run the VAD between recognitions), not so many that memory
    holds a crowd of decoded files."""
    return max(2, min(8, (os.cpu_count() or 1) + 1))


@dataclass
class NewFile:
    path: Path
    file_name: str
    meta: RecordingMeta = field(default_factory=RecordingMeta)
    # (error_code, message): listed but not to be read (a link out of the import folders); its job is
    # stored `skipped` with them and never runs.
    refused: tuple[str, str] | None = None


@dataclass
class StoredJob:
    """A job as the database holds it, with everything needed to run it in another process."""

    job_id: str
    batch_id: str
    state: str
    file: NewFile
    options: AuditOptions
    rules_name: str
    rules_text: str | None


def _stored_job(r: Any) -> StoredJob:
    opts = json.loads(r["options"])
    rules_text = opts.pop("rules_text", None)
    meta = RecordingMeta.model_validate_json(r["meta"]) if r["meta"] else RecordingMeta()
    return StoredJob(job_id=r["job_id"], batch_id=r["batch_id"], state=r["state"],
                     file=NewFile(Path(r["source_path"]), r["file_name"], meta),
                     options=AuditOptions.model_validate(opts), rules_name=r["rules_name"], rules_text=rules_text)


def load_job(store: CallStore, job_id: str) -> StoredJob | None:
    r = AuditJobs(store.db).job_to_run(job_id)
    return _stored_job(r) if r is not None else None


@dataclass
class _Batch:
    book: RuleBook
    options: AuditOptions
    results: dict[str, AuditResult] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    pending: int = 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AuditQueue:
    def __init__(self, runtime: Any, workers: int | None = None, dispatcher: JobDispatcher | None = None):
        """`runtime` needs models only for the local engine; with a dispatcher it needs `settings`, `store`
        and `rule_book`."""
        self.runtime = runtime
        self.jobs = AuditJobs(runtime.store.db)
        self.workers = workers or default_workers()
        self.dispatcher = dispatcher if dispatcher is not None else dispatcher_for(runtime.settings)
        self._queue: asyncio.Queue[tuple[str, str, NewFile]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._batches: dict[str, _Batch] = {}
        self._progress: dict[str, float] = {}
        self._listeners: list[JobListener] = []

    # --- submitting ------------------------------------------------------------------

    def listen(self, listener: JobListener) -> None:
        self._listeners.append(listener)

    async def submit(self, files: list[NewFile], options: AuditOptions, book: RuleBook, *, source: str,
                     rules_text: str | None = None) -> str:
        """Queue a batch; returns its id at once (the jobs run in the background)."""
        batch_id = new_id()
        now = _now()
        jobs = [(new_id(), f) for f in files]
        to_run = [(jid, f) for jid, f in jobs if f.refused is None]
        batch = _Batch(book=book, options=options, pending=len(to_run))
        self._batches[batch_id] = batch
        opts = {**options.model_dump(mode="json"), "rules_text": rules_text}

        def row(jid: str, f: NewFile) -> dict[str, Any]:
            queued = {"job_id": jid, "batch_id": batch_id, "file_name": f.file_name, "state": "queued", "progress": 0.0,
                      "error_code": None, "error": None, "meta": f.meta.model_dump_json(exclude_none=True),
                      "created_at": now, "finished_at": None}
            if f.refused is not None:  # never opened: its path is recorded as listed, not followed
                return {**queued, "source_path": str(f.path.absolute()), "size_bytes": None, "state": "skipped",
                        "progress": 1.0, "error_code": f.refused[0], "error": f.refused[1], "finished_at": now}
            # Absolute: a worker in another process (or machine, on shared storage) opens it.
            return {**queued, "source_path": str(f.path.resolve()),
                    "size_bytes": f.path.stat().st_size if f.path.is_file() else None}

        batch_row = dict(batch_id=batch_id, created_at=now, source=source, rules_name=options.rules_name,
                         options=json.dumps(opts, ensure_ascii=False))
        await asyncio.to_thread(self.jobs.add_batch, batch_row, [row(jid, f) for jid, f in jobs])
        for jid, f in jobs:
            if f.refused is not None:
                batch.results[jid] = AuditResult(f.file_name, "skipped", error_code=f.refused[0], error=f.refused[1],
                                                 source=f.path)
                self._notify(batch_id, jid, batch.results[jid])
        if not to_run:
            batch.done.set()
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.send, [jid for jid, _ in to_run])
            return batch_id
        queue = self._ensure_workers()
        for jid, f in to_run:
            queue.put_nowait((batch_id, jid, f))
        return batch_id

    async def resume(self, sources: tuple[str, ...] = ("upload", "path")) -> int:
        """Queue again the jobs a stopped server left queued or running (their files are re-checked: a
        finished call is skipped). Command-line batches resume by running the command again. Returns how
        many.

        With a dispatcher, only queued jobs are sent again (a task lost between the database and the
        broker); running ones belong to workers, and a dead worker's are queued again by the others. A
        job sent twice is audited once (see service.audit.jobs.claims)."""
        states = ("queued",) if self.dispatcher is not None else ("queued", "running")

        jobs = [_stored_job(r) for r in await asyncio.to_thread(self.jobs.jobs_to_resume, states, sources)]
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.send, [j.job_id for j in jobs])
            return len(jobs)
        queue = self._ensure_workers()
        for j in jobs:
            if j.batch_id not in self._batches:
                self._batches[j.batch_id] = _Batch(book_from_text(j.rules_text, j.rules_name, self.runtime), j.options)
            self._batches[j.batch_id].pending += 1
            queue.put_nowait((j.batch_id, j.job_id, j.file))
        return len(jobs)

    async def wait(self, batch_id: str) -> dict[str, AuditResult]:
        if self.dispatcher is not None:
            return await self._follow(batch_id)
        batch = self._batches[batch_id]
        await batch.done.wait()
        return batch.results

    async def _follow(self, batch_id: str) -> dict[str, AuditResult]:
        """Until the batch is finished, read its jobs from the database (the workers write them there) and
        tell the listeners what moved."""
        seen: dict[str, tuple[str, float]] = {}
        results: dict[str, AuditResult] = {}

        while True:
            rows = await asyncio.to_thread(self.jobs.jobs_of, batch_id)
            for r in rows:
                if r["job_id"] in results or seen.get(r["job_id"]) == (r["state"], r["progress"]):
                    continue
                seen[r["job_id"]] = (r["state"], r["progress"])
                result = None
                if r["state"] in TERMINAL:
                    result = AuditResult(r["file_name"], r["state"], call_id=r["call_id"], error_code=r["error_code"],
                                         error=r["error"], audio_seconds=r["audio_seconds"],
                                         source=Path(r["source_path"]))
                    results[r["job_id"]] = result
                job = self._job_out(r)
                for listener in self._listeners:
                    listener(batch_id, job, result)
            if len(results) == len(rows):
                return results
            await asyncio.sleep(FOLLOW_INTERVAL_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._queue = None
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.close)

    # --- reading ---------------------------------------------------------------------

    def batch(self, batch_id: str) -> BatchOut | None:
        found = self.jobs.batch(batch_id)
        if found is None:
            return None
        b, rows = found
        jobs = [self._job_out(r) for r in rows]
        counts = {s: 0 for s in ("queued", "running", "done", "skipped", "failed")}
        for j in jobs:
            counts[j.state] += 1
        progress = sum(1.0 if j.state in ("done", "skipped", "failed") else j.progress for j in jobs) / max(1, len(jobs))
        return BatchOut(batch_id=batch_id, created_at=b["created_at"], rules_name=b["rules_name"], total=len(jobs),
                        counts=counts, progress=round(progress, 4),
                        finished=counts["queued"] + counts["running"] == 0, jobs=jobs)

    def job(self, job_id: str) -> JobOut | None:
        r = self.jobs.job(job_id)
        return self._job_out(r) if r else None

    def _job_out(self, r: Any) -> JobOut:
        progress = self._progress.get(r["job_id"], r["progress"]) if r["state"] == "running" else r["progress"]
        return JobOut(job_id=r["job_id"], batch_id=r["batch_id"], file_name=r["file_name"], state=r["state"],
                      progress=round(progress, 4), call_id=r["call_id"], error_code=r["error_code"], error=r["error"],
                      audio_seconds=r["audio_seconds"], started_at=r["started_at"], finished_at=r["finished_at"])

    # --- working ---------------------------------------------------------------------

    def _ensure_workers(self) -> asyncio.Queue[tuple[str, str, NewFile]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._worker(i), name=f"audit-worker-{i}") for i in range(self.workers)]
        return self._queue

    async def _set(self, job_id: str, **values: Any) -> None:
        # A job's state written during a database restart is late, not lost (the database's outage retry).
        await asyncio.to_thread(self.jobs.update_job, job_id, **values)

    def _notify(self, batch_id: str, job_id: str, result: AuditResult | None) -> None:
        if not self._listeners:
            return
        job = self.job(job_id)
        for listener in self._listeners:
            if job is not None:
                listener(batch_id, job, result)

    async def _worker(self, number: int) -> None:
        assert self._queue is not None
        while True:
            batch_id, job_id, item = await self._queue.get()
            batch = self._batches[batch_id]
            try:
                await self._set(job_id, state="running", started_at=_now(), progress=0.0)
                self._progress[job_id] = 0.0
                self._notify(batch_id, job_id, None)

                def progress(p: float, job_id: str = job_id) -> None:
                    self._progress[job_id] = p
                    for listener in self._listeners:
                        listener(batch_id, JobOut(job_id=job_id, batch_id=batch_id, file_name=item.file_name,
                                                  state="running", progress=p), None)

                result = await audit_recording(self.runtime, item.path, meta=item.meta, options=batch.options,
                                               book=batch.book, file_name=item.file_name, on_progress=progress,
                                               job_id=job_id)
                result.source = item.path
                await self._set(job_id, state=result.state, progress=1.0, call_id=result.call_id,
                                error_code=result.error_code, error=result.error, audio_seconds=result.audio_seconds,
                                finished_at=_now())
                batch.results[job_id] = result
                self._progress.pop(job_id, None)
                self._notify(batch_id, job_id, result)
            except asyncio.CancelledError:
                raise
            except Exception:  # the queue itself must survive anything a job does
                log.exception("audit worker %d: job %s", number, job_id)
                await self._set(job_id, state="failed", error_code="internal", error="审核失败 (internal error)", finished_at=_now())
            finally:
                batch.pending -= 1
                if batch.pending <= 0:
                    batch.done.set()
                self._queue.task_done()
