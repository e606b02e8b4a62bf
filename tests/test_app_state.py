"""The app's state (service/app_state.py) is built once, as the app starts, on a real server around the shared
runtime: the audit queue and the key ring exist before the first request and the same ones serve every
request, and the audit jobs a stopped server left queued are taken up at start-up, with no request asking."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from support.live_server import LiveServer

from starlette.requests import HTTPConnection

from service.access.ring import KeyRing
from service.app import create_app
from service.app_state import app_state_of, get_audit_queue, get_key_ring
from service.audit.jobs.queue import AuditQueue, NewFile
from service.audit.web.models import AuditOptions


def test_the_audit_queue_and_key_ring_exist_from_start_up_and_the_same_ones_serve_every_request(runtime) -> None:
    app = create_app(runtime=runtime)
    queues: list[AuditQueue] = []
    rings: list[KeyRing] = []

    # What the handlers are handed, seen through overrides that pass the app's own parts on.
    def queue_seen(conn: HTTPConnection) -> AuditQueue:
        queues.append(get_audit_queue(conn))
        return queues[-1]

    def ring_seen(conn: HTTPConnection) -> KeyRing:
        rings.append(get_key_ring(conn))
        return rings[-1]

    app.dependency_overrides[get_audit_queue] = queue_seen
    app.dependency_overrides[get_key_ring] = ring_seen
    with LiveServer(app) as served:
        state = app_state_of(app)
        for _ in range(2):
            # An audit route takes the queue and every /v1 route the key ring (no keys: this machine is admitted).
            assert httpx.get(f"{served.url}/v1/audit/batches/no-such-batch", timeout=30).status_code == 404
            assert httpx.get(f"{served.url}/v1/rules/names", timeout=30).status_code == 200
        assert app_state_of(app) is state
    assert len(queues) == 2 and all(q is state.audit_queue for q in queues)
    assert len(rings) == 4 and all(r is state.key_ring for r in rings)


class _StoppedServer:
    """A server that stopped before it ran the jobs it was given: they stay in the database, queued."""

    def send(self, job_ids: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


def test_jobs_a_stopped_server_left_queued_are_taken_up_at_start_up_without_a_request(runtime, tmp_path: Path) -> None:
    left = AuditQueue(runtime, dispatcher=_StoppedServer())
    batch_id = asyncio.run(left.submit([NewFile(tmp_path / "gone.wav", "gone.wav")], AuditOptions(), runtime.rule_book,
                                       source="upload"))
    job_id = left.jobs.jobs_of(batch_id)[0]["job_id"]
    assert (queued := left.job(job_id)) is not None and queued.state == "queued"
    with LiveServer(create_app(runtime=runtime)):
        deadline = time.monotonic() + 30
        while (job := left.job(job_id)) is not None and job.state in ("queued", "running"):
            assert time.monotonic() < deadline, "the queued job was not taken up at start-up"
            time.sleep(0.1)
    # Run, and failed for the reason a missing file fails: it was this server's queue that ran it.
    assert job is not None and job.state == "failed" and job.error_code == "not_found", job
