"""The ingest websocket: one connection carries one call from the phone system (protocol v1).

Every result is stored before it is sent, so what was heard survives a client that vanishes. Errors in a
frame are reported and the call goes on; only a frame that cannot be read at all, or a call that must not
exist (a duplicate id), closes the socket, with a documented close code. A call this instance cannot take
now (at its live-call limit, its recogniser queue too deep, shutting down) is refused with 4503 and a
message saying why, so the phone system can place it on another instance; calls already in progress are
not slowed down to make room.

On shutdown every call in progress is ended properly (open utterances flushed to finals and stored, the
call stored as `interrupted`, `ended` sent) and its socket closed with 1012, so the phone system can
reconnect the rest of the call elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from pipelines.call_session import CallSession, FrameError
from service.access.guard import INGEST_ROLES, Keys, KeysDep, Refusal, bearer_key
from service.access.keys import Principal
from service.app_state import IngestConnectionsDep, RuntimeDep
from service.call_link import CallLink, Gone, Incoming, ProtocolFault, WebSocketLink, frame_size
from service.log_format import bind_call_context
from service.pacing import RealTimePacer
from service.runtime import Runtime
from wire.agent_feed import CallInfo
from wire.errors import describe_invalid
from wire.ingest import (
    CallEventMessage,
    CloseCode,
    EmotionResult,
    EndedResult,
    ErrorResult,
    EventResult,
    FinalResult,
    PromptResult,
    StartMessage,
    client_message_adapter,
)

log = logging.getLogger("callwatch.ingest")
router = APIRouter()
MAX_BAD_STARTS = 3
# A client that sends thousands of bad frames must not flood the log: the first few of each kind per call
# are logged, the rest only counted (callwatch_ingest_errors_total).
LOGGED_ERRORS_PER_CODE = 5


class _Close(Exception):
    def __init__(self, code: CloseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class PartialDropWatch:
    """Says once when the shared recogniser is behind: within the last `window_s` seconds of this call's
    clock it dropped at least `drops` partials (of any call), and at least `share` of the partials it was
    given. A few drops are normal (a partial waiting behind a final is replaced by a newer one); most of
    them dropped means partials have slowed down."""

    drops: int
    window_s: float
    share: float
    fired: bool = False
    _samples: deque[tuple[float, int, int]] = field(default_factory=deque)

    def behind(self, now: float, dropped_total: int, done_total: int) -> bool:
        if self.fired or (self._samples and now - self._samples[-1][0] < 0.5):
            return False
        self._samples.append((now, dropped_total, done_total))
        while now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        dropped = dropped_total - self._samples[0][1]
        done = done_total - self._samples[0][2]
        self.fired = dropped >= self.drops and dropped >= self.share * (dropped + done)
        return self.fired


class LiveConnections:
    """The ingest sockets open in one app, each under the key holder that opened it: so that shutdown can
    end their calls before the server closes the sockets under them, and so that one integrator cannot hold
    more than its share of sockets open."""

    def __init__(self) -> None:
        self._open: dict[IngestConnection, str] = {}
        self._per_holder: Counter[str] = Counter()
        self.draining = False

    def __len__(self) -> int:
        return len(self._open)

    def add(self, connection: IngestConnection, holder: str, limit: int) -> bool:
        """Count `connection` as `holder`'s; False, and not counted, when `holder` already has `limit` open."""
        if self._per_holder[holder] >= limit:
            return False
        self._open[connection] = holder
        self._per_holder[holder] += 1
        return True

    def discard(self, connection: IngestConnection) -> None:
        holder = self._open.pop(connection, None)
        if holder is not None:
            self._per_holder[holder] -= 1

    async def drain(self, timeout_s: float) -> tuple[int, int]:
        """Refuse new calls from now on and end every call in progress as `interrupted`; returns (sockets
        ended in time, sockets still ending at the deadline). A call still flushing at the deadline is cut
        off; its status is stored as `interrupted` all the same."""
        self.draining = True
        tasks = [asyncio.create_task(c.end_for_restart()) for c in list(self._open)]
        if not tasks:
            return 0, 0
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(done), len(pending)


