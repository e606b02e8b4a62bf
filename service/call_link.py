"""The transport of one live call, as the call's owner (`service/ingest.py: IngestConnection`) sees it.

One place owns a call: it stores what is heard, runs the pipeline, feeds the agent's screen, paces the
audio, applies the limits and ends the call. Everything that differs between the ways a call arrives (our
own `/v1/ingest` protocol, Genesys AudioHook, Twilio Media Streams, FreeSWITCH, Asterisk) is the link's: it
reads the platform's messages and hands the owner protocol-v1 ones (a `StartMessage`, a `CallEventMessage`,
a v1 JSON text, or audio bytes laid out as the start's `AudioFormat` says), and turns the owner's results and
refusals back into what that platform understands. A connector is a `CallLink` and nothing more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from wire.ingest import CallEventMessage, CloseCode, StartMessage


@dataclass(frozen=True)
class Gone:
    """The client closed the link or vanished; `code` is its close code where it gave one."""

    code: int | None = None


# What a link hands the call's owner: a v1 message (parsed, or as the JSON text a v1 client sends), v1 audio
# bytes, or the end of the link.
Incoming = StartMessage | CallEventMessage | str | bytes | Gone


class ProtocolFault(Exception):
    """A message the link could not translate. `code` is the `error` code reported and counted for it; with
    `close`, the fault ends the call (what was heard is kept) and the link is closed with that code."""

    def __init__(self, code: str, message: str, close: CloseCode | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


class CallLink(Protocol):
    connector: str  # the metrics' `connector` label: "ingest", "audiohook", "twilio", ...
    tenant: str | None  # the tenant of the integrator whose key or signature admitted the link

    async def accept(self) -> None: ...

    async def receive(self) -> Incoming:
        """The next message; raises ProtocolFault for one the link cannot translate."""
        ...

    async def send(self, result: dict[str, Any]) -> None:
        """Pass on one v1 result (`final`, `prompt`, `error`, `ended`, ...), in the platform's terms or not at
        all; never raises for a client that has gone."""
        ...

    async def close(self, code: CloseCode, reason: str) -> None:
        """End the link, saying why in the platform's terms; a no-op once the client has gone."""
        ...


def frame_size(message: Incoming) -> int:
    """Bytes a message held back by the pacing takes up (text counts too: a stream of small events held back
    would otherwise grow without bound)."""
    if isinstance(message, (str, bytes)):
        return len(message)
    if isinstance(message, Gone):
        return 0
    return len(message.model_dump_json())


class WebSocketLink:
    """A websocket that carries protocol v1 as it is (`/v1/ingest`), and the base of websocket connectors:
    their links override `receive` and `send` and keep the rest."""

    connector = "ingest"

    def __init__(self, websocket: WebSocket, tenant: str | None):
        self.ws = websocket
        self.tenant = tenant
        self.client_gone = False
        self._left: Gone | None = None

    async def accept(self) -> None:
        await self.ws.accept()

    async def receive_frame(self) -> str | bytes | Gone:
        """The next websocket frame as it came. Once the client is gone, `Gone` again on every call: the owner
        may still be working through audio it held back, and ask again (starlette raises on a second read)."""
        if self._left is not None:
            return self._left
        try:
            message = await self.ws.receive()
        except WebSocketDisconnect as gone:
            return self._went(Gone(gone.code))
        if message["type"] == "websocket.disconnect":
            return self._went(Gone(message.get("code")))
        if message.get("bytes") is not None:
            return message["bytes"]
        return message.get("text") or ""

    def _went(self, gone: Gone) -> Gone:
        self.client_gone = True
        self._left = gone
        return gone

    async def receive(self) -> Incoming:
        return await self.receive_frame()

    async def send(self, result: dict[str, Any]) -> None:
        await self.send_json(result)

    async def send_json(self, message: dict[str, Any]) -> None:
        if not self.connected:
            return
        try:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.client_gone = True

    @property
    def connected(self) -> bool:
        return not self.client_gone and self.ws.application_state == WebSocketState.CONNECTED

    async def close(self, code: CloseCode, reason: str) -> None:
        if not self.connected:
            return
        try:
            await self.ws.close(code=int(code), reason=reason[:120])
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.client_gone = True  # it left while we were closing: nothing more to say to it
