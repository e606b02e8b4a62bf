"""Log lines name the call they were logged for: the context follows the call's task into the tasks and
threads it starts, and does not leak into other calls. (The real server's JSON lines are checked in
test_graceful_shutdown.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

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
