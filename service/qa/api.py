"""REST for the QA review workflow under /v1/qa (docs/qa.md): reviewers open and work reviews, agents
acknowledge and dispute their reviewed calls, supervisors rule on disputes.

Keys as for the QA REST (`Authorization: Bearer KEY`, or the QA pages' cookie); the roles and what each sees
are in `service.qa.access`. Status codes as everywhere (docs/security.md): 401 without a key, 403 with a key
of a role the route is not for, 404 for a call, review or dispute the key may not see (as for one that does
not exist), 409 for a step the review's state does not allow, 422 for a request that does not validate.

Call ids are shown as the caller names them: a tenant-scoped key sees the ids its phone systems sent.
"""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from service.access.guard import KeysDep, call_key
from service.access.keys import Principal
from service.app_state import RuntimeDep
from service.persistence import qa_reviews
from service.qa.access import AGENT_ROLES, REVIEWER_ROLES, RULER_ROLES, may_rule, owns, reviewer_scope, sees_review
from service.qa.errors import Conflict, NotFound
from service.qa.models import (
    AddedFindingIn,
    DecisionIn,
    DisputeIn,
    DisputeList,
    DisputeOut,
    History,
    ReviewList,
    ReviewOut,
    RulingIn,
)
from service.qa.routing import CONFLICT as _CONFLICT
from service.qa.routing import ID_PATTERN as _ID
from service.qa.routing import QA_MASKED_FIELDS
from service.qa.routing import REFUSALS as _REFUSALS
from service.qa.routing import admitting as _admitting
from service.qa.routing import hidden as _hidden
from service.qa.routing import run as _run
from service.qa.routing import shown as _shown
from service.qa.routing import store_of as _store
from service.qa.routing import teams_of as _teams
from service.qa.scoring import reviewed_scorer
from service.runtime import Runtime

# QA_MASKED_FIELDS stays importable from here, where it was defined before routing.py held the plumbing.
__all__ = ["QA_MASKED_FIELDS", "router"]
ReviewId = Path(pattern=_ID, description="a review id")
DisputeId = Path(pattern=_ID, description="a dispute id")
FindingId = Path(ge=1, le=2**31 - 1, description="a finding id of the review")

reviewer = Depends(_admitting(REVIEWER_ROLES))
# An agent's own reviews need to know which agent: a key always, as for the agent feed.
agent = Depends(_admitting(AGENT_ROLES, local_without_keys=False))
ruler = Depends(_admitting(RULER_ROLES))

router = APIRouter(prefix="/v1/qa", tags=["qa"], responses=_REFUSALS)


def _review(request: Request, principal: Principal, review_id: str) -> ReviewOut:
    review = qa_reviews.get_review(_store(request), review_id)
    if review is None:
        raise NotFound("no such review")
    return _shown(request, principal, review)


def _reviewers_review(request: Request, principal: Principal, review_id: str) -> qa_reviews.ReviewOwner:
    """The review, if this reviewer sees it; else 404."""
    owner = qa_reviews.review_owner(_store(request), review_id)
    if owner is None or not sees_review(principal, owner.tenant, owner.agent_id, _teams(request)):
        raise _hidden(request, principal, f"review {review_id!r}")
    return owner


def _agents_review(request: Request, principal: Principal, review_id: str) -> qa_reviews.ReviewOwner:
    """The review, if it is of the agent's own call and submitted (a draft is the reviewers'); else 404."""
    owner = qa_reviews.review_owner(_store(request), review_id)
    if owner is None or owner.state != "submitted" or not owns(principal, owner.tenant, owner.agent_id):
        raise _hidden(request, principal, f"review {review_id!r}")
    return owner


def _scorer(runtime: Runtime) -> qa_reviews.Scorer:
    return reviewed_scorer(runtime.rule_book.config)


# ---------------------------------------------------------------- reviewers


@router.post("/calls/{call_id}/review", response_model=ReviewOut, status_code=201,
             responses={200: {"model": ReviewOut, "description": "the call's review, opened before"}, **_CONFLICT})
async def open_review(request: Request, response: Response, call_id: str, runtime: RuntimeDep, keys: KeysDep,
                      principal: Principal = reviewer) -> ReviewOut:
    """Open the review of a stored call's automatic report: every automatic finding pending, the report's
    score kept as the automatic score. A call has one review; where it has one, that one is answered (200)."""

    def work() -> tuple[ReviewOut, bool]:
        store = runtime.store
        key = keys.check_call(request, store, principal, call_id)  # 404 for another tenant's call
        owner = store.owner(key)
        if owner is None or not sees_review(principal, owner.tenant, owner.agent_id, _teams(request)):
            raise _hidden(request, principal, f"call {call_id!r}")
        record = store.get_call(key)
        if record is None or record.report is None:
            raise Conflict("the call has no report yet: a live call is reviewed once it has ended")
        score = record.score if record.score is not None else record.report.get("score")
        review_id, opened = qa_reviews.open_review(store, key, owner.tenant, owner.agent_id, score,
                                                   record.report.get("findings") or [], principal)
        return _review(request, principal, review_id), opened

    review, opened = await _run(work)
    if not opened:
        response.status_code = 200
    return review


