"""The call store on SQLite and on PostgreSQL: what it keeps, tenants, retried writes that do not double."""

from __future__ import annotations

import re
import socket
import time

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError

from service.persistence.call_store import CallStore
from service.persistence.engine import is_transient
from service.persistence.tables import calls


def test_calls_events_and_utterances_are_kept_and_duplicates_refused(database_url):
    store = CallStore(database_url)
    assert store.create_call("c1", "a1", "inbound", "13800000000", None, {"encoding": "mulaw"})
    assert not store.create_call("c1", "a2", "inbound", None, None, {})
    store.add_event("c1", "answered", 0.0, None, None)
    store.add_utterance("c1", "agent-0", "agent", 0.5, 2.0, "您好，这里是示例公司。")
    store.set_utterance_emotion("c1", "agent-0", {"label": "neutral", "valence": 0.1})
    store.add_prompt("c1", "p1", "opening.greeting", "warn", 1.0, "请问候", "")
    assert store.dismiss_prompt("c1", "p1", "a1") and not store.dismiss_prompt("c1", "p1", "a1")
    store.end_call("c1", "completed", 30.0)
    store.save_report("c1", 95.0, {"score": 95.0, "findings": []})
    store.close()

    reopened = CallStore(database_url)
    call = reopened.get_call("c1")
    assert call.agent_id == "a1" and call.status == "completed" and call.duration == 30.0 and call.score == 95.0
    assert call.report == {"score": 95.0, "findings": []} and call.audio_format == {"encoding": "mulaw"}
    [utt] = reopened.list_utterances("c1")
    assert utt["text"] == "您好，这里是示例公司。" and utt["emotion"]["label"] == "neutral"
    assert reopened.list_events("c1") == [{"event": "answered", "t": 0.0, "by": None, "target": None}]
    assert reopened.list_prompts("c1")[0]["dismissed_by"] == "a1"
    with pytest.raises(IntegrityError):
        reopened.add_utterance("c1", "agent-0", "agent", 0.5, 2.0, "again")


def test_the_second_pass_keeps_live_levels_and_measures_only_the_utterances_it_adds(database_url):
    store = CallStore(database_url)
    store.create_call("c1", "a1", "inbound", None, None, {})
    store.add_utterance("c1", "agent-0", "agent", 0.5, 2.0, "您好", level_db=-21.0)
    measured: list[str] = []

    def level_db(utterance_id: str) -> float:
        measured.append(utterance_id)
        return -30.0

    store.apply_second_pass("c1", [
        {"utterance_id": "agent-0", "speaker": "agent", "start": 0.5, "end": 2.0, "text": "您好，这里是示例公司。"},
        {"utterance_id": "customer-0", "speaker": "customer", "start": 2.5, "end": 3.0, "text": "喂"},
        {"utterance_id": "customer-1", "speaker": "customer", "start": 4.0, "end": 4.5, "text": ""},
    ], level_db)
    by_id = {u["utterance_id"]: u for u in store.list_utterances("c1")}
    assert measured == ["customer-0"] and set(by_id) == {"agent-0", "customer-0"}
    assert by_id["agent-0"]["level_db"] == -21.0 and by_id["agent-0"]["live_text"] == "您好"
    assert by_id["customer-0"]["level_db"] == -30.0 and by_id["customer-0"]["live_text"] is None
    store.close()


def test_calls_left_live_by_a_dead_process_are_marked_interrupted(database_url):
    CallStore(database_url).create_call("c2", "a1", "inbound", None, None, {})
    assert CallStore(database_url).mark_live_calls_interrupted() == 1
    assert CallStore(database_url).get_call("c2").status == "interrupted"


def _statuses(store: CallStore, *call_ids: str) -> dict[str, str]:
    return {c: store.get_call(c).status for c in call_ids}


