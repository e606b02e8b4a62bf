"""The ingest websocket: one connection carries one call from the phone system (protocol v1).

Every result is stored before it is sent, so what was heard survives a client that vanishes. Errors in a
frame are reported and the call goes on; only a frame that cannot be read at all, or a call that must not
exist (a duplicate id), closes the socket, with a documented close code.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pipelines.call_session import CallSession, FrameError
from service.agent_feed import CallInfo
from service.protocol import (
    CallEventMessage,
    CloseCode,
    EmotionResult,
    ErrorResult,
    EventResult,
    FinalResult,
    PromptResult,
    StartMessage,
    client_message_adapter,
)
from service.runtime import Runtime

log = logging.getLogger("callwatch.ingest")
router = APIRouter()
MAX_BAD_STARTS = 3


class _Close(Exception):
    def __init__(self, code: CloseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class IngestConnection:
    def __init__(self, websocket: WebSocket, runtime: Runtime):
        self.ws = websocket
        self.runtime = runtime
        self.session: CallSession | None = None
        self.client_gone = False
        self.bad_starts = 0
        self.feed_call: CallInfo | None = None

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    self.client_gone = True
                    break
                if message.get("bytes") is not None:
                    await self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    if await self._on_text(message["text"]):
                        break
        except _Close as close:
            await self._error(close.reason.split(":")[0], close.reason, fatal=True)
            await self._finish("dropped")
            await self._close(close.code, close.reason)
            return
        except WebSocketDisconnect:
            self.client_gone = True
        if self.session is not None and not self.session.ended:
            # Reaching here without a hangup means the phone system went away mid-call.
            await self._finish("dropped")
        await self._close(CloseCode.NORMAL, "call ended")

    # ------------------------------------------------------------------ frames

    async def _on_text(self, text: str) -> bool:
        """Handle one JSON frame; True when the call is over."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Close(CloseCode.UNREADABLE_FRAME, f"malformed_json: frame is not JSON ({exc.msg} at {exc.pos})")
        if not isinstance(data, dict):
            raise _Close(CloseCode.UNREADABLE_FRAME, "malformed_json: a frame must be a JSON object")
        kind = data.get("type")
        if kind not in ("start", "event"):
            await self._error("unknown_type", f"unknown message type {kind!r}; expected 'start' or 'event'")
            return False
        try:
            parsed = client_message_adapter.validate_python(data)
        except ValidationError as exc:
            await self._error("invalid_message", f"{kind}: {_describe(exc)}")
            if kind == "start" and self.session is None:
                self.bad_starts += 1
                if self.bad_starts >= MAX_BAD_STARTS:
                    raise _Close(CloseCode.NO_VALID_START, f"no_valid_start: {MAX_BAD_STARTS} invalid start frames")
            return False
        if isinstance(parsed, StartMessage):
            await self._on_start(parsed)
            return False
        return await self._on_event(parsed)

    async def _on_start(self, start: StartMessage) -> None:
        runtime = self.runtime
        if self.session is not None:
            await self._error("already_started", f"call {self.session.call_id} is already started on this socket")
            return
        if len(runtime.live_calls) >= runtime.settings.max_live_calls:
            raise _Close(CloseCode.SERVER_FULL, "server_full: this instance is at its live-call limit; retry elsewhere")
        if start.call_id in runtime.live_calls or not await runtime.store_async(
            runtime.store.create_call,
            start.call_id,
            start.agent_id,
            start.direction,
            start.caller_number,
            start.started_at.isoformat() if start.started_at else None,
            start.audio.model_dump(mode="json"),
        ):
            raise _Close(CloseCode.DUPLICATE_CALL, f"duplicate_call: call id {start.call_id!r} already exists")
        observers = runtime.observers_for(start.call_id, start.agent_id, start.direction, start.started_at,
                                          start.caller_number)
        self.feed_call = CallInfo(call_id=start.call_id, agent_id=start.agent_id, direction=start.direction,
                                  caller_number=start.caller_number,
                                  started_at=start.started_at.isoformat() if start.started_at else None)
        self.session = runtime.new_call(start.call_id, start.audio, self._deliver, observers=observers)
        runtime.live_calls[start.call_id] = self.session
        log.info("call started", extra={"call_id": start.call_id, "agent_id": start.agent_id})
        await self.session.start()

    async def _on_event(self, event: CallEventMessage) -> bool:
        if self.session is None:
            await self._error("not_started", "send a start message before call events")
            return False
        await self.session.event(event)
        if event.event == "hangup":
            await self._finish("completed")
            return True
        return False

    async def _on_audio(self, frame: bytes) -> None:
        if self.session is None:
            await self._error("audio_before_start", f"binary frame of {len(frame)} bytes before start: dropped")
            return
        limit = self.runtime.settings.max_frame_bytes
        if len(frame) > limit:
            await self._error("frame_too_large", f"binary frame of {len(frame)} bytes is over the {limit}-byte limit: dropped")
            return
        try:
            await self.session.audio(frame)
        except FrameError as exc:
            await self._error("bad_audio_frame", str(exc))
        if self.session.now > self.runtime.settings.max_call_s:
            raise _Close(CloseCode.CALL_TOO_LONG, f"call_too_long: over {self.runtime.settings.max_call_s:.0f} s")

    # ------------------------------------------------------------------ results

    async def _deliver(self, result: Any) -> None:
        """Store first, then send: a result the client never receives is still in the record."""
        runtime, store = self.runtime, self.runtime.store
        if isinstance(result, FinalResult):
            await runtime.store_async(
                store.add_utterance, result.call_id, result.utterance_id, result.speaker,
                result.start, result.end, result.text, result.level_db,
            )
        elif isinstance(result, EventResult):
            await runtime.store_async(store.add_event, result.call_id, result.event, result.t, result.by, result.target)
        elif isinstance(result, PromptResult):
            await runtime.store_async(store.add_prompt, result.call_id, result.prompt_id, result.rule_id,
                                      result.severity, result.t, result.text, result.evidence)
        elif isinstance(result, EmotionResult):
            await runtime.store_async(store.set_utterance_emotion, result.call_id, result.utterance_id,
                                      result.model_dump(exclude={"type", "call_id", "event_id", "utterance_id"}))
        payload = result.model_dump(mode="json")
        if self.feed_call is not None:
            # The agent's screen gets every result of their call, as the phone system does.
            await runtime.feed_hub.publish(self.feed_call, payload)
        await self._send(payload)

    async def _error(self, code: str, message: str, fatal: bool = False) -> None:
        if self.session is not None and not self.session.ended:
            await self.session.emit(ErrorResult(call_id="", event_id=0, code=code, message=message, fatal=fatal))
        else:
            call_id = self.session.call_id if self.session else ""
            await self._send(ErrorResult(call_id=call_id, event_id=0, code=code, message=message, fatal=fatal).model_dump())

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.client_gone or self.ws.application_state != WebSocketState.CONNECTED:
            return
        try:
            await self.ws.send_text(json.dumps(payload, ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client is gone; keep transcribing and storing what was already heard.
            self.client_gone = True

    async def _finish(self, status: str) -> None:
        session = self.session
        if session is None or session.ended:
            return
        try:
            await session.finish(status)
        finally:
            await self.runtime.store_async(self.runtime.store.end_call, session.call_id, status, session.now)
            self.runtime.live_calls.pop(session.call_id, None)
            log.info("call ended", extra={"call_id": session.call_id, "status": status})

    async def _close(self, code: int, reason: str) -> None:
        if self.client_gone or self.ws.application_state != WebSocketState.CONNECTED:
            return
        try:
            await self.ws.close(code=int(code), reason=reason[:120])
        except (RuntimeError, OSError):
            pass


def integrator_for(websocket: WebSocket, keys: dict[str, str]) -> str | None:
    """The integrator whose API key the handshake carries (`Authorization: Bearer KEY`), or None."""
    scheme, _, presented = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return None
    for name, key in keys.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            return name
    return None


@router.websocket("/v1/ingest")
async def ingest(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    keys = runtime.settings.ingest_keys
    if keys and integrator_for(websocket, keys) is None:
        log.warning("ingest refused: missing or wrong API key from %s", websocket.client)
        await websocket.close(code=int(CloseCode.UNAUTHORIZED), reason="missing or wrong API key")
        return
    await websocket.accept()
    await IngestConnection(websocket, runtime).run()
