"""The QA pages: upload with progress (/audit), the call list (/audit/calls), a call's report
(/audit/calls/{id}). Plain HTML and a little script from this server; the data comes from /v1/audit.

A refused key or a call one may not see is answered with the REST API's status code but a page that says so
(service/page_refusal.py), so a person who opens a link without the right key reads why."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from service.access.guard import KeysDep
from service.access.keys import Principal
from service.app_state import RuntimeDep
from service.audit.outputs.render import MOOD_LABELS, environment, report_html
from service.audit.web.api import REPORT_HEADERS, _audio_path, _report
from service.audit.web.auth import login_redirect, require_supervisor
from service.names_api import names_of
from service.page_refusal import PageRefused
from service.qa.pages import review_page


def _page_principal(request: Request, keys: KeysDep, runtime: RuntimeDep) -> Principal:
    """As for the REST (require_supervisor), but a refusal is a page for a person to read."""
    try:
        return require_supervisor(request, keys, runtime)
    except HTTPException as err:
        raise PageRefused.of(err) from None


router = APIRouter(include_in_schema=False, dependencies=[Depends(_page_principal)])
STATIC = Path(__file__).parents[1] / "static"  # service/audit/static, shared with the reports
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _page(request: Request, name: str, **context: object) -> Response:
    if (login := login_redirect(request)) is not None:
        return login
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, headers=REPORT_HEADERS)


@router.get("/audit", response_class=HTMLResponse)
async def upload_page(request: Request) -> Response:
    return _page(request, "upload.html")


@router.get("/audit/calls", response_class=HTMLResponse)
async def calls_page(request: Request, runtime: RuntimeDep) -> Response:
    return _page(request, "calls.html", names=names_of(runtime), moods=MOOD_LABELS)


@router.get("/audit/calls/{call_id}", response_class=HTMLResponse)
async def report_page(request: Request, call_id: str, runtime: RuntimeDep) -> Response:
    if (login := login_redirect(request)) is not None:
        return login
    try:
        report = await asyncio.to_thread(_report, request, runtime)
    except HTTPException as err:  # a call that is not there (or went between the check and the read)
        raise PageRefused.of(err) from None
    audio = f"/v1/audit/calls/{call_id}/audio" if await asyncio.to_thread(_audio_path, request, runtime.store) else None
    names = names_of(runtime)
    html = await asyncio.to_thread(report_html, report, audio, names, back_link="/audit/calls",
                                   script_src="/audit/static/report.js", review_link=review_page(call_id))
    return HTMLResponse(html, headers=REPORT_HEADERS)


@router.get("/audit/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(status_code=404)
    return Response(path.read_text(encoding="utf-8"), media_type=_TYPES[path.suffix])
