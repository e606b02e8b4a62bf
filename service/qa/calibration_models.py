"""What crosses /v1/qa for calibration (docs/qa.md, Calibration): a supervisor sends one call to several
reviewers, each works its findings blind, and the result says where they agree. A reviewer's decisions and
added findings use the review workflow's requests (`DecisionIn`, `AddedFindingIn`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.audit.web.models import UtcDateTime
from service.qa.models import Decision, FindingSource, Text
from service.qa.plan_models import Name, ReviewProgress

KappaMethod = Literal["cohen", "fleiss"]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("each reviewer may be named once")
    return values


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalibrationIn(_Wire):
    """One call, sent to several reviewers to score blind."""

    call_id: str = Field(min_length=1, max_length=128, description="a stored call with a report, as the caller names it")
    reviewers: Annotated[list[Name], Field(min_length=2, max_length=30), AfterValidator(_unique)] = Field(
        description="two or more reviewers' key names (role qa or supervisor, of the supervisor's tenant)",
        examples=[["qa.li", "qa.zhou", "qa.chen"]])
    note: Text | None = Field(None, description="what the supervisor wants looked at", examples=["投诉处理的共情判定"])


class CalibrationReviewer(_Wire):
    reviewer: str
    state: ReviewProgress
    submitted_at: UtcDateTime | None


class CalibrationOut(_Wire):
    """A calibration as its supervisor sees it: who has submitted, never what anyone decided (the result says
    that, once two have submitted)."""

    calibration_id: str
    call_id: str = Field(description="as the caller names the call")
    agent_id: str
    note: str | None
    automatic_score: float | None
    created_by: str
    created_at: UtcDateTime
    reviewers: list[CalibrationReviewer]


class CalibrationList(_Wire):
    calibrations: list[CalibrationOut]


class CalibrationFinding(_Wire):
    finding_id: int
    source: FindingSource = Field(description="automatic: from the call's report; added: by this reviewer")
    rule_id: str
    severity: str
    t: float
    end: float | None
    detail: str | None
    note: str | None
    decision: Decision
    reason: str | None
    decided_at: UtcDateTime | None
    counted: bool = Field(description="whether it counts against the call in this reviewer's scoring: confirmed")


class MyCalibration(_Wire):
    """A reviewer's own blind scoring of the call: the automatic findings and what it added, with its own
    decisions only."""

    calibration_id: str
    call_id: str = Field(description="as the caller names the call")
    agent_id: str
    note: str | None
    reviewer: str
    state: ReviewProgress
    submitted_at: UtcDateTime | None
    automatic_score: float | None
    score: float | None = Field(description="this reviewer's score of the call, once submitted")
    findings: list[CalibrationFinding]


class MyCalibrationSummary(_Wire):
    calibration_id: str
    call_id: str = Field(description="as the caller names the call")
    agent_id: str
    created_by: str
    created_at: UtcDateTime
    state: ReviewProgress
    submitted_at: UtcDateTime | None


class MyCalibrationList(_Wire):
    calibrations: list[MyCalibrationSummary]


class ReviewerVerdicts(_Wire):
    reviewer: str
    submitted_at: UtcDateTime
    score: float | None
    breached: list[str] = Field(description="the rules it found broken: a confirmed finding of the rule, automatic or added")


class RuleAgreement(_Wire):
    rule_id: str
    automatic: bool = Field(description="whether the automatic report found the rule broken")
    yes: int = Field(description="reviewers who found it broken")
    no: int
    agreement: float = Field(description="the share of reviewer pairs who agree on it (1.0: all agree)")
    majority: Literal["yes", "no", "tie"]
    automatic_agrees: bool | None = Field(description="the automatic report against the reviewers' majority; null on a tie")


class FindingAgreement(_Wire):
    finding_id: int
    rule_id: str
    t: float
    confirmed: int
    rejected: int


class Kappa(_Wire):
    method: KappaMethod = Field(description="cohen for two reviewers, fleiss for three or more")
    value: float | None = Field(description="null where chance agreement is certain (every verdict the same)")
    subjects: int = Field(description="the rules in play: found broken by the report or by a reviewer")
    raters: int


class CalibrationResult(_Wire):
    calibration_id: str
    call_id: str = Field(description="as the caller names the call")
    agent_id: str
    automatic_score: float | None
    complete: bool = Field(description="every reviewer has submitted (else the figures are of those who have)")
    pending: list[str]
    reviewers: list[ReviewerVerdicts]
    rules: list[RuleAgreement]
    kappa: Kappa | None = Field(description="over the rules in play; null with no rule in play")
    automatic_agreement: float | None = Field(
        description="the share of rules in play (ties left out) where the automatic report matches the majority")
    findings: list[FindingAgreement] = Field(description="each automatic finding: how many confirmed and rejected it")
