"""QA works the findings (issue 15): reviews of a call's automatic report, each finding's decision, the
agent's disputes, the supervisors' rulings, and the append-only history of every change.

New tables only: nothing existing is touched, so a downgrade drops them and nothing else. `qa_reviews.call_id`
refers to the call's row key (`calls.call_id`), as every other table that names a call does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _moment() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qa_reviews",
        sa.Column("review_id", sa.String(40), primary_key=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False),
        sa.Column("tenant", sa.String(128)),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("opened_by_role", sa.String(16), nullable=False),
        sa.Column("opened_at", _moment(), nullable=False),
        sa.Column("submitted_by", sa.String(128)),
        sa.Column("submitted_at", _moment()),
        sa.Column("automatic_score", sa.Float),
        sa.Column("reviewed_score", sa.Float),
        sa.Column("acknowledged_at", _moment()),
        sa.UniqueConstraint("call_id", name="uq_qa_reviews_call_id"),
    )
    op.create_index("ix_qa_reviews_tenant_agent", "qa_reviews", ["tenant", "agent_id"])
    op.create_index("ix_qa_reviews_opened_at", "qa_reviews", ["opened_at"])

    op.create_table(
        "qa_review_findings",
        sa.Column("finding_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.String(40), sa.ForeignKey("qa_reviews.review_id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("report_index", sa.Integer),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("end", sa.Float),
        sa.Column("detail", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", _moment()),
    )
    op.create_index("ix_qa_review_findings_review_id", "qa_review_findings", ["review_id"])

    op.create_table(
        "qa_disputes",
        sa.Column("dispute_id", sa.String(40), primary_key=True),
        sa.Column("review_id", sa.String(40), sa.ForeignKey("qa_reviews.review_id"), nullable=False),
        sa.Column("finding_id", sa.Integer, sa.ForeignKey("qa_review_findings.finding_id"), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("raised_at", _moment(), nullable=False),
        sa.UniqueConstraint("finding_id", name="uq_qa_disputes_finding_id"),
    )
    op.create_index("ix_qa_disputes_review_id", "qa_disputes", ["review_id"])
    op.create_index("ix_qa_disputes_raised_at", "qa_disputes", ["raised_at"])

    op.create_table(
        "qa_rulings",
        sa.Column("ruling_id", sa.String(40), primary_key=True),
        sa.Column("dispute_id", sa.String(40), sa.ForeignKey("qa_disputes.dispute_id"), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ruled_by", sa.String(128), nullable=False),
        sa.Column("ruled_by_role", sa.String(16), nullable=False),
        sa.Column("ruled_at", _moment(), nullable=False),
        sa.Column("score_before", sa.Float),
        sa.Column("score_after", sa.Float),
        sa.UniqueConstraint("dispute_id", name="uq_qa_rulings_dispute_id"),
    )

    op.create_table(
        "qa_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("review_id", sa.String(40), sa.ForeignKey("qa_reviews.review_id"), nullable=False),
        sa.Column("at", _moment(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("finding_id", sa.Integer),
        sa.Column("dispute_id", sa.String(40)),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.UniqueConstraint("entry_id", name="uq_qa_history_entry_id"),
    )
    op.create_index("ix_qa_history_review", "qa_history", ["review_id", "id"])


def downgrade() -> None:
    # Children first: each table's foreign keys point at the ones dropped after it.
    for table in ("qa_history", "qa_rulings", "qa_disputes", "qa_review_findings", "qa_reviews"):
        op.drop_table(table)
