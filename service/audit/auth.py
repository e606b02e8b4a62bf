"""Who may use the QA pages and REST: supervisors.

With supervisor tokens configured (CALLWATCH_SUPERVISOR_TOKENS), a request needs one: `Authorization:
Bearer TOKEN`, or the `callwatch_qa` cookie a page visit with `?token=TOKEN` sets (so the browser's audio
player and downloads carry it). With none configured, only this machine (loopback) is let in: the
laptop default works out of the box and a deployment that forgot its tokens is not open to the network.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

COOKIE = "callwatch_qa"
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


def _known(tokens: dict[str, str], token: str) -> bool:
    found = False
    for expected in tokens.values():  # compare with every entry: timing says nothing about which matched
        if token and hmac.compare_digest(expected.encode(), token.encode()):
            found = True
    return found


def request_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE) or ""


def require_supervisor(request: Request) -> None:
    tokens: dict[str, str] = request.app.state.runtime.settings.supervisor_tokens
    if tokens:
        if not _known(tokens, request_token(request)):
            raise HTTPException(status_code=401, detail="supervisor token required", headers={"WWW-Authenticate": "Bearer"})
        return
    host = request.client.host if request.client else ""
    if host not in _LOOPBACK:
        raise HTTPException(status_code=403, detail="no supervisor tokens configured: QA pages answer this machine only")
