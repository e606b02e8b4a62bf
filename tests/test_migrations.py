"""Schema migrations on SQLite and PostgreSQL: from empty, from the previous release, back down, and several
processes starting at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text

from service.audit.web.models import CallQuery
from service.persistence.qa_reviews import qa_metadata
from service.persistence.qa_work_tables import qa_work_metadata
from service.migrations import (
    BASELINE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore
from service.persistence.engine import make_engine
from service.persistence.search import FTS_TABLE, index_tokens
from service.persistence.tables import audit_metadata, metadata

REPO = Path(__file__).resolve().parents[1]
QA_TABLES = {"qa_reviews", "qa_review_findings", "qa_disputes", "qa_rulings", "qa_history"}
QA_WORK_TABLES = {"qa_sampling_plans", "qa_plan_reviewers", "qa_plan_runs", "qa_plan_picks", "qa_calibrations",
                  "qa_calibration_reviewers", "qa_calibration_findings", "qa_calibration_decisions"}
TREND_TABLES = {"qa_trend_calls", "qa_trend_rules"}
CALLWATCH_TABLES = {"calls", "call_events", "utterances", "call_prompts", "audit_batches", "audit_jobs", "audit_calls",
                    "audit_call_rules", *QA_TABLES, *QA_WORK_TABLES, *TREND_TABLES}


def _schema_differences(engine) -> list:
    """What the database lacks or has beyond the live table definitions (the full-text index aside)."""
    target = MetaData()
    for table in [*metadata.tables.values(), *audit_metadata.tables.values(), *qa_metadata.tables.values(),
                  *qa_work_metadata.tables.values()]:
        table.to_metadata(target)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_object": lambda obj, name, type_, *_: not (type_ == "table" and name.startswith(FTS_TABLE)),
        })
        return [d for d in compare_metadata(context, target) if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


def _insert_old_call(conn, call_id: str, status: str) -> None:
    """A call row as an older revision wrote it (only the columns every revision has)."""
    conn.execute(text("INSERT INTO calls (call_id, agent_id, direction, received_at, status, audio_format) "
                      "VALUES (:call_id, 'A1', 'inbound', '2026-05-01 01:00:00', :status, '{}')"),
                 {"call_id": call_id, "status": status})


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_an_empty_database_is_built_to_head_and_matches_the_code(database_url):
    store = CallStore(database_url)
    assert current_revision(store.db.engine) == head_revision()
    assert CALLWATCH_TABLES <= _tables(store.db.engine)
    assert _schema_differences(store.db.engine) == []
    with store.db.engine.connect() as conn:  # the full-text index is there
        conn.execute(text(f"SELECT count(*) FROM {FTS_TABLE}")).scalar()


def test_the_baseline_is_the_previous_release_and_later_revisions_add_tenants_instances_second_pass_text_sent_ids_and_qa(
        database_url):
    engine = make_engine(database_url)
    upgrade(engine, BASELINE)
    diffs = _schema_differences(engine)
    added = sorted((d[0], d[3].name if d[0] == "add_column" else d[1].name) for d in diffs)
    assert added == sorted([
        ("add_column", "client_call_id"), ("add_column", "instance"), ("add_column", "live_text"),
        ("add_column", "tenant"), ("add_column", "tenant"), ("add_column", "text_pass"),
        ("add_index", "ix_audit_calls_tenant"), ("add_index", "ix_calls_instance"),
        ("add_index", "ix_calls_tenant"), ("add_index", "ix_qa_disputes_raised_at"),
        ("add_index", "ix_qa_disputes_review_id"), ("add_index", "ix_qa_history_review"),
        ("add_index", "ix_qa_review_findings_review_id"), ("add_index", "ix_qa_reviews_opened_at"),
        ("add_index", "ix_qa_reviews_tenant_agent"), *(("add_table", t) for t in QA_TABLES),
        # 0008: sampling plans and calibration
        ("add_index", "ix_qa_calibration_findings_calibration_id"), ("add_index", "ix_qa_calibration_reviewers_reviewer"),
        ("add_index", "ix_qa_calibrations_created_at"), ("add_index", "ix_qa_plan_picks_plan_week"),
        ("add_index", "ix_qa_plan_picks_reviewer"), ("add_index", "ix_qa_plan_runs_plan_week"),
        ("add_index", "ix_qa_sampling_plans_tenant"), *(("add_table", t) for t in QA_WORK_TABLES),
        # 0009: trends at scale
        ("add_index", "ix_audit_calls_tenant_started"), ("add_index", "ix_utterances_customer_turns"),
        # 0010: trends' facts
        *(("add_table", t) for t in TREND_TABLES),
        *(("add_index", f"ix_{t}_{by}_started") for t in TREND_TABLES for by in ("tenant", "agent"))]), diffs


def test_calls_listed_before_the_trend_facts_get_the_facts_the_service_writes(database_url, tmp_path):
    """0010 fills the facts of every call already listed: the same rows the writers leave (generated calls with
    reviews, rulings, turns and prompts), and none for a call that is not listed."""
    from benchmarks.qa_trends_data import Shape, generate

    store = CallStore(database_url)
    generate(store, Shape(calls=80, agents=8, teams=2, weeks=3, review_share=0.3))
    store.create_call("unlisted", "A1", "inbound", "2026-05-01T09:00:00+08:00", None, {})
    read = {table: f"SELECT * FROM {table} ORDER BY call_id{', rule_id' if table == 'qa_trend_rules' else ''}"
            for table in sorted(TREND_TABLES)}
    with store.db.engine.connect() as conn:
        written = {table: [tuple(r) for r in conn.execute(text(sql))] for table, sql in read.items()}
    store.close()
    assert len(written["qa_trend_calls"]) == 80 and written["qa_trend_rules"]
    engine = make_engine(database_url)
    downgrade(engine, "0009")
    assert not TREND_TABLES & _tables(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert {table: [tuple(r) for r in conn.execute(text(sql))] for table, sql in read.items()} == written
    engine.dispose()


def test_live_calls_from_before_instances_are_marked_by_the_first_instance_to_start(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        _insert_old_call(conn, "was-live", "live")
    engine.dispose()
    store = CallStore(database_url, instance="web-1")  # upgrades past 0004: the row has no instance
    assert store.get_call("was-live").instance is None
    store.create_call("now-live", "A2", "inbound", None, None, {})
    assert CallStore(database_url, instance="web-2").mark_live_calls_interrupted() == 1
    assert store.get_call("was-live").status == "interrupted" and store.get_call("now-live").status == "live"


def test_calls_stored_before_per_tenant_ids_keep_their_ids_and_take_part_in_them(database_url):
    """0006 rewrites nothing: a tenant's calls stored before it are found by their ids within the tenant, and
    another tenant may now use those ids too."""
    engine = make_engine(database_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        _insert_old_call(conn, "old-acme", "completed")
        conn.execute(text("UPDATE calls SET tenant = 'acme' WHERE call_id = 'old-acme'"))
        conn.execute(text("INSERT INTO utterances (call_id, utterance_id, speaker, start, \"end\", text) "
                          "VALUES ('old-acme', 'agent-0', 'agent', 0.0, 1.0, '您好')"))
    engine.dispose()
    store = CallStore(database_url)
    assert current_revision(store.db.engine) == head_revision()
    assert store.find_call("acme", "old-acme") == "old-acme" and store.find_call("globex", "old-acme") is None
    assert [u["text"] for u in store.list_utterances("old-acme")] == ["您好"]
    assert store.create_call("old-acme", "A2", "inbound", None, None, {}, tenant="acme") is None
    theirs = store.create_call("old-acme", "G1", "inbound", None, None, {}, tenant="globex")
    assert theirs is not None and store.find_call("globex", "old-acme") == theirs != "old-acme"


def _previous_release_database(url: str, *, with_audit_tables: bool = True) -> None:
    """What the last release left: its tables (0001 is that schema, checked above), no alembic_version,
    a live call and an audited call with its call-list row and full-text document, written as it wrote them."""
    engine = make_engine(url)
    upgrade(engine, BASELINE)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text(
            "INSERT INTO calls (call_id, agent_id, direction, started_at, received_at, status, audio_format, duration, score, report) "
            "VALUES ('old-1', 'A1', 'inbound', '2026-05-01T09:00:00', '2026-05-01 01:00:00', 'completed', '{}', 30.0, 88.0, "
            "'{\"score\": 88.0, \"findings\": []}'), "
            "('old-2', 'A2', 'outbound', NULL, '2026-05-02 01:00:00', 'dropped', '{}', 5.0, NULL, NULL)"))
        conn.execute(text(
            "INSERT INTO utterances (call_id, utterance_id, speaker, start, \"end\", text) VALUES "
            "('old-1', 'agent-0', 'agent', 0.0, 2.0, '您好，请问有什么可以帮您'), "
            "('old-1', 'customer-1', 'customer', 2.5, 4.0, '我要投诉你们的快递')"))
        conn.execute(text("INSERT INTO call_events (call_id, event, t) VALUES ('old-1', 'answered', 0.0)"))
        conn.execute(text("INSERT INTO call_prompts (call_id, prompt_id, rule_id, severity, t, text, evidence) "
                          "VALUES ('old-1', 'p1', 'opening.greeting', 'warn', 1.0, '请问候', '')"))
        if not with_audit_tables:
            conn.execute(text(f"DROP TABLE {FTS_TABLE}"))
            for table in ("audit_call_rules", "audit_calls", "audit_jobs", "audit_batches"):
                conn.execute(text(f"DROP TABLE {table}"))
            return
        conn.execute(text(
            "INSERT INTO audit_calls (rowid_, call_id, agent_id, direction, started_at, duration, score, finding_count, "
            "rules, speaker_attribution, audited_at) VALUES (1, 'old-1', 'A1', 'inbound', '2026-05-01T09:00:00', 30.0, "
            "88.0, 0, '', 'channels', '2026-05-03 00:00:00')"))
        agent, customer = index_tokens("您好，请问有什么可以帮您"), index_tokens("我要投诉你们的快递")
        if conn.dialect.name == "sqlite":
            conn.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, agent, customer, other) VALUES (1, :a, :c, '')"),
                         {"a": agent, "c": customer})
        else:
            conn.execute(text(
                f"INSERT INTO {FTS_TABLE}(rowid_, agent, customer, other, alltext) VALUES (1, to_tsvector('simple', :a), "
                "to_tsvector('simple', :c), to_tsvector('simple', ''), to_tsvector('simple', :a || ' ' || :c || ' '))"),
                {"a": agent, "c": customer})
    engine.dispose()


def test_a_previous_release_database_is_adopted_and_keeps_every_row(database_url):
    _previous_release_database(database_url)
    store = CallStore(database_url)
    assert current_revision(store.db.engine) == head_revision()
    assert _schema_differences(store.db.engine) == []
    old = store.get_call("old-1")
    assert old.score == 88.0 and old.report == {"score": 88.0, "findings": []} and old.tenant is None
    assert store.get_call("old-2").status == "dropped"
    assert [u["utterance_id"] for u in store.list_utterances("old-1")] == ["agent-0", "customer-1"]
    assert store.list_events("old-1")[0]["event"] == "answered" and store.list_prompts("old-1")[0]["prompt_id"] == "p1"
    # The audited call is still found by its words, by side, and new calls go on being stored.
    assert [r.call_id for r in CallList(store.db).page(CallQuery(q="投诉")).rows] == ["old-1"]
    assert CallList(store.db).page(CallQuery(q="投诉", speaker="customer")).total == 1
    assert CallList(store.db).page(CallQuery(q="投诉", speaker="agent")).total == 0
    assert CallList(store.db).page(CallQuery(q="帮您我要")).total == 0  # not across the sides
    assert store.create_call("new-1", "A1", "inbound", None, None, {}, tenant="acme")


def test_a_previous_release_database_without_audit_tables_gets_them(database_url):
    _previous_release_database(database_url, with_audit_tables=False)
    store = CallStore(database_url)
    assert CALLWATCH_TABLES <= _tables(store.db.engine) and _schema_differences(store.db.engine) == []
    assert store.get_call("old-1").score == 88.0
    assert CallList(store.db).page(CallQuery()).total == 0


def test_downgrade_to_base_and_back(database_url):
    store = CallStore(database_url)
    store.create_call("c1", "A1", "inbound", None, None, {}, tenant="acme")
    downgrade(store.db.engine, BASELINE)
    assert "tenant" not in {c["name"] for c in inspect(store.db.engine).get_columns("calls")}
    upgrade(store.db.engine)
    assert store.get_call("c1").agent_id == "A1" and store.get_call("c1").tenant is None
    downgrade(store.db.engine, "base")
    assert not (_tables(store.db.engine) & (CALLWATCH_TABLES | {FTS_TABLE}))
    assert current_revision(store.db.engine) is None


# Each process imports everything first, says it is ready, then opens the store when told to: all of them
# reach the empty database within a few milliseconds of each other.
_START_TOGETHER = """
import sys, time
from pathlib import Path
from service.persistence.call_store import CallStore
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.002)
CallStore(url)
"""
STARTING_TOGETHER = 6


def test_processes_starting_together_migrate_once(database_url, tmp_path):
    """PostgreSQL serialises them with an advisory lock, SQLite with a lock file beside the database."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(STARTING_TOGETHER)]
    starts = [subprocess.Popen([sys.executable, "-c", _START_TOGETHER, database_url, str(r), str(go)], cwd=REPO,
                               stderr=subprocess.PIPE, text=True) for r in ready]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(p.poll() is None for p in starts), \
                [p.stderr.read() for p in starts if p.poll() is not None]
            time.sleep(0.01)
        go.touch()
        failures = [p.stderr.read() for p in starts if p.wait(timeout=120) != 0]
    finally:
        for p in starts:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not failures, failures[0]
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision() and _schema_differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_the_commands_move_the_schema_by_hand(database_url):
    from typer.testing import CliRunner

    from service.cli import app

    run = CliRunner()
    assert "at none, newest " + head_revision() in run.invoke(app, ["db-current", "--url", database_url]).output
    done = run.invoke(app, ["db-upgrade", "--url", database_url, "--to", "0002"])
    assert done.exit_code == 0 and done.output.strip().endswith("none -> 0002"), done.output
    assert run.invoke(app, ["db-upgrade", "--url", database_url]).output.strip().endswith(f"0002 -> {head_revision()}")
    back = run.invoke(app, ["db-downgrade", "--url", database_url, "--to", BASELINE])
    assert back.exit_code == 0 and back.output.strip().endswith(f"{head_revision()} -> {BASELINE}"), back.output