class IngestConnection:
    """The owner of one live call, whatever link it arrives over (service/call_link.py)."""

    def __init__(self, link: CallLink, runtime: Runtime, connections: LiveConnections):
        self.link = link
        self.runtime = runtime
        self.connections = connections
        self.session: CallSession | None = None
        self.client_gone = False
        self.bad_starts = 0
        self.feed_call: CallInfo | None = None
        # The call id as this socket's phone system sent it; the session, the store and the feed use the
        # call's row key, which differs when another tenant's call already has this id
        # (service/persistence/call_store.py).
        self.sent_call_id: str | None = None
        # Set once the call is being ended for a shutdown: frames that still arrive are not taken.
        self.ending = False
        self._finish_lock = asyncio.Lock()
        self._errors_seen: Counter[str] = Counter()
        settings = runtime.settings
        self._pacer = RealTimePacer(settings.live_max_lead_s)
        self._held: deque[Incoming | ProtocolFault] = deque()  # read from the link, not yet taken (pacing)
        self._held_bytes = 0
        self._asr_watch = PartialDropWatch(settings.asr_behind_partials_dropped, settings.asr_behind_window_s,
                                           settings.asr_behind_dropped_share)

    async def run(self) -> None:
        start_by = asyncio.get_running_loop().time() + self.runtime.settings.ingest_start_timeout_s
        try:
            while True:
                try:
                    message = self._take_held() if self._held else await self._receive(start_by)
                except ProtocolFault as fault:
                    await self._fault(fault)
                    continue
                if isinstance(message, Gone):
                    self.client_gone = True
                    # 1012: the server is restarting and closed the socket itself (a server that did not
                    # let this app end its calls first): the call was interrupted, not dropped by the client.
                    self.ending = self.ending or message.code == CloseCode.SERVICE_RESTART
                    break
                if self.ending:
                    continue
                if isinstance(message, bytes):
                    await self._on_audio(message)
                elif await self._on_message(message):
                    break
        except _Close as close:
            await self.close_with(close)
            return
        except Exception:
            # A link that broke in a way nobody foresaw must not leave its call `live` forever: it ends as
            # dropped, with what was heard.
            log.exception("the call's link failed; ending the call as dropped")
            self.client_gone = True
        if self.session is not None and not self.session.ended:
            # Reaching here without a hangup means the phone system went away mid-call (or, while shutting
            # down, that the shutdown is already ending it: then this waits for that).
            await self._finish("interrupted" if self.ending else "dropped")
        await self._close(CloseCode.NORMAL, "call ended")

    async def _receive(self, start_by: float) -> Incoming:
        """The next message from the client. A socket that holds a place without using it is closed: one
        with no valid `start` by `start_by` (loop time), and a call whose client has sent nothing at all for
        the idle timeout (a phone system streams audio, silence included, all through a call). A call being
        ended for a shutdown is not timed: the shutdown closes it."""
        settings = self.runtime.settings
        loop = asyncio.get_running_loop()
        while True:
            if self.ending:
                return await self.link.receive()
            started = self.session is not None
            wait = settings.ingest_idle_timeout_s if started else start_by - loop.time()
            try:
                async with asyncio.timeout(max(0.0, wait)):
                    return await self.link.receive()
            except TimeoutError:
                if self.ending:
                    continue
                if started:
                    raise _Close(CloseCode.CLIENT_IDLE, f"client_idle: nothing received for "
                                                        f"{settings.ingest_idle_timeout_s:g} s; the call is ended as dropped")
                raise _Close(CloseCode.NO_VALID_START,
                             f"start_timeout: no valid start within {settings.ingest_start_timeout_s:g} s of opening the socket")

    async def close_with(self, close: _Close) -> None:
        """A fatal error: say why, end the call as `dropped` (what was heard is stored), close with its code."""
        await self._error(close.reason.split(":")[0], close.reason, fatal=True)
        await self._finish("dropped")
        await self._close(close.code, close.reason)

    async def end_for_restart(self) -> None:
        """End the call in progress as `interrupted` (open utterances flushed, `ended` sent) and close the
        socket with 1012 so the phone system reconnects elsewhere. Runs in the shutdown's own task."""
        self.ending = True
        if self.session is not None:
            bind_call_context(call_id=self.session.call_id, agent_id=self.feed_call.agent_id if self.feed_call else None)
            await self._finish("interrupted")
        await self._close(CloseCode.SERVICE_RESTART, "service restart: reconnect to another instance")

    async def _fault(self, fault: ProtocolFault) -> None:
        if fault.close is not None:
            raise _Close(fault.close, f"{fault.code}: {fault.message}")
        await self._error(fault.code, fault.message)

    # ------------------------------------------------------------------ frames

    async def _on_message(self, message: StartMessage | CallEventMessage | str) -> bool:
        """Handle one message; True when the call is over."""
        if isinstance(message, StartMessage):
            await self._on_start(message)
            return False
        if isinstance(message, CallEventMessage):
            return await self._on_event(message)
        return await self._on_text(message)

    async def _on_text(self, text: str) -> bool:
        """Handle one JSON frame of protocol v1; True when the call is over."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Close(CloseCode.UNREADABLE_FRAME, f"malformed_json: frame is not JSON ({exc.msg} at {exc.pos})")
        except RecursionError:
            # Arrays or objects nested thousands deep exhaust the parser's stack; no message of the protocol
            # nests more than three.
            raise _Close(CloseCode.UNREADABLE_FRAME, "malformed_json: frame nests arrays or objects too deeply to read")
        if not isinstance(data, dict):
            raise _Close(CloseCode.UNREADABLE_FRAME, "malformed_json: a frame must be a JSON object")
        kind = data.get("type")
        if kind not in ("start", "event"):
            await self._error("unknown_type", f"unknown message type {kind!r}; expected 'start' or 'event'")
            return False
        try:
            parsed = client_message_adapter.validate_python(data)
        except ValidationError as exc:
            await self._error("invalid_message", f"{kind}: {describe_invalid(exc)}")
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
        runtime, settings = self.runtime, self.runtime.settings
        if self.session is not None:
            await self._error("already_started", f"call {self.sent_call_id} is already started on this socket")
            return
        if self.connections.draining:
            self._refused("shutting_down")
            raise _Close(CloseCode.SERVER_FULL, "shutting_down: this instance is shutting down; retry elsewhere")
        if len(runtime.sessions) >= settings.max_live_calls:
            self._refused("server_full")
            raise _Close(CloseCode.SERVER_FULL, "server_full: this instance is at its live-call limit; retry elsewhere")
        waiting = runtime.scheduler.finals_behind
        if waiting > settings.max_asr_queue_depth:
            self._refused("asr_queue_full")
            raise _Close(CloseCode.SERVER_FULL, f"asr_queue_full: the recogniser is behind ({waiting} finals waiting, "
                                                f"limit {settings.max_asr_queue_depth}); retry elsewhere")
        tenant = self.link.tenant
        # Call ids are per tenant: only this tenant's own calls make the id a duplicate, and the refusal
        # says nothing of other tenants' ids. `runtime.sessions` is keyed by row key, unique across tenants.
        key = await runtime.store_async(
            runtime.store.create_call,
            start.call_id,
            start.agent_id,
            start.direction,
            start.caller_number,
            start.started_at.isoformat() if start.started_at else None,
            start.audio.model_dump(mode="json"),
            tenant,
        )
        if key is None:
            self._refused("duplicate_call")
            raise _Close(CloseCode.DUPLICATE_CALL, f"duplicate_call: call id {start.call_id!r} already exists")
        self.sent_call_id = start.call_id
        bind_call_context(call_id=key, agent_id=start.agent_id)
        observers = runtime.observers_for(key, start.agent_id, start.direction, start.started_at,
                                          start.caller_number)
        self.feed_call = CallInfo(call_id=key, agent_id=start.agent_id, tenant=tenant, direction=start.direction,
                                  caller_number=start.caller_number,
                                  started_at=start.started_at.isoformat() if start.started_at else None)
        self.session = runtime.new_call(key, start.audio, self._deliver, observers=observers)
        runtime.sessions[key] = self.session
        runtime.metrics.calls_started.labels(self.link.connector).inc()
        log.info("call started", extra={"direction": start.direction, "audio": start.audio.model_dump(mode="json")})
        await self.session.start()

    def _refused(self, reason: str) -> None:
        self.runtime.metrics.calls_refused.labels(reason, self.link.connector).inc()

    async def _on_event(self, event: CallEventMessage) -> bool:
        if self.session is None:
            await self._error("not_started", "send a start message before call events")
            return False
        if event.t is not None and not await self._event_time_plausible(event.t):
            return False
        await self.session.event(event)
        if event.event == "hangup":
            await self._finish("completed")
            return True
        return False

    def _take_held(self) -> Incoming:
        message = self._held.popleft()
        if isinstance(message, ProtocolFault):
            raise message
        self._held_bytes -= frame_size(message)
        return message

    async def _hold_back(self, wait_s: float) -> None:
        """Take no more of the call for `wait_s` (it is past its lead on real time), but go on reading the link
        into `_held`: a socket left unread would hold the websocket's keep-alive pong (and a platform's own
        pings) behind the audio, and the other side would drop it for a missed ping. Past one more lead's worth of held audio the client is not
        catching up but flooding: the call is ended (what was heard is kept) with 4429."""
        assert self.session is not None
        lead, per_second = self.runtime.settings.live_max_lead_s, self.session.audio_format.bytes_per_second
        loop = asyncio.get_running_loop()
        until = loop.time() + wait_s
        while (left := until - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    message: Incoming | ProtocolFault = await self.link.receive()
            except TimeoutError:
                return
            except ProtocolFault as fault:
                message = fault
            self._held.append(message)
            if isinstance(message, ProtocolFault):
                continue
            self._held_bytes += frame_size(message)
            if isinstance(message, Gone):
                return
            if self._held_bytes / per_second > lead:
                raise _Close(CloseCode.TOO_FAST, f"too_fast: the audio ran more than {2 * lead:g} s ahead of real "
                                                 f"time; send it as it is spoken")

    async def _event_time_plausible(self, t: float) -> bool:
        """An event's time is on the audio's clock: within the call-length limit, and not far ahead of what was
        heard (a platform's clock runs a little ahead of the audio it has sent, never minutes)."""
        assert self.session is not None
        settings = self.runtime.settings
        limit = min(settings.max_call_s, self.session.now + settings.event_lead_s)
        if t <= limit:
            return True
        await self._error("invalid_message", f"event: t={t:g} s is more than {settings.event_lead_s:g} s ahead of the "
                                             f"audio heard ({self.session.now:.1f} s), or past the call-length limit "
                                             f"({settings.max_call_s:g} s)")
        return False

    async def _on_audio(self, frame: bytes) -> None:
        if self.session is None:
            await self._error("audio_before_start", f"binary frame of {len(frame)} bytes before start: dropped")
            return
        limit = self.runtime.settings.max_frame_bytes
        if len(frame) > limit:
            await self._error("frame_too_large", f"binary frame of {len(frame)} bytes is over the {limit}-byte limit: dropped")
            return
        heard = self.session.now
        try:
            await self.session.audio(frame)
        except FrameError as exc:
            await self._error("bad_audio_frame", str(exc))
        finally:
            self.runtime.metrics.audio_received_seconds.labels(self.link.connector).inc(max(0.0, self.session.now - heard))
        if (wait := self._pacer.delay(self.session.now)) > 0:
            self.runtime.metrics.ingest_paced_seconds.inc(wait)
            await self._hold_back(wait)
        stats = self.runtime.scheduler.stats
        if self._asr_watch.behind(self.session.now, stats.partials_dropped, stats.partials_done):
            self.runtime.metrics.asr_behind_notices.inc()
            await self._error("asr_behind", "the recogniser on this instance is behind: partials come less often for "
                                            "now; every final is still transcribed and stored")
        if self.session.now > self.runtime.settings.max_call_s:
            raise _Close(CloseCode.CALL_TOO_LONG, f"call_too_long: over {self.runtime.settings.max_call_s:g} s")

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
        self._measure(result)

    def _measure(self, result: Any) -> None:
        """Latencies on the call's clock: how much more audio had arrived when the message left than when
        the speech it is about ended (for a call streamed in real time, seconds of wall time)."""
        if self.session is None:
            return
        metrics, now = self.runtime.metrics, self.session.now
        connector = self.link.connector
        if isinstance(result, FinalResult):
            metrics.final_latency.labels(connector).observe(max(0.0, now - result.end))
        elif isinstance(result, PromptResult):
            metrics.prompts_sent.labels(result.severity).inc()
            # Only a prompt the rules raised on hearing a final is measured; one raised as time passed (dead
            # air, a hold, a window for empathy that closed) or on a partial has no end of speech to start from.
            trigger = self.session.cause
            if isinstance(trigger, FinalResult):
                metrics.prompt_latency.observe(max(0.0, now - trigger.end))
        elif isinstance(result, EndedResult):
            metrics.calls_ended.labels(result.status, connector).inc()

    async def _error(self, code: str, message: str, fatal: bool = False) -> None:
        self.runtime.metrics.ingest_errors.labels(code, self.link.connector).inc()
        self._errors_seen[code] += 1
        seen = self._errors_seen[code]
        if fatal or seen <= LOGGED_ERRORS_PER_CODE:
            more = " (further ones on this call are counted, not logged)" if seen == LOGGED_ERRORS_PER_CODE and not fatal else ""
            log.warning("%s: %s%s", code, message, more, extra={"code": code, "fatal": fatal})
        if self.session is not None and not self.session.ended:
            await self.session.emit(ErrorResult(call_id="", event_id=0, code=code, message=message, fatal=fatal))
        else:
            call_id = self.session.call_id if self.session else ""
            await self._send(ErrorResult(call_id=call_id, event_id=0, code=code, message=message, fatal=fatal).model_dump())

    async def _send(self, payload: dict[str, Any]) -> None:
        # A client that is gone gets nothing; the call goes on being transcribed and stored.
        if self.client_gone:
            return
        if self.sent_call_id and payload.get("call_id") not in (None, "", self.sent_call_id):
            payload = {**payload, "call_id": self.sent_call_id}  # the phone system's own id, never the row key
        await self.link.send(payload)

    async def _finish(self, status: str) -> None:
        # A hangup, a dead socket and a shutdown may all try to end the call; the first one does, the others
        # wait for it, so that nothing is sent after `ended` or closed before it.
        async with self._finish_lock:
            session = self.session
            if session is None or session.ended:
                return
            try:
                await session.finish(status)
            finally:
                await self.runtime.store_async(self.runtime.store.end_call, session.call_id, status, session.now)
                self.runtime.sessions.pop(session.call_id, None)
                log.info("call ended", extra={"status": status, "duration": round(session.now, 3),
                                              "utterances": session.utterance_count})
            if status != "interrupted":  # a stopping process cannot finish it; the live transcript stays
                self.runtime.hear_again_later(session)

    async def _close(self, code: CloseCode, reason: str) -> None:
        if not self.client_gone:
            await self.link.close(code, reason)


async def admit_integrator(websocket: WebSocket, key: str, connector: str, runtime: Runtime,
                           keys: Keys) -> Principal | None:
    """The integrator `key` belongs to; None once the handshake is refused (before accept: HTTP 403), which
    is logged by `authorize` with who and why, and counted."""
    principal = keys.authorize(websocket, INGEST_ROLES, key)
    if isinstance(principal, Refusal):
        runtime.metrics.calls_refused.labels("unauthorized", connector).inc()
        await websocket.close(code=int(CloseCode.UNAUTHORIZED), reason="missing or wrong API key")
        return None
    return principal


async def serve_call(link: CallLink, runtime: Runtime, connections: LiveConnections, principal: Principal) -> None:
    """Own the one call that arrives over `link`, admitted for `principal` (not yet accepted): the same limits,
    pipeline, store and agent screen for every connector."""
    # This task serves the one call of this link: everything it (and what it starts) logs names the call.
    bind_call_context(integrator=None if principal.role == "local" else principal.name)
    connection = IngestConnection(link, runtime, connections)
    limit = runtime.settings.resolved_ingest_sockets_per_integrator
    # Counted before the first await, so that a burst of handshakes cannot overshoot the limit. Refused
    # after accepting, as the other refusals are: 4503 and an `error` saying why, not a bare HTTP 403.
    if not connections.add(connection, principal.name, limit):
        runtime.metrics.calls_refused.labels("too_many_sockets", link.connector).inc()
        await link.accept()
        reason = (f"too_many_sockets: {limit} ingest sockets of this integrator are open on this instance; "
                  "close idle ones or retry elsewhere")
        await connection.close_with(_Close(CloseCode.SERVER_FULL, reason))
        return
    try:
        await link.accept()
        await connection.run()
    finally:
        connections.discard(connection)


@router.websocket("/v1/ingest")
async def ingest(websocket: WebSocket, runtime: RuntimeDep, connections: IngestConnectionsDep, keys: KeysDep) -> None:
    principal = await admit_integrator(websocket, bearer_key(websocket), WebSocketLink.connector, runtime, keys)
    if principal is None:
        return
    # The calls of this socket are its integrator's tenant's.
    link = WebSocketLink(websocket, principal.tenant)
    await serve_call(link, runtime, connections, principal)
