"""What crosses /v1/qa for sampling plans and the reviewer's work queue (docs/qa.md shows each with an example):
a supervisor's plan, a run of it, the calls it picked and why, and a reviewer's queue."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rules.settings import Severity
from service.audit.web.models import UtcDateTime

ReasonCode = Literal["sample", "severe_finding", "low_score", "negative_end", "calibration"]
ReviewProgress = Literal["not_started", "in_progress", "submitted"]
FIRST_WEEK, LAST_WEEK = date(2000, 1, 3), date(2999, 12, 30)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("each may be named once")
    return values


def _said(text: str) -> str:
    if not text.strip():
        raise ValueError("must say something (not only blanks)")
    return text.strip()


Name = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_said)]
PlanName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_said)]
Week = Annotated[date, Field(ge=FIRST_WEEK, le=LAST_WEEK, description="any day of the week: its Monday is meant",
                             examples=["2026-11-23"])]


def _most_severe() -> list[Severity]:
    return ["breach"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanIn(_Wire):
    """A sampling plan: a share of each agent's calls a week, and the calls always picked, assigned to its
    reviewers. The plan samples the calls of the supervisor's tenant (a team supervisor's: of its teams)."""

    name: PlanName = Field(examples=["每周抽检 5%"])
    share: float = Field(ge=0, le=1, allow_inf_nan=False,
                         description="of each agent's calls a week, 0..1 (0.05: 5 %; 0: no sample, conditions only)",
                         examples=[0.05])
    score_below: float | None = Field(None, ge=0, le=100, allow_inf_nan=False,
                                      description="every call whose automatic score is under this; null: off",
                                      examples=[70])
    severities: Annotated[list[Severity], AfterValidator(_unique)] = Field(
        default_factory=_most_severe, max_length=3,
        description="every call with a finding of one of these severities ([]: off)")
    negative_end: bool = Field(True, description="every call whose customer ended negative (docs/qa.md, Definitions)")
    reviewers: Annotated[list[Name], AfterValidator(_unique)] = Field(
        min_length=1, max_length=100, description="the reviewers' key names (role qa or supervisor, of the plan's tenant)",
        examples=[["qa.li", "qa.zhou"]])
    teams: Annotated[list[Name], Field(min_length=1, max_length=100), AfterValidator(_unique)] | None = Field(
        None, description="only these teams' agents; null: every agent (a team supervisor's plan: its teams by default)")
    seed: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="the sample's seed (default: the plan's id); the same seed and calls draw the same sample")


class PlanOut(_Wire):
    plan_id: str
    tenant: str | None = Field(description="the tenant whose calls it samples; null: every tenant's")
    name: str
    share: float
    score_below: float | None
    severities: list[str]
    negative_end: bool
    reviewers: list[str]
    teams: list[str] | None
    seed: str
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime


class PlanList(_Wire):
    plans: list[PlanOut]


class RunIn(_Wire):
    week: Week | None = Field(None, description="the week to sample; default: the last whole week (UTC)")


class PickReason(_Wire):
    code: ReasonCode
    detail: str = Field(description="in words: the sample's size, the findings, the score, how the customer ended")


class PickOut(_Wire):
    pick_id: int
    plan_id: str
    call_id: str = Field(description="as the caller names the call (a tenant-scoped key: the id its phone system sent)")
    agent_id: str
    week: str
    reasons: list[PickReason]
    reviewer: str
    picked_at: UtcDateTime
    review_state: ReviewProgress = Field(description="of the call's review: none yet, open, submitted")
    review_id: str | None


class RunOut(_Wire):
    run_id: str
    plan_id: str
    week: str
    ran_at: UtcDateTime
    ran_by: str
    calls_seen: int = Field(description="the week's calls in the plan's scope")
    picked: int = Field(description="picked by this run (0 when run again over the same calls)")
    week_picks: dict[str, int] = Field(description="every pick of the week so far, per reviewer")
    picks: list[PickOut] = Field(description="this run's picks")


class PickList(_Wire):
    picks: list[PickOut]


class QueueItem(_Wire):
    kind: Literal["sample", "calibration"]
    call_id: str = Field(description="as the caller names the call")
    agent_id: str
    assigned_at: UtcDateTime
    state: ReviewProgress
    reasons: list[PickReason]
    review_id: str | None = Field(description="a sample: the call's review, where one is open or submitted")
    plan_id: str | None
    plan_name: str | None
    week: str | None
    calibration_id: str | None


class Queue(_Wire):
    reviewer: str
    items: list[QueueItem]
