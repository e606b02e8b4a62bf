"""Indexes for QA trends at scale (issue 15: 100,000 calls, 1,000 agents, p95 ≤ 300 ms; benchmarks/qa_trends.py).

- `ix_audit_calls_tenant_started` (tenant, started_at, then agent_id, score, call_id): a tenant's calls of a
  date range, with what trends read of each, so the list's wide rows are not visited. With only the tenant
  index a planner without statistics (SQLite is never analysed here) reads the tenant's whole list and checks
  each start.
- `ix_utterances_customer_turns`: a partial index of the customer utterances whose emotion result carries a
  turn, a few in a hundred. Trends read only those; through the call-id index they read every utterance of
  every call in range. Queries must name its condition as written here (`service.persistence.tables.
  CUSTOMER_TURN`).

Indexes only: nothing is rewritten, and a downgrade drops them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CUSTOMER_TURN = sa.text("speaker = 'customer' AND emotion IS NOT NULL "
                        "AND (emotion LIKE '%\"negative\"%' OR emotion LIKE '%\"recovered\"%')")


def upgrade() -> None:
    op.create_index("ix_audit_calls_tenant_started", "audit_calls", ["tenant", "started_at", "agent_id", "score", "call_id"])
    op.create_index("ix_utterances_customer_turns", "utterances", ["call_id"], sqlite_where=CUSTOMER_TURN,
                    postgresql_where=CUSTOMER_TURN)


def downgrade() -> None:
    op.drop_index("ix_utterances_customer_turns", table_name="utterances")
    op.drop_index("ix_audit_calls_tenant_started", table_name="audit_calls")
