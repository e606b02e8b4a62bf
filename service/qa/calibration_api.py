"""REST for calibration (docs/qa.md, Calibration): a supervisor sends one call to several reviewers
(`/v1/qa/calibrations…`); each reviewer scores it blind (`/v1/qa/my-calibrations…`); the result says where
they agree, per rule, with Cohen's or Fleiss' kappa, and how the automatic findings compare.

Blind: a reviewer sees the automatic findings, its own decisions and its own added findings, never another
reviewer's, and gets the result only once it has submitted (409 before, as for a step its state does not
allow). A supervisor who is itself one of the reviewers is held to the same. The normal review of the call
(`/v1/qa/calls/{call_id}/review`, one a call) is separate and unchanged: a calibration neither opens nor
changes it.

Who sees what: a supervisor a calibration of a call it sees (its tenant's; a team supervisor's teams'); a
reviewer the calibrations it takes part in (its key's name within the supervisor's tenant). Anything else is
a 404, as for one that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from service.access.guard import KeysDep
from service.access.keys import Principal
from service.app_state import RuntimeDep
from service.persistence import qa_calibrations
from service.qa.access import REVIEWER_ROLES, RULER_ROLES, calibration_reviewer_refusal, sees_review
from service.qa.calibration_models import (
    CalibrationIn,
    CalibrationList,
    CalibrationOut,
    CalibrationResult,
    MyCalibration,
    MyCalibrationList,
    ReviewerVerdicts,
)
from service.persistence.qa_calibrations import CalibrationOwner
from service.qa.calibration_result import agreement
from service.qa.errors import Conflict, NotFound
from service.qa.models import AddedFindingIn, DecisionIn
from service.qa.reviewers import reviewer_keys
from service.qa.routing import CONFLICT, ID_PATTERN, REFUSALS, admitting, hidden, run, shown, store_of, teams_of, unprocessable
from service.qa.scoring import reviewed_scorer

supervisor = Depends(admitting(RULER_ROLES))
# A reviewer's own calibrations need to know which reviewer: a key always.
reviewer = Depends(admitting(REVIEWER_ROLES, local_without_keys=False))
CalibrationId = Path(pattern=ID_PATTERN, description="a calibration id")
FindingId = Path(ge=1, le=2**31 - 1, description="a finding id of the calibration")

router = APIRouter(prefix="/v1/qa", tags=["qa"], responses=REFUSALS)


def _supervisors(request: Request, principal: Principal, calibration_id: str) -> CalibrationOwner:
    """The calibration, if this supervisor sees its call; else 404."""
    owner = qa_calibrations.owner(store_of(request), calibration_id)
    if owner is None or not sees_review(principal, owner.call_tenant, owner.agent_id, teams_of(request)):
        raise hidden(request, principal, f"calibration {calibration_id!r}")
    return owner


def _participants(request: Request, principal: Principal, calibration_id: str) -> CalibrationOwner:
    """The calibration, if this reviewer takes part in it (and still sees its call); else 404."""
    owner = qa_calibrations.owner(store_of(request), calibration_id)
    if (owner is None or not owner.takes_part(principal)
            or not sees_review(principal, owner.call_tenant, owner.agent_id, teams_of(request))):
        raise hidden(request, principal, f"calibration {calibration_id!r}")
    return owner


def _out(request: Request, principal: Principal, calibration_id: str) -> CalibrationOut:
    found = qa_calibrations.get(store_of(request), calibration_id)
    if found is None:
        raise NotFound("no such calibration")
    return shown(request, principal, found)


def _result(request: Request, principal: Principal, owner: CalibrationOwner) -> CalibrationResult:
    """The agreement of those who have submitted: two at least, and the asker among them if it takes part."""
    if owner.takes_part(principal) and owner.reviewers[principal.name] != "submitted":
        raise Conflict("calibration is blind: submit your own scoring before you see the others'")
    inputs = qa_calibrations.result_inputs(store_of(request), owner.calibration_id)
    if len(inputs.submitted) < 2:
        raise Conflict(f"{len(inputs.submitted)} of {len(owner.reviewers)} reviewers have submitted: the result needs two")
    found = agreement(inputs.automatic, [s for s, _, _ in inputs.submitted])
    calibration = qa_calibrations.get(store_of(request), owner.calibration_id)
    assert calibration is not None
    done = {s.reviewer for s, _, _ in inputs.submitted}
    result = CalibrationResult(
        calibration_id=owner.calibration_id, call_id=owner.call_key, agent_id=owner.agent_id,
        automatic_score=inputs.automatic_score, complete=len(done) == len(owner.reviewers),
        pending=[r.reviewer for r in calibration.reviewers if r.reviewer not in done],
        reviewers=[ReviewerVerdicts(reviewer=s.reviewer, submitted_at=at, score=score, breached=found.breached[s.reviewer])
                   for s, at, score in inputs.submitted],
        rules=found.rules, kappa=found.kappa, automatic_agreement=found.automatic_agreement, findings=found.findings)
    return shown(request, principal, result)


# ---------------------------------------------------------------- the supervisor


@router.post("/calibrations", response_model=CalibrationOut, status_code=201, responses=CONFLICT)
async def create_calibration(request: Request, body: CalibrationIn, runtime: RuntimeDep, keys: KeysDep,
                             principal: Principal = supervisor) -> CalibrationOut:
    """Send a stored call (with its report) to two or more reviewers to score blind."""

    def work() -> CalibrationOut:
        store, teams = runtime.store, teams_of(request)
        key = keys.check_call(request, store, principal, body.call_id)  # 404 for another tenant's call
        owner = store.owner(key)
        if owner is None or not sees_review(principal, owner.tenant, owner.agent_id, teams):
            raise hidden(request, principal, f"call {body.call_id!r}")
        record = store.get_call(key)
        if record is None or record.report is None:
            raise Conflict("the call has no report yet: a live call is calibrated once it has ended")
        reviewers = reviewer_keys(keys.ring, keys.settings)
        for i, name in enumerate(body.reviewers):
            why = calibration_reviewer_refusal(reviewers.get((name, principal.tenant)), name, principal.tenant, owner.tenant,
                                               owner.agent_id, teams)
            if why is not None:
                raise unprocessable(["body", "reviewers", i], why)
        score = record.score if record.score is not None else record.report.get("score")
        calibration_id = qa_calibrations.create(
            store, call_key=key, call_tenant=owner.tenant, agent_id=owner.agent_id, scope_tenant=principal.tenant,
            automatic_score=score, findings=record.report.get("findings") or [], reviewers=body.reviewers,
            note=body.note, actor=principal)
        return _out(request, principal, calibration_id)

    return await run(work)


@router.get("/calibrations", response_model=CalibrationList)
async def list_calibrations(request: Request, principal: Principal = supervisor) -> CalibrationList:
    """The calibrations of calls this supervisor sees, newest first (at most 500)."""

    def work() -> CalibrationList:
        teams = teams_of(request)
        rows = qa_calibrations.list_calibrations(store_of(request), principal.tenant)
        seen = [c for o, c in rows if sees_review(principal, o.call_tenant, o.agent_id, teams)]
        return shown(request, principal, CalibrationList(calibrations=seen))

    return await run(work)


@router.get("/calibrations/{calibration_id}", response_model=CalibrationOut)
async def get_calibration(request: Request, calibration_id: str = CalibrationId,
                          principal: Principal = supervisor) -> CalibrationOut:
    """Who has submitted; never what anyone decided (the result says that)."""

    def work() -> CalibrationOut:
        _supervisors(request, principal, calibration_id)
        return _out(request, principal, calibration_id)

    return await run(work)


@router.get("/calibrations/{calibration_id}/result", response_model=CalibrationResult, responses=CONFLICT)
async def calibration_result(request: Request, calibration_id: str = CalibrationId,
                             principal: Principal = supervisor) -> CalibrationResult:
    """Where the reviewers who have submitted agree: per rule, kappa over the rules, the automatic findings
    against their majority (409 until two have submitted)."""

    def work() -> CalibrationResult:
        return _result(request, principal, _supervisors(request, principal, calibration_id))

    return await run(work)


# ---------------------------------------------------------------- a reviewer, blind


@router.get("/my-calibrations", response_model=MyCalibrationList)
async def my_calibrations(request: Request, principal: Principal = reviewer) -> MyCalibrationList:
    """The calibrations this reviewer takes part in, oldest first, with how far it is."""

    def work() -> MyCalibrationList:
        teams = teams_of(request)
        rows = qa_calibrations.assigned_to(store_of(request), principal.name, principal.tenant)
        mine = [a.summary for a in rows if sees_review(principal, a.call_tenant, a.summary.agent_id, teams)]
        return shown(request, principal, MyCalibrationList(calibrations=mine))

    return await run(work)


def _mine(request: Request, principal: Principal, calibration_id: str) -> MyCalibration:
    return shown(request, principal,
                 qa_calibrations.my_calibration(store_of(request), calibration_id, principal.name))


@router.get("/my-calibrations/{calibration_id}", response_model=MyCalibration)
async def my_calibration(request: Request, calibration_id: str = CalibrationId,
                         principal: Principal = reviewer) -> MyCalibration:
    """This reviewer's scoring of the call: the automatic findings and its own added ones, its own decisions."""

    def work() -> MyCalibration:
        _participants(request, principal, calibration_id)
        return _mine(request, principal, calibration_id)

    return await run(work)


