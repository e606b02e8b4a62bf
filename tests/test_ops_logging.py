"""Log lines name the call they were logged for: the context follows the call's task into the tasks and
threads it starts, and does not leak into other calls; and no line of a real `callwatch serve` carries a key
a URL brought. (The real server's JSON lines are also checked in test_graceful_shutdown.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import signal
from pathlib import Path

import httpx
import pytest
from support.server_process import ServerProcess
from websockets.sync.client import connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.log_format import JsonLogFormatter, TextLogFormatter, bind_call_context


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("callwatch.logtest")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_each_call_task_logs_its_own_call_and_what_it_starts_inherits_it(captured):
    logger, stream = captured

    async def serve_call(call_id: str) -> None:
        bind_call_context(integrator="pbx-east")
        logger.info("socket open")
        bind_call_context(call_id=call_id, agent_id=f"agent-of-{call_id}")
        await asyncio.sleep(0)

        async def pipeline_task() -> None:
            logger.info("in a pipeline task")

        await asyncio.ensure_future(pipeline_task())  # as CallSession starts its final and partial tasks
        await asyncio.to_thread(logger.warning, "in a store thread", extra={"status": "dropped"})

    await asyncio.gather(serve_call("c-1"), serve_call("c-2"))
    logger.info("outside any call")

    got = lines(stream)
    assert {(l["message"], l.get("call_id")) for l in got} == {
        ("socket open", None),
        ("in a pipeline task", "c-1"), ("in a pipeline task", "c-2"),
        ("in a store thread", "c-1"), ("in a store thread", "c-2"),
        ("outside any call", None),
    }
    for line in got:
        assert set(line) >= {"time", "level", "logger", "message"}
        assert line["logger"] == "callwatch.logtest"
        if line.get("call_id"):
            assert line["agent_id"] == f"agent-of-{line['call_id']}" and line["integrator"] == "pbx-east"
    thread_line = next(l for l in got if l["message"] == "in a store thread")
    assert thread_line["level"] == "warning" and thread_line["status"] == "dropped"
    assert "call_id" not in got[-1] and "integrator" not in got[-1]


def test_a_traceback_stays_inside_its_json_line(captured):
    logger, stream = captured
    try:
        raise ValueError("observer blew up")
    except ValueError:
        logger.exception("observer failed")
    (line,) = lines(stream)
    assert line["level"] == "error" and line["message"] == "observer failed"
    assert "ValueError: observer blew up" in line["exception"]


def test_text_lines_carry_the_call_in_brackets():
    record = logging.LogRecord("callwatch.ingest", logging.INFO, __file__, 1, "call ended", (), None)
    record.status = "completed"
    text = TextLogFormatter().format(record)
    assert text.endswith("INFO callwatch.ingest: call ended [status=completed]")


@pytest.mark.slow  # a process of its own, with the models
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_real_server_logs_urls_without_the_keys_in_them(tmp_path: Path, log_format: str) -> None:
    """The QA pages take `?token=KEY` once (docs/security.md); uvicorn's access and websocket lines quote the
    URL. Every parameter named like a key is redacted there, by name as the server decodes it."""
    key = f"cw_{secrets.token_urlsafe(32)}"
    save_keys_file(tmp_path / "keys.yaml", KeysFile(principals=[
        PrincipalSpec(role="supervisor", name="lead", keys=[KeySpec(sha256=digest_of(key))])]))
    others = {name: f"cw_{secrets.token_urlsafe(32)}" for name in ("access_token", "api_key", "%74oken", "X-Api-Key")}
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", CALLWATCH_LOG_FORMAT=log_format,
                           CALLWATCH_KEYS_FILE=str(tmp_path / "keys.yaml")).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            login = http.get("/audit/calls", params={"token": key})
            assert login.status_code == 303 and "token" not in login.headers["location"]
            query = "&".join(f"{name}={value}" for name, value in others.items())
            listed = http.get(f"/v1/audit/calls?limit=5&{query}&q=key", headers={"Authorization": f"Bearer {key}"})
            assert listed.status_code == 200, listed.text
        with connect(f"ws://127.0.0.1:{server.port}/v1/agent-feed?token={key}", open_timeout=10):
            pass  # accepted; the hello never comes
    finally:
        server.stop(signal.SIGTERM)

    log = server.log()
    for secret in (key, *others.values()):
        assert secret not in log
    assert "/audit/calls?token=[redacted]" in log and "/v1/agent-feed?token=[redacted]" in log
    assert "/v1/audit/calls?limit=5&access_token=[redacted]&api_key=[redacted]&%74oken=[redacted]" \
           "&X-Api-Key=[redacted]&q=key" in log  # the rest of the URL as it was
    if log_format == "json":
        access = [line for line in server.json_log_lines() if line["logger"] == "uvicorn.access"]
        assert any("/audit/calls?token=[redacted]" in line["message"] and "303" in line["message"] for line in access)
