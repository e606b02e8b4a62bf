"""What the QA pages read beside /v1/qa (service/qa/api.py): the transcript of an agent's reviewed call.

A reviewer's and a supervisor's pages read a call's transcript from the QA report (`GET /v1/audit/calls/{id}`),
which agents may not use; an agent reads the transcript of its own reviewed call here, under the same rule
as the review itself (its own call, the review submitted; anything else a 404, as for no such review).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from service.access.guard import refuse
from service.access.keys import Principal
from service.app_state import RuntimeDep
from service.audit.outputs.report import ReportNotFound, call_report
from service.pii import masked
from service.persistence import qa_reviews
from service.qa.access import AGENT_ROLES, owns
from service.qa.routing import admitting

router = APIRouter(prefix="/v1/qa", tags=["qa"], responses={
    401: {"description": "no key"},
    403: {"description": "a key of a role this is not for"},
    404: {"description": "no such review, or not one of this agent's submitted reviews"},
})


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranscriptLine(_Wire):
    utterance_id: str
    speaker: str = Field(description="agent or customer; on a mono recording the guess (see speaker_uncertain)")
    speaker_uncertain: bool = Field(description="a mono recording: who spoke is guessed from the turns")
    start: float = Field(description="seconds from the start of the call")
    end: float
    text: str


class ReviewTranscript(_Wire):
    review_id: str
    duration_s: float | None
    lines: list[TranscriptLine]


# An agent's own reviews need to know which agent: a key always, as for /v1/qa/my-reviews.
_agent = admitting(AGENT_ROLES, local_without_keys=False)


@router.get("/my-reviews/{review_id}/transcript", response_model=ReviewTranscript)
async def my_review_transcript(request: Request, runtime: RuntimeDep, review_id: str = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
                               principal: Principal = Depends(_agent)) -> ReviewTranscript:
    """The transcript of one of the agent's reviewed calls, for its page beside the findings."""
    def work() -> ReviewTranscript:
        owner = qa_reviews.review_owner(runtime.store, review_id)
        if owner is None or owner.state != "submitted" or not owns(principal, owner.tenant, owner.agent_id):
            refuse(request, 404, f"review {review_id!r} is not theirs", principal.describe())
            raise HTTPException(status_code=404, detail="no such review")
        try:
            report = call_report(runtime.store, owner.call_key)
        except ReportNotFound:
            raise HTTPException(status_code=404, detail="no such review") from None
        lines = [{"utterance_id": u["utterance_id"], "speaker": u["speaker_guess"] or u["speaker"],
                  "speaker_uncertain": u["speaker_uncertain"], "start": u["start"], "end": u["end"], "text": u["text"]}
                 for u in report["utterances"]]
        body = {"review_id": review_id, "duration_s": report["duration_s"], "lines": lines}
        return ReviewTranscript.model_validate(masked(body, runtime.settings.mask_pii))

    return await asyncio.to_thread(work)
