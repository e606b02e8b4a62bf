"""Generated calls for the QA trends benchmark and its tests (benchmarks/qa_trends_data.py draws them): their rows
written in bulk into the tables a live call, the call list and the review workflow write, in one transaction a
batch, and the database made ready to be measured. Nothing here is used by the service itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select

from service.persistence.call_store import CallStore
from service.persistence.qa_call_facts import refresh_trend_facts
from service.persistence.qa_reviews import qa_disputes, qa_review_findings, qa_reviews, qa_rulings
from service.persistence.tables import audit_call_rules, audit_calls, call_prompts, calls, utterances


@dataclass
class GeneratedRows:
    """One batch's rows, per table; the review findings carry their own ids (a dispute names one)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    utterances: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    listed: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    rulings: list[dict[str, Any]] = field(default_factory=list)


def insert_generated(store: CallStore, rows: GeneratedRows) -> None:
    with store.db.engine.begin() as conn:
        for table, batch in ((calls, rows.calls), (utterances, rows.utterances), (call_prompts, rows.prompts),
                             (audit_calls, rows.listed), (audit_call_rules, rows.rules), (qa_reviews, rows.reviews),
                             (qa_review_findings, rows.findings), (qa_disputes, rows.disputes),
                             (qa_rulings, rows.rulings)):
            if batch:
                conn.execute(insert(table), batch)
        # As the service writes them: the call list's and the review workflow's writers keep these (revision 0010).
        refresh_trend_facts(conn, [row["call_id"] for row in rows.listed])


def settle(store: CallStore) -> None:
    """After the last batch: on PostgreSQL, move the findings' id sequence past the generated ids (as a real
    review's insert would) and analyse the tables, as autovacuum would within the minute after a load."""
    if store.db.dialect != "postgresql":
        return
    with store.db.engine.begin() as conn:
        last = select(func.max(qa_review_findings.c.finding_id)).scalar_subquery()
        conn.execute(select(func.setval(func.pg_get_serial_sequence("qa_review_findings", "finding_id"), last)))
    with store.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def server_version(store: CallStore) -> str:
    """The database's version, for the benchmark's machine line."""
    with store.db.engine.connect() as conn:
        if store.db.dialect == "postgresql":
            return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar()).split()[0]
        return "SQLite " + str(conn.exec_driver_sql("SELECT sqlite_version()").scalar())