def test_an_instance_starting_marks_only_its_own_live_calls(database_url):
    a, b = CallStore(database_url, instance="web-a"), CallStore(database_url, instance="web-b")
    a.create_call("a-live", "a1", "inbound", None, None, {})
    a.create_call("a-done", "a1", "inbound", None, None, {})
    a.end_call("a-done", "completed", 3.0)
    b.create_call("b-live", "a2", "inbound", None, None, {})
    a.create_call("older", "a3", "inbound", None, None, {})
    with a.db.engine.begin() as conn:  # as a call stored before calls named their instance
        conn.execute(update(calls).where(calls.c.call_id == "older").values(instance=None))
    assert a.get_call("a-live").instance == "web-a" and b.get_call("b-live").instance == "web-b"

    restarted_a = CallStore(database_url, instance="web-a")  # web-a died mid-call and starts again
    assert restarted_a.mark_live_calls_interrupted() == 2
    assert _statuses(a, "a-live", "older", "a-done", "b-live") == {
        "a-live": "interrupted", "older": "interrupted", "a-done": "completed", "b-live": "live"}
    assert restarted_a.mark_live_calls_interrupted() == 0
    assert CallStore(database_url, instance="web-c").mark_live_calls_interrupted() == 0  # a new instance: none


def test_the_calls_of_an_instance_that_never_comes_back_are_interrupted_by_hand(database_url):
    gone, alive = CallStore(database_url, instance="web-gone"), CallStore(database_url, instance="web-alive")
    gone.create_call("g1", "a1", "inbound", None, None, {})
    gone.create_call("g2", "a2", "inbound", None, None, {})
    alive.create_call("l1", "a3", "inbound", None, None, {})
    live = alive.live_calls_by_instance()
    assert [(g.instance, g.count) for g in live] == [("web-alive", 1), ("web-gone", 2)]
    assert all(g.oldest_received_at.tzinfo is not None for g in live)
    assert alive.interrupt_calls_of("web-gone") == 2
    assert _statuses(alive, "g1", "g2", "l1") == {"g1": "interrupted", "g2": "interrupted", "l1": "live"}
    # Marked by mistake while its instance was in fact running: the call's end sets its status all the same.
    assert alive.interrupt_calls_of("web-alive") == 1
    alive.end_call("l1", "completed", 12.0)
    assert alive.get_call("l1").status == "completed"


def test_the_calls_interrupt_command(database_url):
    from typer.testing import CliRunner

    from service.cli import app

    CallStore(database_url, instance="web-gone").create_call("g1", "a1", "inbound", None, None, {})
    CallStore(database_url, instance="web-alive").create_call("l1", "a1", "inbound", None, None, {})
    run = CliRunner()
    listed = run.invoke(app, ["calls-interrupt", "--url", database_url])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    received = r"1 live call\(s\), the oldest received \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
    assert len(lines) == 2 and re.fullmatch("web-alive\t" + received, lines[0]), lines
    assert re.fullmatch("web-gone\t" + received, lines[1]), lines
    done = run.invoke(app, ["calls-interrupt", "--url", database_url, "--instance", "web-gone"])
    assert done.exit_code == 0 and done.output.strip() == "web-gone: 1 live call(s) marked interrupted", done.output
    store = CallStore(database_url)
    assert _statuses(store, "g1", "l1") == {"g1": "interrupted", "l1": "live"}


def test_the_instance_id_defaults_to_the_host_name_and_is_configurable(database_url, monkeypatch):
    from service.settings import Settings

    monkeypatch.delenv("CALLWATCH_INSTANCE_ID", raising=False)
    assert CallStore(database_url).instance == socket.gethostname()
    assert Settings().instance_id == socket.gethostname()
    monkeypatch.setenv("CALLWATCH_INSTANCE_ID", "web-2:8001")
    monkeypatch.setenv("CALLWATCH_DATABASE_RETRY_S", "7")
    store = CallStore.from_settings(Settings(database_url=database_url))
    assert store.instance == "web-2:8001" and store.db.retry_s == 7
    assert store.create_call("i1", "a1", "inbound", None, None, {}) and store.get_call("i1").instance == "web-2:8001"


def test_a_call_belongs_to_its_tenant(database_url):
    store = CallStore(database_url)
    store.create_call("t1", "a1", "inbound", None, None, {}, tenant="acme-qa")
    store.create_call("t2", "a1", "inbound", None, None, {})
    assert store.get_call("t1").tenant == "acme-qa"
    assert store.get_call("t2").tenant is None


