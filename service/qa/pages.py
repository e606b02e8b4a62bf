"""The QA review pages (issue 15, docs/qa.md § The pages): a reviewer's review of a call, an agent's reviewed
calls, a supervisor's dispute queue, the reviewer's list of reviews and work queue, the sampling plans,
calibration (the reviewers' blind scoring and the supervisor's result), and the trends per agent, team and week.

Each page is plain HTML and a small ES module from service/qa/static/, with the deployment's names table
embedded (as on the agent screen and the QA report: one table names every rule and severity). The pages hold
no call data: their scripts read it from /v1/qa, /v1/audit and service/qa/page_api.py with the key the
`callwatch_qa` cookie carries, and show a sentence for a 401, 403 or 404 answer (with a form to sign in)
instead of breaking. So the pages themselves are open, like /agent and /supervisor; the data is not.

A link with ?token=KEY signs the browser in, as on the other QA pages (service/audit/web/auth.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.app_state import RuntimeDep
from service.audit.web.auth import login_redirect
from service.names_api import names_of
from service.runtime import Runtime

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).resolve().parent
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Everything from this server: the scripts and styles, the REST answers and the recording (the player and
# the waveform's fetch). No inline script or style, so text a person typed can never run as either.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def review_page(call_id: str) -> str:
    """Where a reviewer reviews the call `call_id` names (as the call list and the report name it)."""
    return f"/qa/calls/{quote(call_id, safe='')}/review"


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)


def _page(request: Request, runtime: Runtime, template: str, **ids: str) -> Response:
    """The page, or the redirect that signs the browser in. `ids` (the call, review or dispute the address
    names) go into the page as data attributes, escaped, for its script to ask the API about."""
    if (login := login_redirect(request)) is not None:
        return login
    html = _templates().get_template(template).render(names=names_of(runtime), ids=ids)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/qa/reviews", response_class=HTMLResponse)
async def reviews_page(request: Request, runtime: RuntimeDep) -> Response:
    """The reviewer's reviews, open and submitted, each a link to its review page."""
    return _page(request, runtime, "reviews.html")


@router.get("/qa/calls/{call_id}/review", response_class=HTMLResponse)
async def review_call_page(request: Request, runtime: RuntimeDep, call_id: str) -> Response:
    """The reviewer's page for one call: player, waveform, transcript in sync, findings and decisions."""
    return _page(request, runtime, "review.html", call_id=call_id)


@router.get("/qa/queue", response_class=HTMLResponse)
async def queue_page(request: Request, runtime: RuntimeDep) -> Response:
    """The reviewer's work queue: the calls the sampling plans picked for it and its calibrations, with why."""
    return _page(request, runtime, "queue.html")


@router.get("/qa/plans", response_class=HTMLResponse)
async def plans_page(request: Request, runtime: RuntimeDep) -> Response:
    """The supervisor's sampling plans."""
    return _page(request, runtime, "plans.html")


@router.get("/qa/plans/{plan_id}", response_class=HTMLResponse)
async def plan_page(request: Request, runtime: RuntimeDep, plan_id: str) -> Response:
    """One plan: run it over a week, and the calls it picked, with why and for whom."""
    return _page(request, runtime, "plans.html", plan_id=plan_id)


@router.get("/qa/calibrations", response_class=HTMLResponse)
async def calibrations_page(request: Request, runtime: RuntimeDep) -> Response:
    """The reviewer's calibrations; a supervisor's also the ones it started, and the form to start one."""
    return _page(request, runtime, "calibrations.html")


@router.get("/qa/calibrations/{calibration_id}", response_class=HTMLResponse)
async def calibration_page(request: Request, runtime: RuntimeDep, calibration_id: str) -> Response:
    """A reviewer's blind scoring of the calibration's call, and the result once the API shows it."""
    return _page(request, runtime, "calibration.html", calibration_id=calibration_id)


@router.get("/qa/calibrations/{calibration_id}/result", response_class=HTMLResponse)
async def calibration_result_page(request: Request, runtime: RuntimeDep, calibration_id: str) -> Response:
    """The supervisor's result of a calibration: agreement per rule, kappa, the automatic findings against it."""
    return _page(request, runtime, "calibration_result.html", calibration_id=calibration_id)


@router.get("/qa/my-reviews", response_class=HTMLResponse)
async def my_reviews_page(request: Request, runtime: RuntimeDep) -> Response:
    """The agent's reviewed calls."""
    return _page(request, runtime, "my_reviews.html")


@router.get("/qa/my-reviews/{review_id}", response_class=HTMLResponse)
async def my_review_page(request: Request, runtime: RuntimeDep, review_id: str) -> Response:
    """One of the agent's reviewed calls: acknowledge, dispute, see the rulings."""
    return _page(request, runtime, "my_reviews.html", review_id=review_id)


@router.get("/qa/disputes", response_class=HTMLResponse)
async def disputes_page(request: Request, runtime: RuntimeDep) -> Response:
    """The supervisor's queue of disputes."""
    return _page(request, runtime, "disputes.html")


@router.get("/qa/disputes/{dispute_id}", response_class=HTMLResponse)
async def dispute_page(request: Request, runtime: RuntimeDep, dispute_id: str) -> Response:
    """One dispute: the finding, the agent's comment, the transcript around it, and the ruling."""
    return _page(request, runtime, "disputes.html", dispute_id=dispute_id)


@router.get("/qa/trends", response_class=HTMLResponse)
async def trends_page(request: Request, runtime: RuntimeDep) -> Response:
    """Trends per agent, team and week as charts and a table over /v1/qa/trends, with its CSV."""
    return _page(request, runtime, "trends.html")


def _plain_file(folder: Path, name: str) -> Response:
    """Only a plain file directly in `folder` with a known type; no paths, no listing."""
    path = folder / name
    media = _STATIC_TYPES.get(path.suffix)
    if "/" in name or "\\" in name or name.startswith(".") or media is None or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/qa/static/{name}")
async def static_file(name: str) -> Response:
    """The pages' own scripts and styles."""
    return _plain_file(HERE / "static", name)


@router.get("/qa/static/vendor/{name}")
async def vendored_file(name: str) -> Response:
    """A library committed as published (static/vendor/README.md says which, from where, under what licence)."""
    return _plain_file(HERE / "static" / "vendor", name)
