"""The tables of QA's planned work (revision 0008): sampling plans, their runs and the calls they picked, and
calibrations (one call scored blind by several reviewers). The review workflow's own tables are in
`service.persistence.qa_reviews` (revision 0007); these sit beside them and change none of them.

A pick or a calibration names its call by the row key (`calls.call_id`), as every table that names a call does.
A reviewer is named as the keys file names it: its principal name, within the tenant of the plan or of the
supervisor who started the calibration (keys are unique per role, name and tenant).

The schema is made by revision 0008 (service/migrations); these definitions are its tables, for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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
)

from service.persistence.tables import calls

qa_work_metadata = MetaData()


def _moment() -> DateTime:
    return DateTime(timezone=True)


qa_sampling_plans = Table(
    "qa_sampling_plans",
    qa_work_metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("tenant", String(128), doc="the calls it samples: this tenant's; null: every tenant's (a deployment-wide plan)"),
    Column("name", String(200), nullable=False),
    Column("share", Float, nullable=False, doc="of each agent's calls a week, 0..1"),
    Column("score_below", Float, doc="every call whose automatic score is under it is picked; null: off"),
    Column("severities", String(64), nullable=False, doc="space separated: every call with a finding of one is picked"),
    Column("negative_end", Boolean, nullable=False, doc="every call whose customer ended angry or negative is picked"),
    Column("teams", Text, doc="JSON list: only these teams' agents; null: every agent of the tenant"),
    Column("seed", String(64), nullable=False, doc="the sample's seed: the same calls draw the same sample"),
    Column("created_by", String(128), nullable=False),
    Column("created_by_role", String(16), nullable=False),
    Column("created_at", _moment(), nullable=False),
    Column("updated_at", _moment(), nullable=False),
    Index("ix_qa_sampling_plans_tenant", "tenant"),
)

qa_plan_reviewers = Table(
    "qa_plan_reviewers",
    qa_work_metadata,
    Column("plan_id", String(40), ForeignKey("qa_sampling_plans.plan_id"), primary_key=True),
    Column("reviewer", String(128), primary_key=True),
    Column("position", Integer, nullable=False, doc="the plan's order: ties in balancing go to the earlier"),
)

qa_plan_runs = Table(
    "qa_plan_runs",
    qa_work_metadata,
    Column("run_id", String(40), primary_key=True),
    Column("plan_id", String(40), ForeignKey("qa_sampling_plans.plan_id"), nullable=False),
    Column("week", String(10), nullable=False, doc="the Monday of the week it sampled (ISO date)"),
    Column("ran_at", _moment(), nullable=False),
    Column("ran_by", String(128), nullable=False),
    Column("ran_by_role", String(16), nullable=False),
    Column("calls_seen", Integer, nullable=False),
    Column("picked", Integer, nullable=False, doc="how many calls this run picked (a rerun: none)"),
    Index("ix_qa_plan_runs_plan_week", "plan_id", "week"),
)

qa_plan_picks = Table(
    "qa_plan_picks",
    qa_work_metadata,
    Column("pick_id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(40), ForeignKey("qa_sampling_plans.plan_id"), nullable=False),
    Column("run_id", String(40), ForeignKey("qa_plan_runs.run_id"), nullable=False),
    Column("call_id", String(128), ForeignKey(calls.c.call_id), nullable=False, doc="the call's row key"),
    Column("tenant", String(128), doc="the call's tenant"),
    Column("agent_id", String(128), nullable=False),
    Column("week", String(10), nullable=False),
    Column("reasons", Text, nullable=False, doc="JSON list of {code, detail}: why it was picked"),
    Column("rank", Float, nullable=False, doc="its place in the seeded draw, 0..1"),
    Column("reviewer", String(128), nullable=False),
    Column("picked_at", _moment(), nullable=False),
    # A plan picks a call once: a rerun of the same week finds it picked and picks nothing new.
    UniqueConstraint("plan_id", "call_id", name="uq_qa_plan_picks_plan_call"),
    Index("ix_qa_plan_picks_reviewer", "reviewer", "picked_at"),
    Index("ix_qa_plan_picks_plan_week", "plan_id", "week"),
)

qa_calibrations = Table(
    "qa_calibrations",
    qa_work_metadata,
    Column("calibration_id", String(40), primary_key=True),
    Column("call_id", String(128), ForeignKey(calls.c.call_id), nullable=False, doc="the call's row key"),
    Column("call_tenant", String(128), doc="the call's tenant (who may see it is decided on it)"),
    Column("agent_id", String(128), nullable=False),
    Column("scope_tenant", String(128), doc="the tenant of the supervisor who started it: its reviewers are keys of it"),
    Column("note", Text),
    Column("automatic_score", Float),
    Column("created_by", String(128), nullable=False),
    Column("created_by_role", String(16), nullable=False),
    Column("created_at", _moment(), nullable=False),
    Index("ix_qa_calibrations_created_at", "created_at"),
)

qa_calibration_reviewers = Table(
    "qa_calibration_reviewers",
    qa_work_metadata,
    Column("calibration_id", String(40), ForeignKey("qa_calibrations.calibration_id"), primary_key=True),
    Column("reviewer", String(128), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("state", String(16), nullable=False, doc="open | submitted"),
    Column("started_at", _moment(), doc="the reviewer's first decision or added finding"),
    Column("submitted_at", _moment()),
    Column("score", Float, doc="the reviewer's score of the call, once submitted"),
    Index("ix_qa_calibration_reviewers_reviewer", "reviewer"),
)

qa_calibration_findings = Table(
    "qa_calibration_findings",
    qa_work_metadata,
    Column("finding_id", Integer, primary_key=True, autoincrement=True),
    Column("calibration_id", String(40), ForeignKey("qa_calibrations.calibration_id"), nullable=False, index=True),
    Column("source", String(16), nullable=False, doc="automatic (copied from the report, every reviewer's) | added"),
    Column("added_by", String(128), doc="the reviewer who added it; only they see it until they submit"),
    Column("rule_id", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("t", Float, nullable=False),
    Column("end", Float),
    Column("detail", Text),
    Column("note", Text),
)

qa_calibration_decisions = Table(
    "qa_calibration_decisions",
    qa_work_metadata,
    Column("calibration_id", String(40), ForeignKey("qa_calibrations.calibration_id"), primary_key=True),
    Column("reviewer", String(128), primary_key=True),
    Column("finding_id", Integer, ForeignKey("qa_calibration_findings.finding_id"), primary_key=True),
    Column("decision", String(16), nullable=False, doc="confirmed | rejected (no row: pending)"),
    Column("reason", Text),
    Column("decided_at", _moment(), nullable=False),
)
