"""The database briefly unreachable: a real PostgreSQL stopped and started again under the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from service.persistence.call_store import CallStore


@contextmanager
def _stopped(cluster) -> Iterator[None]:
    cluster.stop()
    try:
        yield
    finally:
        if not cluster.is_running():
            cluster.start()


@pytest.fixture
def outage_url(postgres_cluster) -> Iterator[str]:
    from support.postgres_plugin import PostgresServer

    server = PostgresServer(postgres_cluster.url(), postgres_cluster)
    url = server.create_database()
    yield url
    server.drop_database(url)
    server.close()


def test_writes_during_a_restart_wait_for_the_database_and_lose_nothing(postgres_cluster, outage_url):
    store = CallStore(outage_url, retry_s=30)
    store.create_call("before", "a1", "inbound", None, None, {})
    store.add_utterance("before", "agent-0", "agent", 0.0, 1.0, "您好")  # the pool now holds a live connection

    errors: list[BaseException] = []
    finished = threading.Event()

    def live_call_writes() -> None:
        try:
            store.add_utterance("before", "customer-1", "customer", 1.2, 2.5, "我要投诉")
            store.create_call("during", "a2", "inbound", None, None, {"encoding": "mulaw"})
            store.add_event("during", "answered", 0.0, None, None)
            store.add_utterance("during", "agent-0", "agent", 0.3, 1.1, "请讲")
            store.end_call("before", "completed", 3.0)
        except BaseException as err:  # noqa: BLE001 - reported by the test thread
            errors.append(err)
        finally:
            finished.set()

    with _stopped(postgres_cluster):
        down_at = time.monotonic()
        writer = threading.Thread(target=live_call_writes)
        writer.start()
        time.sleep(2.0)
        assert not finished.is_set(), "a write finished (or failed) while the database was down"
        postgres_cluster.start()
        up_at = time.monotonic()
    assert finished.wait(30), "the writes did not complete after the database came back"
    writer.join()
    assert not errors, errors
    caught_up = time.monotonic() - up_at
    assert caught_up < 5, f"writes took {caught_up:.1f} s to get through after the restart"
    assert up_at - down_at >= 2.0

    after = CallStore(outage_url)
    assert [u["utterance_id"] for u in after.list_utterances("before")] == ["agent-0", "customer-1"]
    assert after.get_call("before").status == "completed"
    assert after.get_call("during").agent_id == "a2"
    assert after.list_events("during") == [{"event": "answered", "t": 0.0, "by": None, "target": None}]
    assert [u["text"] for u in after.list_utterances("during")] == ["请讲"]


def test_a_restart_between_writes_is_not_even_noticed(postgres_cluster, outage_url):
    # No retry allowed: the pooled connection died with the old server, and checking it before use
    # (pool_pre_ping) replaces it instead of failing the write.
    store = CallStore(outage_url, retry_s=0)
    store.create_call("c1", "a1", "inbound", None, None, {})
    with _stopped(postgres_cluster):
        pass
    store.add_event("c1", "answered", 0.0, None, None)
    assert store.list_events("c1")[0]["event"] == "answered"


def test_beyond_the_bound_the_error_surfaces(postgres_cluster, outage_url):
    store = CallStore(outage_url, retry_s=1.0)
    store.create_call("c1", "a1", "inbound", None, None, {})
    with _stopped(postgres_cluster):
        began = time.monotonic()
        with pytest.raises(OperationalError):
            store.add_utterance("c1", "agent-0", "agent", 0.0, 1.0, "您好")
        waited = time.monotonic() - began
    assert 0.9 <= waited < 4, waited


def test_every_kind_of_query_waits_for_the_database_and_gets_through(postgres_cluster, outage_url):
    """Not only the live calls' writes: the call list's query, an audit job's claim and completion, the access
    guard's check and the metrics' job counts each wait out a restart of a few seconds and then answer, as
    they would have; the readiness ping alone answers at once (its question is whether the database answers
    now), and a scrape with less patience than the outage leaves the job counts out instead of failing."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from service.access.guard import Keys
    from service.access.ring import KeyRing
    from service.access.keys import Principal
    from service.audit.web.models import CallQuery
    from service.metrics import audit_jobs_by_state
    from service.persistence.audit_jobs import AuditJobs, JobState
    from service.persistence.call_list import CallList
    from service.settings import Settings

    store = CallStore(outage_url, retry_s=30)
    impatient = CallStore(outage_url, retry_s=0.5)
    call_list, jobs = CallList(store.db), AuditJobs(store.db)
    store.create_call("c-1", "a1", "inbound", None, "2026-11-23T09:30:00", {}, tenant="acme")
    store.add_utterance("c-1", "customer-0", "customer", 0.5, 2.0, "我要投诉")
    store.end_call("c-1", "completed", 3.0)
    store.save_report("c-1", 95.0, {"score": 95.0, "findings": []})
    assert call_list.sync() == 1
    now = datetime.now(timezone.utc)
    jobs.add_batch(dict(batch_id="b1", created_at=now, source="path", rules_name="default", options="{}"),
                   [dict(job_id="j1", batch_id="b1", file_name="a.wav", source_path="/x/a.wav", state="queued",
                         progress=0.0, created_at=now)])
    request: Any = SimpleNamespace()  # what the guard logs a refusal about; a qa key of acme is not refused here
    keys = Keys(Settings(), KeyRing())  # the settings and ring matter only to a key that leads teams
    qa_of_acme = Principal(role="qa", name="qa-1", tenant="acme")
    claimed = JobState("running", now)

    def claim_and_complete() -> bool:
        return (jobs.move("j1", JobState("queued", None), values={"state": "running", "started_at": now}, then=claimed)
                and jobs.move("j1", claimed, values={"state": "done", "progress": 1.0}, then=JobState("done", now)))

    work = {
        "call list": lambda: [r.call_id for r in call_list.page(CallQuery(q="投诉"), tenant="acme").rows],
        "claim and complete": claim_and_complete,
        "guard": lambda: keys.check_call(request, store, qa_of_acme, "c-1"),
    }
    results: dict[str, Any] = {}

    def run(name: str, fn: Any) -> threading.Thread:
        def target() -> None:
            try:
                results[name] = fn()
            except BaseException as err:  # noqa: BLE001 - reported by the test thread
                results[name] = err
        thread = threading.Thread(target=target)
        thread.start()
        return thread

    with _stopped(postgres_cluster):
        with pytest.raises(OperationalError):
            store.db.ping()
        assert audit_jobs_by_state(impatient) is None  # the scrape goes on without the counts
        threads = [run(name, fn) for name, fn in work.items()]
        # The metrics wait at most AUDIT_JOBS_WAIT_S (inside a scrape's timeout): ask once the outage is under way,
        # so the restart falls well inside that.
        time.sleep(1.0)
        threads.append(run("metrics", lambda: audit_jobs_by_state(store)))
        time.sleep(1.0)
        assert not results, f"answered (or failed) while the database was down: {results}"
        postgres_cluster.start()
    for thread in threads:
        thread.join(30)
    counts = results.pop("metrics")
    assert results == {"call list": ["c-1"], "claim and complete": True, "guard": "c-1"}, results
    assert isinstance(counts, dict) and sum(counts.values()) == 1, counts  # the job, in whatever state it was
    assert jobs.job("j1")["state"] == "done"
    impatient.close()
    store.close()