@router.post("/my-calibrations/{calibration_id}/findings/{finding_id}/decision", response_model=MyCalibration,
             responses=CONFLICT)
async def decide(request: Request, body: DecisionIn, calibration_id: str = CalibrationId, finding_id: int = FindingId,
                 principal: Principal = reviewer) -> MyCalibration:
    """Confirm or reject a finding (a rejection says why), until this reviewer submits."""

    def work() -> MyCalibration:
        _participants(request, principal, calibration_id)
        decision = "confirmed" if body.decision == "confirm" else "rejected"
        qa_calibrations.decide(store_of(request), calibration_id, principal.name, finding_id, decision,
                                      body.reason)
        return _mine(request, principal, calibration_id)

    return await run(work)


@router.post("/my-calibrations/{calibration_id}/findings", response_model=MyCalibration, status_code=201,
             responses=CONFLICT)
async def add_finding(request: Request, body: AddedFindingIn, runtime: RuntimeDep,
                      calibration_id: str = CalibrationId, principal: Principal = reviewer) -> MyCalibration:
    """A finding the system missed; only this reviewer sees it until the result."""

    def work() -> MyCalibration:
        owner = _participants(request, principal, calibration_id)
        record = store_of(request).get_call(owner.call_key)
        duration = record.duration if record is not None else None
        if duration is not None and body.t > duration:
            raise unprocessable(["body", "t"], f"{body.t} s is past the end of the call ({duration:.1f} s)")
        severity = runtime.rule_book.config.rule(body.rule_id).severity
        qa_calibrations.add_finding(store_of(request), calibration_id, principal.name, body.rule_id, severity,
                                           body.t, body.note)
        return _mine(request, principal, calibration_id)

    return await run(work)


@router.post("/my-calibrations/{calibration_id}/submit", response_model=MyCalibration, responses=CONFLICT)
async def submit(request: Request, runtime: RuntimeDep, calibration_id: str = CalibrationId,
                 principal: Principal = reviewer) -> MyCalibration:
    """Submit this reviewer's scoring (every automatic finding decided; 409 names those pending)."""

    def work() -> MyCalibration:
        _participants(request, principal, calibration_id)
        qa_calibrations.submit(store_of(request), calibration_id, principal.name,
                                      reviewed_scorer(runtime.rule_book.config))
        return _mine(request, principal, calibration_id)

    return await run(work)


@router.get("/my-calibrations/{calibration_id}/result", response_model=CalibrationResult, responses=CONFLICT)
async def my_result(request: Request, calibration_id: str = CalibrationId,
                    principal: Principal = reviewer) -> CalibrationResult:
    """The result, once this reviewer has submitted (409 before: calibration is blind)."""

    def work() -> CalibrationResult:
        return _result(request, principal, _participants(request, principal, calibration_id))

    return await run(work)

