"""How deeply JSON from a request may nest, checked on the raw text before anything parses it.

Python's `json.loads` (and what FastAPI, pydantic and the error responses do with its result) recurses once
per level: a body of 100,000 `[` is a RecursionError, a few hundred levels a 422 that echoes the whole
input. Nothing the service takes needs more than a handful of levels (a call timeline, the deepest, about
six), so a body deeper than MAX_JSON_DEPTH is refused with a 422 before it is parsed: JSON bodies by
`JsonDepthGuard` around the whole app, JSON inside a form field (an upload's `meta`) by its endpoint.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32
# A JSON string, whose brackets do not count. An unterminated one runs to the end (the text is no JSON then,
# and the parser says so); matching it all keeps the scan linear whatever the quotes and backslashes.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in `text` nest deeper than `limit`, counted without parsing it (and so
    without recursion): the brackets outside strings, in one pass."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return f"JSON nested deeper than {limit} levels (arrays and objects inside one another)"


def _is_json(scope: Scope) -> bool:
    """What FastAPI may parse as JSON: a JSON media type, or (older FastAPI) no content type at all."""
    content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    media = content_type.split(b";", 1)[0].strip().lower()
    return not media or media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class JsonDepthGuard:
    """ASGI middleware: a JSON request body nested deeper than MAX_JSON_DEPTH gets a 422 shaped like FastAPI's
    own validation errors; any other request passes untouched (its body is read here and handed on)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it as it would
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if too_deep(body, self.limit):
            await _unprocessable(send, too_deep_message(self.limit))
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], None, receive), send)


def _replay(first: list[Message], then: Message | None, receive: Receive) -> Receive:
    """A receive that hands out what was read already, then what the client sends next."""
    pending = [*first, *([then] if then is not None else [])]

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _unprocessable(send: Send, message: str) -> None:
    detail: dict[str, Any] = {"detail": [{"type": "value_error", "loc": ["body"], "msg": message}]}
    body = json.dumps(detail).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
