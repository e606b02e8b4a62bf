"""The agent feed's pages: the agent screen (`/agent`), the supervisor board (`/supervisor`) and their static
files, from service/web/. Each page carries the deployment's names table in a data block; the pages' scripts
then open the feed's socket (service/agent_feed/connection.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.app_state import RuntimeDep
from service.names_api import names_of

# service.runtime imports this package (its hub): the type for the checker only.
if TYPE_CHECKING:
    from service.runtime import Runtime

router = APIRouter()

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The pages load nothing from elsewhere: scripts, styles and the socket are all this server's.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True)


def _page(runtime: Runtime, name: str) -> HTMLResponse:
    # The names table goes into the page itself: the scripts name rules before the agent has signed in, and
    # without a request of their own (names_api.py serves the same table to other clients).
    names = names_of(runtime)
    return HTMLResponse(_templates().get_template(name).render(names=names), headers=_PAGE_HEADERS)


@router.get("/agent", response_class=HTMLResponse, include_in_schema=False)
async def agent_page(runtime: RuntimeDep) -> HTMLResponse:
    return _page(runtime, "agent.html")


@router.get("/supervisor", response_class=HTMLResponse, include_in_schema=False)
async def supervisor_page(runtime: RuntimeDep) -> HTMLResponse:
    return _page(runtime, "supervisor.html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    """Only plain files directly in service/web/static with a known type; no paths, no listing."""
    path = WEB_DIR / "static" / name
    media = _STATIC_TYPES.get(path.suffix)
    if "/" in name or "\\" in name or name.startswith(".") or media is None or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})