def test_call_ids_are_per_tenant(database_url):
    """Another tenant's call never refuses an id (it gets a key of its own); a tenant's own does."""
    store = CallStore(database_url)
    assert store.create_call("c-1", "a1", "inbound", None, None, {}, tenant="acme") == "c-1"
    globex = store.create_call("c-1", "g1", "inbound", None, None, {}, tenant="globex")
    untenanted = store.create_call("c-1", "n1", "inbound", None, None, {})
    assert globex.startswith("c-1~") and untenanted.startswith("c-1~") and globex != untenanted
    for tenant in ("acme", "globex", None):
        assert store.create_call("c-1", "x", "inbound", None, None, {}, tenant=tenant) is None, tenant
    assert (store.find_call("acme", "c-1"), store.find_call("globex", "c-1"), store.find_call(None, "c-1")) == (
        "c-1", globex, untenanted)
    assert store.find_call("initech", "c-1") is None and store.find_call("globex", globex) is None  # a key is no id
    assert store.get_call(globex).agent_id == "g1" and store.get_call(globex).tenant == "globex"
    assert store.sent_ids(["c-1", globex, untenanted, "nope"]) == {"c-1": "c-1", globex: "c-1", untenanted: "c-1",
                                                                  "nope": "nope"}
    longest = "L" * 128  # the longest id the protocol allows: its derived key still fits the column
    assert store.create_call(longest, "a1", "inbound", None, None, {}, tenant="acme") == longest
    other = store.create_call(longest, "g1", "inbound", None, None, {}, tenant="globex")
    assert other is not None and len(other) == 128 and store.sent_ids([other]) == {other: longest}


def _as_if_the_first_commit_lost_its_answer(store: CallStore) -> None:
    """Every operation runs twice: as it does when its commit reached the server and then the connection
    broke, so the store retried it (the real outage path is tested in test_store_outage.py)."""
    def twice(operation, **_):
        operation(0)
        return operation(1)

    store.db.retrying = twice  # type: ignore[method-assign]


def test_a_retried_write_whose_commit_got_through_is_not_stored_twice(database_url):
    store = CallStore(database_url)
    _as_if_the_first_commit_lost_its_answer(store)
    assert store.create_call("r1", "a1", "inbound", None, None, {})
    store.add_utterance("r1", "agent-0", "agent", 0.0, 1.0, "您好")
    store.add_event("r1", "answered", 0.0, None, None)
    store.add_event("r1", "hold", 3.0, "agent", None)
    store.add_prompt("r1", "p1", "opening.greeting", "warn", 1.0, "请问候", "")
    assert store.dismiss_prompt("r1", "p1", "a1")
    store.end_call("r1", "completed", 9.0)
    store.apply_second_pass("r1", [
        {"utterance_id": "agent-0", "speaker": "agent", "start": 0.0, "end": 1.0, "text": "您好，请讲"},
        {"utterance_id": "customer-1", "speaker": "customer", "start": 1.5, "end": 2.5, "text": "我要投诉"},
    ], level_db=lambda _: -20.0)

    plain = CallStore(database_url)
    heard = {u["utterance_id"]: (u["text"], u["live_text"]) for u in plain.list_utterances("r1")}
    # The utterance the live pass never showed keeps no live text, though the retry found it stored.
    assert heard == {"agent-0": ("您好，请讲", "您好"), "customer-1": ("我要投诉", None)}
    assert [e["event"] for e in plain.list_events("r1")] == ["answered", "hold"]
    assert len(plain.list_prompts("r1")) == 1 and plain.get_call("r1").status == "completed"
    # A call id that was taken before the first try is still refused.
    assert not store.create_call("r1", "a2", "inbound", None, None, {})


def test_what_is_retried_and_what_is_not(database_url, tmp_path):
    from sqlalchemy import create_engine, text

    closed_port = "postgresql+psycopg://nobody@127.0.0.1:9/x?connect_timeout=2"
    with pytest.raises(OperationalError) as refused:
        create_engine(closed_port).connect()
    assert is_transient(refused.value)

    store = CallStore(database_url)
    with pytest.raises(Exception) as bad_sql, store.db.engine.connect() as conn:
        conn.execute(text("SELECT no_such_column FROM calls"))
    assert not is_transient(bad_sql.value)  # a programming error surfaces at once


def test_a_database_that_does_not_exist_fails_at_once(postgres_server):
    from sqlalchemy.engine import make_url

    missing = make_url(postgres_server.admin_url).set(database="cw_no_such_database").render_as_string(hide_password=False)
    began = time.monotonic()
    with pytest.raises(OperationalError, match="does not exist"):
        CallStore(missing, retry_s=30)
    assert time.monotonic() - began < 5