def test_utterances_stored_before_the_second_pass_read_as_live(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        _insert_old_call(conn, "old", "completed")
        conn.execute(text("INSERT INTO utterances (call_id, utterance_id, speaker, start, \"end\", text) "
                          "VALUES ('old', 'agent-0', 'agent', 0.5, 2.0, '您好')"))
    engine.dispose()
    store = CallStore(database_url)  # upgrades to head
    [row] = store.list_utterances("old")
    assert (row["text"], row["text_pass"], row["live_text"]) == ("您好", "live", None)


def test_0007_adds_the_qa_review_tables_and_its_downgrade_takes_away_only_them(database_url):
    from support.stored_reports import AUTOMATIC_SCORE, seed_call

    from service.access.keys import Principal
    from service.persistence import qa_reviews

    store = CallStore(database_url)
    key = seed_call(store, "reviewed", "A1", "acme")
    review_id, opened = qa_reviews.open_review(store, key, "acme", "A1", AUTOMATIC_SCORE, [], Principal("qa", "qa-li"))
    assert opened and qa_reviews.review_owner(store, review_id).call_key == key
    downgrade(store.db.engine, "0006")
    assert not (_tables(store.db.engine) & QA_TABLES) and store.get_call(key).score == AUTOMATIC_SCORE
    upgrade(store.db.engine)
    assert QA_TABLES <= _tables(store.db.engine) and _schema_differences(store.db.engine) == []
    assert qa_reviews.list_reviews(store, tenant=None) == [] and store.get_call(key).status == "completed"


def test_0008_adds_plans_and_calibration_tables_and_its_downgrade_keeps_the_reviews(database_url):
    from datetime import date

    from support.qa_calls import finding, store_call
    from support.stored_reports import AUTOMATIC_SCORE

    from service.access.keys import Principal
    from service.access.teams import NO_TEAMS
    from service.persistence import qa_plans
    from service.persistence import qa_reviews
    from service.qa.plan_models import PlanIn

    store = CallStore(database_url)
    key = store_call(store, "picked", "A1", "acme", findings=[finding("promise.rash", "breach", 12.0)])
    lead = Principal("supervisor", "lead")
    plan_id = qa_plans.create_plan(store, "acme", PlanIn(name="p", share=0.0, reviewers=["qa-li"]), lead)
    run = qa_plans.run_plan(store, plan_id, date(2026, 11, 23), lead, NO_TEAMS)
    assert [(p.call_id, p.reviewer, [r.code for r in p.reasons]) for p in run.picks] == [(key, "qa-li", ["severe_finding"])]
    review_id, _ = qa_reviews.open_review(store, key, "acme", "A1", AUTOMATIC_SCORE, [], Principal("qa", "qa-li"))
    downgrade(store.db.engine, "0007")
    assert not (_tables(store.db.engine) & QA_WORK_TABLES) and QA_TABLES <= _tables(store.db.engine)
    assert qa_reviews.review_owner(store, review_id).call_key == key
    upgrade(store.db.engine)
    assert QA_WORK_TABLES <= _tables(store.db.engine) and _schema_differences(store.db.engine) == []
    assert qa_plans.list_plans(store, None) == []
