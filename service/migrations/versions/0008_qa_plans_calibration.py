"""QA's planned work (issue 15): sampling plans, their runs and picks (the reviewers' work queue), and
calibrations (one call scored blind by several reviewers: their decisions, their added findings).

New tables only: the review workflow of 0007 keeps its one review a call, and a downgrade to 0007 drops these
and nothing else. Picks and calibrations name a call by its row key (`calls.call_id`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _moment() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qa_sampling_plans",
        sa.Column("plan_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(128)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("score_below", sa.Float),
        sa.Column("severities", sa.String(64), nullable=False),
        sa.Column("negative_end", sa.Boolean, nullable=False),
        sa.Column("teams", sa.Text),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_by_role", sa.String(16), nullable=False),
        sa.Column("created_at", _moment(), nullable=False),
        sa.Column("updated_at", _moment(), nullable=False),
    )
    op.create_index("ix_qa_sampling_plans_tenant", "qa_sampling_plans", ["tenant"])

    op.create_table(
        "qa_plan_reviewers",
        sa.Column("plan_id", sa.String(40), sa.ForeignKey("qa_sampling_plans.plan_id"), primary_key=True),
        sa.Column("reviewer", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )

    op.create_table(
        "qa_plan_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("plan_id", sa.String(40), sa.ForeignKey("qa_sampling_plans.plan_id"), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("ran_at", _moment(), nullable=False),
        sa.Column("ran_by", sa.String(128), nullable=False),
        sa.Column("ran_by_role", sa.String(16), nullable=False),
        sa.Column("calls_seen", sa.Integer, nullable=False),
        sa.Column("picked", sa.Integer, nullable=False),
    )
    op.create_index("ix_qa_plan_runs_plan_week", "qa_plan_runs", ["plan_id", "week"])

    op.create_table(
        "qa_plan_picks",
        sa.Column("pick_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(40), sa.ForeignKey("qa_sampling_plans.plan_id"), nullable=False),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("qa_plan_runs.run_id"), nullable=False),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False),
        sa.Column("tenant", sa.String(128)),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("rank", sa.Float, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("picked_at", _moment(), nullable=False),
        sa.UniqueConstraint("plan_id", "call_id", name="uq_qa_plan_picks_plan_call"),
    )
    op.create_index("ix_qa_plan_picks_reviewer", "qa_plan_picks", ["reviewer", "picked_at"])
    op.create_index("ix_qa_plan_picks_plan_week", "qa_plan_picks", ["plan_id", "week"])

    op.create_table(
        "qa_calibrations",
        sa.Column("calibration_id", sa.String(40), primary_key=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.call_id"), nullable=False),
        sa.Column("call_tenant", sa.String(128)),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("scope_tenant", sa.String(128)),
        sa.Column("note", sa.Text),
        sa.Column("automatic_score", sa.Float),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_by_role", sa.String(16), nullable=False),
        sa.Column("created_at", _moment(), nullable=False),
    )
    op.create_index("ix_qa_calibrations_created_at", "qa_calibrations", ["created_at"])

    op.create_table(
        "qa_calibration_reviewers",
        sa.Column("calibration_id", sa.String(40), sa.ForeignKey("qa_calibrations.calibration_id"), primary_key=True),
        sa.Column("reviewer", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", _moment()),
        sa.Column("submitted_at", _moment()),
        sa.Column("score", sa.Float),
    )
    op.create_index("ix_qa_calibration_reviewers_reviewer", "qa_calibration_reviewers", ["reviewer"])

    op.create_table(
        "qa_calibration_findings",
        sa.Column("finding_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("calibration_id", sa.String(40), sa.ForeignKey("qa_calibrations.calibration_id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("added_by", sa.String(128)),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("end", sa.Float),
        sa.Column("detail", sa.Text),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_qa_calibration_findings_calibration_id", "qa_calibration_findings", ["calibration_id"])

    op.create_table(
        "qa_calibration_decisions",
        sa.Column("calibration_id", sa.String(40), sa.ForeignKey("qa_calibrations.calibration_id"), primary_key=True),
        sa.Column("reviewer", sa.String(128), primary_key=True),
        sa.Column("finding_id", sa.Integer, sa.ForeignKey("qa_calibration_findings.finding_id"), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("decided_at", _moment(), nullable=False),
    )


def downgrade() -> None:
    # Children first: each table's foreign keys point at the ones dropped after it.
    for table in ("qa_calibration_decisions", "qa_calibration_findings", "qa_calibration_reviewers", "qa_calibrations",
                  "qa_plan_picks", "qa_plan_runs", "qa_plan_reviewers", "qa_sampling_plans"):
        op.drop_table(table)
