"""The QA pages: upload with progress (/audit), the call list (/audit/calls), a call's report
(/audit/calls/{id}). Plain HTML and a little script from this server; the data comes from /v1/audit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.audit.api import REPORT_HEADERS, _audio_path, _report
from service.audit.auth import COOKIE, require_supervisor
from service.audit.labels import MOOD_LABELS
from service.audit.render import environment, report_html
from service.names_api import names_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_supervisor)])
STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _login(request: Request) -> Response | None:
    """A link with ?token= logs the browser in: the cookie carries it to REST, downloads and the player."""
    token = request.query_params.get("token")
    if not token:
        return None
    response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response


def _page(request: Request, name: str, **context: object) -> Response:
    if (login := _login(request)) is not None:
        return login
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, headers=REPORT_HEADERS)


@router.get("/audit", response_class=HTMLResponse)
async def upload_page(request: Request) -> Response:
    return _page(request, "upload.html")


@router.get("/audit/calls", response_class=HTMLResponse)
async def calls_page(request: Request) -> Response:
    return _page(request, "calls.html", names=names_of(request.app.state.runtime), moods=MOOD_LABELS)


@router.get("/audit/calls/{call_id}", response_class=HTMLResponse)
async def report_page(request: Request, call_id: str) -> Response:
    if (login := _login(request)) is not None:
        return login
    report = await asyncio.to_thread(_report, request)
    audio = f"/v1/audit/calls/{call_id}/audio" if await asyncio.to_thread(_audio_path, request) else None
    names = names_of(request.app.state.runtime)
    html = await asyncio.to_thread(report_html, report, audio, names, back_link="/audit/calls", script_src="/audit/static/report.js")
    return HTMLResponse(html, headers=REPORT_HEADERS)


@router.get("/audit/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(status_code=404)
    return Response(path.read_text(encoding="utf-8"), media_type=_TYPES[path.suffix])