@router.get("/reviews", response_model=ReviewList)
async def list_reviews(
    request: Request,
    state: Optional[Literal["open", "submitted"]] = Query(None),
    agent_id: Optional[str] = Query(None, max_length=128),
    call_id: Optional[str] = Query(None, max_length=128, description="the reviews of one call (it has at most one)"),
    principal: Principal = reviewer,
) -> ReviewList:
    """The reviews this reviewer sees, newest first (at most 500): its tenant's, a team supervisor's teams'."""

    def work() -> ReviewList:
        store, teams = _store(request), _teams(request)
        tenant, scope = reviewer_scope(principal, teams)
        agents = {agent_id} if agent_id is not None else None
        if scope is not None:
            agents = scope if agents is None else agents & scope
        key = None
        if call_id is not None:
            key = call_key(store, principal, call_id)
            if key is None:
                return ReviewList(reviews=[])
        rows = qa_reviews.list_reviews(store, tenant=tenant, agent_ids=agents, state=state, call_key=key)
        seen = [s for o, s in rows if sees_review(principal, o.tenant, o.agent_id, teams)]
        return _shown(request, principal, ReviewList(reviews=seen))

    return await _run(work)


@router.get("/reviews/{review_id}", response_model=ReviewOut)
async def get_review(request: Request, review_id: str = ReviewId, principal: Principal = reviewer) -> ReviewOut:
    """A review: its findings with each decision, the scores, the disputes and their rulings."""

    def work() -> ReviewOut:
        _reviewers_review(request, principal, review_id)
        return _review(request, principal, review_id)

    return await _run(work)


@router.get("/reviews/{review_id}/history", response_model=History)
async def review_history(request: Request, review_id: str = ReviewId, principal: Principal = reviewer) -> History:
    """Every change to the review in order: who, when, what, why. Nothing in it is ever changed or removed."""

    def work() -> History:
        _reviewers_review(request, principal, review_id)
        return _shown(request, principal, History(review_id=review_id,
                                                  entries=qa_reviews.history(_store(request), review_id)))

    return await _run(work)


@router.post("/reviews/{review_id}/findings/{finding_id}/decision", response_model=ReviewOut, responses=_CONFLICT)
async def decide(request: Request, body: DecisionIn, review_id: str = ReviewId, finding_id: int = FindingId,
                 principal: Principal = reviewer) -> ReviewOut:
    """Confirm or reject one finding of an open review (a rejection says why); rejecting an added finding
    takes it back. A decision may be changed until the review is submitted."""

    def work() -> ReviewOut:
        _reviewers_review(request, principal, review_id)
        decision = "confirmed" if body.decision == "confirm" else "rejected"
        qa_reviews.decide(_store(request), review_id, finding_id, decision, body.reason, principal)
        return _review(request, principal, review_id)

    return await _run(work)


@router.post("/reviews/{review_id}/findings", response_model=ReviewOut, status_code=201, responses=_CONFLICT)
async def add_finding(request: Request, body: AddedFindingIn, runtime: RuntimeDep, review_id: str = ReviewId,
                      principal: Principal = reviewer) -> ReviewOut:
    """Add a finding the system missed (a rule id at a time in the call, with a note); it counts once the
    review is submitted."""

    def work() -> ReviewOut:
        owner = _reviewers_review(request, principal, review_id)
        record = _store(request).get_call(owner.call_key)
        duration = record.duration if record is not None else None
        if duration is not None and body.t > duration:
            raise HTTPException(status_code=422, detail=[{
                "loc": ["body", "t"], "type": "value_error",
                "msg": f"{body.t} s is past the end of the call ({duration:.1f} s)"}])
        severity = runtime.rule_book.config.rule(body.rule_id).severity
        qa_reviews.add_finding(_store(request), review_id, body.rule_id, severity, body.t, body.note, principal)
        return _review(request, principal, review_id)

    return await _run(work)


@router.post("/reviews/{review_id}/submit", response_model=ReviewOut, responses=_CONFLICT)
async def submit(request: Request, runtime: RuntimeDep, review_id: str = ReviewId,
                 principal: Principal = reviewer) -> ReviewOut:
    """Submit the review: every automatic finding must be confirmed or rejected (409 names those pending). The
    reviewed score is the report's scoring over the confirmed findings, added ones included; the agent sees
    the review from now on."""

    def work() -> ReviewOut:
        _reviewers_review(request, principal, review_id)
        qa_reviews.submit(_store(request), review_id, principal, _scorer(runtime))
        return _review(request, principal, review_id)

    return await _run(work)


