"""The tables callwatch keeps, as the newest revision of `service.migrations` leaves them, for queries.

The schema itself is owned by the revisions: a store brings its database to the newest one when it opens it,
and tests/test_migrations.py checks that the revisions build exactly these tables on both databases.

`metadata`: calls, their events, utterances and prompts, written as they happen. `audit_metadata`: the audit
queue (`audit_batches` / `audit_jobs`: one job per file, written as each job moves, so an interrupted run can
be resumed) and the call list (`audit_calls` / `audit_call_rules`: a flat index of every reported call, with
the filters and sorts QA uses each indexed, kept apart from `calls` so the list never parses report JSON). The
full-text index is dialect-specific DDL, not a table here (`service.persistence.search`).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    or_,
)

metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column("call_id", String(128), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("direction", String(16), nullable=False),
    Column("caller_number", String(32)),
    Column("started_at", String(40), doc="local start time as the phone system gave it (ISO 8601)"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, doc="live | completed | dropped | interrupted"),
    Column("audio_format", Text, nullable=False),
    Column("duration", Float),
    Column("score", Float),
    Column("report", Text, doc="post-call report JSON (findings, score, figures)"),
    Column("tenant", String(128), index=True, doc="the integrator or QA tenant that owns the call; none before tenants"),
    Column("instance", String(128), index=True,
           doc="the callwatch instance that ingests the call (CALLWATCH_INSTANCE_ID); none for audits and older rows"),
    Column("client_call_id", String(128),
           doc="the call id as the phone system sent it, where the key had to differ (another tenant's call has it); "
               "null: the key is that id"),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("event", String(32), nullable=False),
    Column("t", Float, nullable=False),
    Column("by", String(16)),
    Column("target", String(128)),
)

utterances = Table(
    "utterances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("utterance_id", String(64), nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("text", Text, nullable=False, doc="the transcript reports and search read: the second pass's once it ran"),
    Column("level_db", Float, doc="speech level, dBFS (the speech.volume rule compares the agent's)"),
    Column("emotion", Text, doc="emotion result JSON for customer utterances"),
    Column("live_text", Text, doc="what the agent's screen showed, once the second pass replaced `text` (null: nothing)"),
    Column("text_pass", String(16), doc="live | second: the pass `text` is from (null: stored before there were two)"),
    UniqueConstraint("call_id", "utterance_id"),
)

# The customer utterances whose emotion result carries a turn (docs/emotion.md: `turn` is "negative" or
# "recovered", words no other field of a result holds): a few in a hundred utterances, all trends read of them.
# Written with literals, not bound values: a planner proves a query may use a partial index only from the
# query's own text (SQLite prepares a statement before its values are bound).
CUSTOMER_TURN = (
    utterances.c.speaker == literal_column("'customer'"),
    utterances.c.emotion.is_not(None),
    or_(utterances.c.emotion.like(literal_column("'%\"negative\"%'")),
        utterances.c.emotion.like(literal_column("'%\"recovered\"%'"))),
)
Index("ix_utterances_customer_turns", utterances.c.call_id,
      sqlite_where=and_(*CUSTOMER_TURN), postgresql_where=and_(*CUSTOMER_TURN))


call_prompts = Table(
    "call_prompts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("prompt_id", String(96), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("t", Float, nullable=False),
    Column("text", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("dismissed_at", DateTime(timezone=True), doc="when the agent dismissed it; QA reads whether prompts were heeded"),
    Column("dismissed_by", String(128)),
    UniqueConstraint("call_id", "prompt_id"),
)


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
    # A tenant's calls of a date range (trends, sampling plans), with what trends read of each, so the rows
    # (wide: audit details, paths) are never visited: without it a tenant's whole list is read.
    Index("ix_audit_calls_tenant_started", "tenant", "started_at", "agent_id", "score", "call_id"),
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

# Trends' facts (docs/qa.md, Trends; revision 0010): one narrow row per listed call with the figures trends sum,
# settled as QA settled them (the submitted review's score and findings where there is one, after rulings), so
# a trends query adds up columns in the database instead of reading reports, utterances, prompts and reviews
# call by call. Written with the call's list row and again on every write that changes a figure
# (`service.persistence.qa_call_facts.refresh_trend_facts`). No team: that is the keys file's, read per query.
qa_trend_calls = Table(
    "qa_trend_calls",
    audit_metadata,
    Column("call_id", String(128), primary_key=True),
    Column("tenant", String(128)),
    Column("agent_id", String(128), nullable=False),
    Column("started_at", String(40), nullable=False, doc="as the call list has it (ISO 8601 text)"),
    Column("week", String(10), nullable=False, doc="the Monday of the call's week on its own clock"),
    Column("score", Float, doc="the reviewed score where a submitted review has one, else the automatic one"),
    Column("reviewed", Integer, nullable=False, doc="1: score and findings are the submitted review's"),
    Column("turned_negative", Integer, nullable=False),
    Column("recovered", Integer, nullable=False),
    Column("prompts_shown", Integer, nullable=False),
    Column("prompts_heeded", Integer, nullable=False),
    Column("prompts_dismissed", Integer, nullable=False),
    Index("ix_qa_trend_calls_tenant_started", "tenant", "started_at"),
    Index("ix_qa_trend_calls_agent_started", "agent_id", "started_at"),
)

# Its findings per rule (settled likewise), a row per call and rule with at least one; the call's tenant,
# agent and start repeated so a range is summed per agent, week and rule without a join.
qa_trend_rules = Table(
    "qa_trend_rules",
    audit_metadata,
    Column("call_id", String(128), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("tenant", String(128)),
    Column("agent_id", String(128), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("week", String(10), nullable=False),
    Column("findings", Integer, nullable=False),
    Index("ix_qa_trend_rules_tenant_started", "tenant", "started_at"),
    Index("ix_qa_trend_rules_agent_started", "agent_id", "started_at"),
)
