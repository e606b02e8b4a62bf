"""Trends' facts (issue 15: trends at 100,000 calls and 1,000 agents, p95 ≤ 300 ms; benchmarks/qa_trends.py):
`qa_trend_calls`, one narrow row per listed call with the figures trends sum, and `qa_trend_rules`, its
settled findings per rule (service/persistence/tables.py says what each column holds). Reading reports,
utterances, prompts and reviews call by call took seconds for a tenant's twelve weeks; summing these columns
in the database takes milliseconds.

The upgrade fills both for every call already listed, in batches, with the same function the service keeps
them right with afterwards (`refresh_trend_facts`), so the rows are what the service itself would write. A
downgrade drops them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 500


def _facts_columns() -> list[sa.Column]:
    return [sa.Column("tenant", sa.String(128)), sa.Column("agent_id", sa.String(128), nullable=False),
            sa.Column("started_at", sa.String(40), nullable=False), sa.Column("week", sa.String(10), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "qa_trend_calls",
        sa.Column("call_id", sa.String(128), primary_key=True), *_facts_columns(),
        sa.Column("score", sa.Float), sa.Column("reviewed", sa.Integer, nullable=False),
        sa.Column("turned_negative", sa.Integer, nullable=False), sa.Column("recovered", sa.Integer, nullable=False),
        sa.Column("prompts_shown", sa.Integer, nullable=False), sa.Column("prompts_heeded", sa.Integer, nullable=False),
        sa.Column("prompts_dismissed", sa.Integer, nullable=False))
    op.create_index("ix_qa_trend_calls_tenant_started", "qa_trend_calls", ["tenant", "started_at"])
    op.create_index("ix_qa_trend_calls_agent_started", "qa_trend_calls", ["agent_id", "started_at"])
    op.create_table(
        "qa_trend_rules",
        sa.Column("call_id", sa.String(128), primary_key=True), sa.Column("rule_id", sa.String(64), primary_key=True),
        *_facts_columns(), sa.Column("findings", sa.Integer, nullable=False))
    op.create_index("ix_qa_trend_rules_tenant_started", "qa_trend_rules", ["tenant", "started_at"])
    op.create_index("ix_qa_trend_rules_agent_started", "qa_trend_rules", ["agent_id", "started_at"])

    # Imported here, not at the top: the service's modules are needed only to backfill, with tables that exist
    # from this revision on.
    from service.persistence.qa_call_facts import refresh_trend_facts

    conn = op.get_bind()
    listed = [row[0] for row in conn.execute(sa.text("SELECT call_id FROM audit_calls ORDER BY call_id"))]
    for start in range(0, len(listed), BATCH):
        refresh_trend_facts(conn, listed[start:start + BATCH])


def downgrade() -> None:
    op.drop_table("qa_trend_rules")
    op.drop_table("qa_trend_calls")
