"""Baseline: the schema of the last release before migrations (git f99fc2b), frozen here.

The live code created these tables itself (`metadata.create_all`, and the audit tables and full-text index
on first use), so a database of that release may hold all of them or only the call tables. This revision
creates whatever is missing and nothing else: on an empty database it builds the whole schema, on a
previous-release database it fills the gaps and leaves every row alone.

The definitions are copied, not imported: later revisions change the live tables, this one must not move.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FTS_TABLE = "audit_fts"
FTS_COLUMNS = ("agent", "customer", "other")

schema = sa.MetaData()

sa.Table(
    "calls", schema,
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("agent_id", sa.String(128), nullable=False, index=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("caller_number", sa.String(32)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("audio_format", sa.Text, nullable=False),
    sa.Column("duration", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("report", sa.Text),
)
sa.Table(
    "call_events", schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False, index=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("t", sa.Float, nullable=False),
    sa.Column("by", sa.String(16)),
    sa.Column("target", sa.String(128)),
)
sa.Table(
    "utterances", schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False, index=True),
    sa.Column("utterance_id", sa.String(64), nullable=False),
    sa.Column("speaker", sa.String(16), nullable=False),
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("end", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("level_db", sa.Float),
    sa.Column("emotion", sa.Text),
    sa.UniqueConstraint("call_id", "utterance_id"),
)
sa.Table(
    "call_prompts", schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False, index=True),
    sa.Column("prompt_id", sa.String(96), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("t", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("dismissed_at", sa.DateTime(timezone=True)),
    sa.Column("dismissed_by", sa.String(128)),
    sa.UniqueConstraint("call_id", "prompt_id"),
)
sa.Table(
    "audit_batches", schema,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("rules_name", sa.String(256), nullable=False),
    sa.Column("options", sa.Text, nullable=False),
)
sa.Table(
    "audit_jobs", schema,
    sa.Column("job_id", sa.String(40), primary_key=True),
    sa.Column("batch_id", sa.String(40), nullable=False, index=True),
    sa.Column("file_name", sa.String(512), nullable=False),
    sa.Column("source_path", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer),
    sa.Column("call_id", sa.String(128), index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("error_code", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("audio_seconds", sa.Float),
    sa.Column("meta", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "audit_calls", schema,
    sa.Column("rowid_", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(128), nullable=False, unique=True),
    sa.Column("agent_id", sa.String(128), nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("started_at", sa.String(40)),
    sa.Column("duration", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("worst_valence", sa.Float),
    sa.Column("worst_label", sa.String(16)),
    sa.Column("finding_count", sa.Integer, nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("file_name", sa.String(512)),
    sa.Column("speaker_attribution", sa.String(16), nullable=False),
    sa.Column("source_path", sa.Text),
    sa.Column("audit", sa.Text),
    sa.Column("audited_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_audit_calls_agent_started", "agent_id", "started_at"),
    sa.Index("ix_audit_calls_started", "started_at"),
    sa.Index("ix_audit_calls_score", "score"),
    sa.Index("ix_audit_calls_duration", "duration"),
    sa.Index("ix_audit_calls_worst", "worst_valence"),
)
sa.Table(
    "audit_call_rules", schema,
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Index("ix_audit_call_rules_rule", "rule_id", "call_id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    schema.create_all(bind, checkfirst=True)
    if bind.dialect.name == "sqlite":
        # Contentless: the transcripts live in `utterances`; the index holds only tokens and positions.
        op.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(agent, customer, other, "
            "content='', tokenize='unicode61 remove_diacritics 0')"
        )
    elif bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE TABLE IF NOT EXISTS {FTS_TABLE} (rowid_ BIGINT PRIMARY KEY, agent TSVECTOR, "
            "customer TSVECTOR, other TSVECTOR, alltext TSVECTOR)"
        )
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{FTS_TABLE}_all ON {FTS_TABLE} USING GIN (alltext)")
        for col in FTS_COLUMNS:
            op.execute(f"CREATE INDEX IF NOT EXISTS ix_{FTS_TABLE}_{col} ON {FTS_TABLE} USING GIN ({col})")


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    schema.drop_all(op.get_bind(), checkfirst=True)
