"""The audit package's own tables, on the store's engine with a separate MetaData.

`audit_batches` / `audit_jobs`: the queue, one job per file, written as each job moves so an interrupted run
can be resumed. `audit_calls` / `audit_call_rules`: a flat index of every reported call for the call list
(the filters and sorts QA uses, each indexed), kept apart from `calls` so the list never parses report JSON.
The full-text index is a dialect-specific structure (see `service.audit.search`).

Every table here, and the full-text index, is created and changed by the revisions in `service.migrations`;
these definitions are the newest revision's, for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine

audit_metadata = MetaData()

audit_batches = Table(
    "audit_batches",
    audit_metadata,
    Column("batch_id", String(40), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False, doc="upload | path | cli"),
    Column("rules_name", String(256), nullable=False),
    Column("options", Text, nullable=False, doc="JSON: agent channel, formats, limits"),
)

audit_jobs = Table(
    "audit_jobs",
    audit_metadata,
    Column("job_id", String(40), primary_key=True),
    Column("batch_id", String(40), nullable=False, index=True),
    Column("file_name", String(512), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("size_bytes", Integer),
    Column("call_id", String(128), index=True),
    Column("state", String(16), nullable=False, doc="queued | running | done | skipped | failed"),
    Column("progress", Float, nullable=False, default=0.0),
    Column("error_code", String(32)),
    Column("error", Text),
    Column("audio_seconds", Float),
    Column("meta", Text, doc="JSON RecordingMeta the job was queued with"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

audit_calls = Table(
    "audit_calls",
    audit_metadata,
    Column("rowid_", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), nullable=False, unique=True),
    Column("agent_id", String(128), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("started_at", String(40), doc="ISO 8601, sortable as text"),
    Column("duration", Float),
    Column("score", Float),
    Column("worst_valence", Float, doc="the customer's lowest smoothed valence; null without emotion"),
    Column("worst_label", String(16)),
    Column("finding_count", Integer, nullable=False, default=0),
    Column("rules", Text, nullable=False, default="", doc="rule ids breached, space separated (display only)"),
    Column("file_name", String(512)),
    Column("speaker_attribution", String(16), nullable=False, default="channels"),
    Column("source_path", Text, doc="the recording, for the report's player"),
    Column("audit", Text, doc="JSON: how the call was audited (file, format, rules, models)"),
    Column("audited_at", DateTime(timezone=True), nullable=False),
    Column("tenant", String(128), index=True, doc="the integrator or QA tenant that owns the call; none before tenants"),
    Index("ix_audit_calls_agent_started", "agent_id", "started_at"),
    Index("ix_audit_calls_started", "started_at"),
    Index("ix_audit_calls_score", "score"),
    Index("ix_audit_calls_duration", "duration"),
    Index("ix_audit_calls_worst", "worst_valence"),
)

audit_call_rules = Table(
    "audit_call_rules",
    audit_metadata,
    Column("call_id", String(128), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("findings", Integer, nullable=False),
    Index("ix_audit_call_rules_rule", "rule_id", "call_id"),
)


def create_audit_tables(engine: Engine) -> None:
    """Make sure the schema (these tables included) is at the newest revision; two small queries when it is."""
    from service.migrations import upgrade_to_head

    upgrade_to_head(engine)