# ---------------------------------------------------------------- the agent


@router.get("/my-reviews", response_model=ReviewList)
async def my_reviews(request: Request, principal: Principal = agent) -> ReviewList:
    """The agent's own reviewed calls (submitted reviews), newest first."""

    def work() -> ReviewList:
        rows = qa_reviews.list_reviews(_store(request), tenant=principal.tenant, agent_ids={principal.name},
                                       state="submitted")
        return _shown(request, principal, ReviewList(reviews=[s for o, s in rows if owns(principal, o.tenant, o.agent_id)]))

    return await _run(work)


@router.get("/my-reviews/{review_id}", response_model=ReviewOut)
async def my_review(request: Request, review_id: str = ReviewId, principal: Principal = agent) -> ReviewOut:
    """One of the agent's reviewed calls: the findings as reviewed, the scores, its disputes and the rulings."""

    def work() -> ReviewOut:
        _agents_review(request, principal, review_id)
        return _review(request, principal, review_id)

    return await _run(work)


@router.post("/my-reviews/{review_id}/acknowledge", response_model=ReviewOut)
async def acknowledge(request: Request, review_id: str = ReviewId, principal: Principal = agent) -> ReviewOut:
    """The agent has read the reviewed call. Once: acknowledging again changes nothing."""

    def work() -> ReviewOut:
        _agents_review(request, principal, review_id)
        qa_reviews.acknowledge(_store(request), review_id, principal)
        return _review(request, principal, review_id)

    return await _run(work)


@router.post("/my-reviews/{review_id}/disputes", response_model=DisputeOut, status_code=201, responses=_CONFLICT)
async def dispute(request: Request, body: DisputeIn, review_id: str = ReviewId,
                  principal: Principal = agent) -> DisputeOut:
    """Dispute a finding that counts against the agent, with a comment; it goes to the supervisors of the
    agent's team. A finding is disputed once."""

    def work() -> DisputeOut:
        _agents_review(request, principal, review_id)
        dispute_id = qa_reviews.raise_dispute(_store(request), review_id, body.finding_id, body.comment, principal)
        found = qa_reviews.get_dispute(_store(request), dispute_id)
        assert found is not None, "a dispute is read back in the request that raised it"
        return _shown(request, principal, found)

    return await _run(work)


# ---------------------------------------------------------------- supervisors


@router.get("/disputes", response_model=DisputeList)
async def disputes(request: Request, state: Literal["open", "ruled", "all"] = Query("open"),
                   principal: Principal = ruler) -> DisputeList:
    """The supervisor's queue: disputes of the agents it rules for, oldest first (at most 500); the `open`
    ones unless `state` says `ruled` or `all`."""

    def work() -> DisputeList:
        store, teams = _store(request), _teams(request)
        tenant, scope = reviewer_scope(principal, teams)
        rows = qa_reviews.list_disputes(store, tenant=tenant, agent_ids=scope, state=None if state == "all" else state)
        mine = [d for o, d in rows if may_rule(principal, o.tenant, o.agent_id, teams)]
        return _shown(request, principal, DisputeList(disputes=mine))

    return await _run(work)


def _rulers_dispute(request: Request, principal: Principal, dispute_id: str) -> qa_reviews.DisputeOwner:
    owner = qa_reviews.dispute_owner(_store(request), dispute_id)
    if owner is None or not may_rule(principal, owner.tenant, owner.agent_id, _teams(request)):
        raise _hidden(request, principal, f"dispute {dispute_id!r}")
    return owner


@router.get("/disputes/{dispute_id}", response_model=DisputeOut)
async def get_dispute(request: Request, dispute_id: str = DisputeId, principal: Principal = ruler) -> DisputeOut:
    def work() -> DisputeOut:
        _rulers_dispute(request, principal, dispute_id)
        found = qa_reviews.get_dispute(_store(request), dispute_id)
        if found is None:
            raise NotFound("no such dispute")
        return _shown(request, principal, found)

    return await _run(work)


@router.post("/disputes/{dispute_id}/ruling", response_model=DisputeOut, responses=_CONFLICT)
async def rule(request: Request, body: RulingIn, runtime: RuntimeDep, dispute_id: str = DisputeId,
               principal: Principal = ruler) -> DisputeOut:
    """Uphold (the finding stands) or overturn (it leaves the reviewed score) a dispute, with the reason the
    agent reads. Only a supervisor of the agent's team, or one without teams in the agent's tenant."""

    def work() -> DisputeOut:
        _rulers_dispute(request, principal, dispute_id)
        outcome = "upheld" if body.outcome == "uphold" else "overturned"
        qa_reviews.rule_dispute(_store(request), dispute_id, outcome, body.reason, principal, _scorer(runtime))
        found = qa_reviews.get_dispute(_store(request), dispute_id)
        assert found is not None, "a ruled dispute is still there"
        return _shown(request, principal, found)

    return await _run(work)
