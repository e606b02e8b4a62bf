"""/healthz and /readyz on the real server: ready with the models loaded and the database answering; 503 with
the reason when the database refuses or hangs, or while the instance is shutting down."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from service.app import create_app
from service.app_state import app_state_of

AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_answers_ok(live_server):
    response = httpx.get(f"{live_server.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ready_with_models_and_database(live_server, runtime):
    response = httpx.get(f"{live_server.url}/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"models": "ok", "database": "ok", "accepting_calls": "ok"}
    assert body["max_live_calls"] == runtime.settings.max_live_calls
    assert body["max_asr_queue_depth"] == runtime.settings.max_asr_queue_depth


def test_readyz_is_503_naming_the_database_when_it_refuses_connections(live_server, runtime, monkeypatch):
    # A real PostgreSQL driver against a port nobody listens on: what a database host that is down looks like.
    unreachable = create_engine(f"postgresql+psycopg://callwatch@127.0.0.1:{closed_port()}/callwatch")
    monkeypatch.setattr(runtime.store.db, "engine", unreachable)
    response = httpx.get(f"{live_server.url}/readyz", timeout=10)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["models"] == "ok" and body["checks"]["accepting_calls"] == "ok"
    assert body["checks"]["database"].startswith("unreachable: OperationalError"), body
    unreachable.dispose()


def test_readyz_answers_in_time_when_the_database_hangs_and_keeps_one_ping_in_flight(live_server, runtime, monkeypatch):
    # A listener that accepts and never answers: the driver waits on it; readiness must not.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    hanging = create_engine(f"postgresql+psycopg://callwatch@127.0.0.1:{port}/callwatch", connect_args={"connect_timeout": 20})
    monkeypatch.setattr(runtime.store.db, "engine", hanging)
    try:
        started = time.monotonic()
        first = httpx.get(f"{live_server.url}/readyz", timeout=10)
        took = time.monotonic() - started
        assert first.status_code == 503 and first.json()["checks"]["database"] == "not answering within 2 s"
        assert took < 4, took
        second = httpx.get(f"{live_server.url}/readyz", timeout=10)
        assert second.status_code == 503
        assert second.json()["checks"]["database"] == "not answering (the previous check is still waiting)"
        # Meanwhile the rest of the service answers.
        assert httpx.get(f"{live_server.url}/healthz").status_code == 200
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        silent.close()
        hanging.dispose()
    monkeypatch.undo()
    deadline = time.monotonic() + 30
    while httpx.get(f"{live_server.url}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not come back with the database"
        time.sleep(0.5)


def test_while_shutting_down_readyz_is_503_and_a_new_call_is_refused_with_4503(runtime):
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as client:
            app_state_of(app).ingest_connections.draining = True
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"]["accepting_calls"] == "shutting down"
            with client.websocket_connect("/v1/ingest") as ws:
                ws.send_json({"type": "start", "call_id": "during-shutdown", "agent_id": "a-1", "audio": AUDIO})
                error = ws.receive_json()
                close = ws.receive()
            assert error["type"] == "error" and error["code"] == "shutting_down" and error["fatal"]
            assert close["type"] == "websocket.close" and close["code"] == 4503
            assert runtime.store.get_call("during-shutdown") is None
    finally:
        runtime.metrics.draining.set(0)  # the shared runtime serves on


@pytest.mark.parametrize("header, status", [(None, 401), ("Bearer wrong", 401), ("Bearer s3cret-metrics", 200)])
def test_metrics_can_require_a_token(live_server, runtime, monkeypatch, header, status):
    monkeypatch.setattr(runtime.settings, "metrics_token", "s3cret-metrics")
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{live_server.url}/metrics", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert "callwatch_live_calls" in response.text
    else:
        assert response.headers["www-authenticate"] == "Bearer"
