"""The reviewer's work queue, `GET /v1/qa/queue` (docs/qa.md, Work queue): the calls assigned to the reviewer
asking, by sampling plans of its tenant (with why each was picked and how far the call's review is) and by
calibrations it takes part in (how far its own blind scoring is).

A reviewer is its key's name within its tenant, so the queue needs a key (as an agent's own reviews do): with
no keys configured nobody can have been assigned anything. A reviewer sees only its own assignments, of its
tenant's calls; a team supervisor only those of calls it may still open (an agent moved to another team takes
its calls out of the queue).
"""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query, Request

from service.access.keys import Principal
from service.persistence import qa_calibrations, qa_plans
from service.qa.access import REVIEWER_ROLES, sees_review
from service.qa.plan_models import PickReason, Queue, QueueItem
from service.qa.routing import REFUSALS, admitting, run, shown, store_of, teams_of

reviewer = Depends(admitting(REVIEWER_ROLES, local_without_keys=False))

router = APIRouter(prefix="/v1/qa", tags=["qa"], responses=REFUSALS)


@router.get("/queue", response_model=Queue)
async def work_queue(request: Request,
                     state: Optional[Literal["not_started", "in_progress", "submitted"]] = Query(None),
                     principal: Principal = reviewer) -> Queue:
    """The calls assigned to this reviewer, oldest first: why each was picked (or which calibration asks for
    it), and how far the review is."""

    def work() -> Queue:
        teams = teams_of(request)
        items = [QueueItem(kind="sample", call_id=q.pick.call_id, agent_id=q.pick.agent_id, assigned_at=q.pick.picked_at,
                           state=q.pick.review_state, reasons=q.pick.reasons, review_id=q.pick.review_id,
                           plan_id=q.pick.plan_id, plan_name=q.plan_name, week=q.pick.week, calibration_id=None)
                 for q in qa_plans.picks_for(store_of(request), principal.name, principal.tenant)
                 if sees_review(principal, q.tenant, q.pick.agent_id, teams)]
        for a in qa_calibrations.assigned_to(store_of(request), principal.name, principal.tenant):
            c = a.summary
            if sees_review(principal, a.call_tenant, c.agent_id, teams):
                items.append(QueueItem(
                    kind="calibration", call_id=c.call_id, agent_id=c.agent_id, assigned_at=c.created_at, state=c.state,
                    reasons=[PickReason(code="calibration", detail=f"{c.created_by} asked for a blind calibration")],
                    review_id=None, plan_id=None, plan_name=None, week=None, calibration_id=c.calibration_id))
        items.sort(key=lambda i: i.assigned_at)
        if state is not None:
            items = [i for i in items if i.state == state]
        return shown(request, principal, Queue(reviewer=principal.name, items=items))

    return await run(work)
