"""What crosses /v1/qa: the requests a reviewer, an agent and a supervisor send, and the reviews, disputes and
history they get back (docs/qa.md shows each with an example). Rule ids, severities and decisions travel as
ids; pages name them from the names table (GET /v1/rules/names), like the report does."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.catalog import RULE_IDS
from rules.timeline import MAX_CALL_TIME_S
from service.audit.web.models import UtcDateTime

ReviewState = Literal["open", "submitted"]
FindingSource = Literal["automatic", "added"]
Decision = Literal["pending", "confirmed", "rejected"]
DisputeState = Literal["open", "upheld", "overturned"]
Outcome = Literal["upheld", "overturned"]
Action = Literal["opened", "confirmed", "rejected", "added", "submitted", "acknowledged", "disputed", "upheld",
                 "overturned"]


def _said(text: str) -> str:
    # A reason of blanks is no reason: the history must say why.
    if not text.strip():
        raise ValueError("must say something (not only blanks)")
    return text.strip()


Text = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_said)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- requests


class DecisionIn(_Wire):
    """A reviewer's decision on one finding: `confirm` (it stands) or `reject` (it was wrong: a reason is
    required). While the review is open it may be changed; every change is in the history."""

    decision: Literal["confirm", "reject"]
    reason: Text | None = Field(None, description="why; required to reject", examples=["客户先挂断，坐席未抢挂"])

    @model_validator(mode="after")
    def _rejecting_says_why(self) -> DecisionIn:
        if self.decision == "reject" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        return self


class AddedFindingIn(_Wire):
    """A finding the system missed: a rule of the rulebook, where in the call, and the reviewer's note."""

    rule_id: str = Field(description="a rule id of the rules file (docs/rules.md)", examples=["hold.apology"])
    t: float = Field(ge=0, le=MAX_CALL_TIME_S, allow_inf_nan=False,
                     description="seconds from the start of the call, within its duration", examples=[95.0])
    note: Text = Field(description="what the reviewer heard", examples=["转接前没有征得客户同意"])

    @field_validator("rule_id")
    @classmethod
    def _a_rule_of_the_rulebook(cls, rule_id: str) -> str:
        if rule_id not in RULE_IDS:
            raise ValueError(f"{rule_id[:64]!r} is no rule id of the rulebook (docs/rules.md)")
        return rule_id


class DisputeIn(_Wire):
    """An agent's dispute of one finding that counts against them, with their comment."""

    finding_id: int = Field(ge=1, description="a finding of the review that counts in its score")
    comment: Text = Field(examples=["客户说稍等，我是按客户要求等待的"])


class RulingIn(_Wire):
    """A supervisor's ruling on a dispute: `uphold` (the finding stands) or `overturn` (it is taken out of the
    reviewed score), with the reason the agent will read."""

    outcome: Literal["uphold", "overturn"]
    reason: Text = Field(examples=["录音证实客户要求等待，撤销该项"])


# ---------------------------------------------------------------- answers


class RulingOut(_Wire):
    outcome: Outcome
    reason: str
    ruled_by: str
    ruled_at: UtcDateTime
    score_before: float | None = Field(description="the reviewed score before the ruling")
    score_after: float | None = Field(description="the reviewed score the ruling left")


class DisputeOut(_Wire):
    dispute_id: str
    review_id: str
    call_id: str = Field(description="as the caller names the call (a tenant-scoped key: the id its phone system sent)")
    agent_id: str
    finding_id: int
    rule_id: str
    comment: str
    raised_at: UtcDateTime
    state: DisputeState
    ruling: RulingOut | None


class ReviewFindingOut(_Wire):
    finding_id: int
    source: FindingSource = Field(description="automatic: from the call's report; added: by a reviewer")
    rule_id: str
    severity: str
    t: float
    end: float | None
    detail: str | None = Field(description="the automatic finding's own text")
    note: str | None = Field(description="an added finding's note")
    decision: Decision = Field(description="automatic findings start pending, added ones confirmed")
    reason: str | None
    decided_by: str | None
    decided_at: UtcDateTime | None
    counted: bool = Field(description="whether it deducts from the reviewed score: confirmed and not overturned")


class ReviewSummary(_Wire):
    review_id: str
    call_id: str
    agent_id: str
    state: ReviewState
    opened_by: str
    opened_at: UtcDateTime
    submitted_by: str | None
    submitted_at: UtcDateTime | None
    automatic_score: float | None = Field(description="the report's score when the review was opened")
    reviewed_score: float | None = Field(description="after submit: the report's scoring over the counted findings")
    acknowledged_at: UtcDateTime | None
    open_disputes: int


class ReviewOut(ReviewSummary):
    findings: list[ReviewFindingOut]
    disputes: list[DisputeOut]


class ReviewList(_Wire):
    reviews: list[ReviewSummary]


class DisputeList(_Wire):
    disputes: list[DisputeOut]


class HistoryEntry(_Wire):
    at: UtcDateTime
    actor: str = Field(description="who: the key's principal name (an agent id, a reviewer's or supervisor's name)")
    actor_role: str
    action: Action
    finding_id: int | None
    dispute_id: str | None
    reason: str | None = Field(description="why: the reviewer's reason, the agent's comment, the ruling's reason")
    detail: dict[str, Any] = Field(description="what changed (a decision from → to, the scores, the rule id)")


class History(_Wire):
    review_id: str
    entries: list[HistoryEntry]
