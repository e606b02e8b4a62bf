"""The database briefly unreachable: a real PostgreSQL stopped and started again under the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
