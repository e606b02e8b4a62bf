"""Who may use the QA pages and REST: supervisors and QA users (docs/security.md).

A request carries its key as `Authorization: Bearer KEY`, or as the `callwatch_qa` cookie that a page visit
with `?token=KEY` sets (so the browser's audio player and downloads carry it). With no supervisor or QA keys
configured anywhere, only this machine (loopback) is let in: the laptop default works out of the box and a
deployment that forgot its keys is not open to the network.

A supervisor or QA key scoped to a tenant opens that tenant's calls by id (report, CSV, recording, report
page), the ids its phone systems sent, looked up within the tenant (`request.state.call_key`: the row); a
supervisor that leads teams only its teams' agents' calls (another's is a 404, `check_call`). The tools that
span calls (the list and search, CSV exports, batches, re-audits) are cut to its tenant and teams by the
endpoints themselves (service/audit/web/api.py, service/audit/web/tenancy.py), from `request.state.principal`.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from service.access.guard import QA_ROLES, KeysDep, Refusal
from service.access.keys import Principal
from service.app_state import RuntimeDep

COOKIE = "callwatch_qa"


def request_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE) or ""


def require_supervisor(request: Request, keys: KeysDep, runtime: RuntimeDep) -> Principal:
    """The QA principal of this request; 401/403 otherwise, 404 for a call it may not see."""
    result = keys.authorize(request, QA_ROLES, request_token(request))
    if isinstance(result, Refusal):
        raise result.http()
    call_id = request.path_params.get("call_id")
    if call_id is not None:
        # Call ids are per tenant: the routes read the row this resolved to, within the key's tenant.
        request.state.call_key = keys.check_call(request, runtime.store, result, str(call_id))
    request.state.principal = result
    return result


def login_redirect(request: Request) -> Response | None:
    """A page link with ?token= logs the browser in: a redirect to the page without the key in its address,
    setting the cookie that then carries the key to the REST calls, the downloads and the audio player.
    None where the link carries no key."""
    token = request.query_params.get("token")
    if not token:
        return None
    response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response
