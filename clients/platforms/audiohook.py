"""A Genesys Cloud AudioHook client (protocol version 2), written from Genesys's protocol reference
(developer.genesys.cloud, "AudioHook protocol") to stream a two-party call the way Genesys Cloud forks one.

What it does, as the protocol has the client do it:
- connects with `Audiohook-Organization-Id`, `Audiohook-Session-Id`, `Audiohook-Correlation-Id` and
  `X-API-KEY`, and with a client secret signs the request (HTTP message signature, `hmac-sha256`, covering
  `@request-target`, `@authority` and those four headers);
- opens the session offering PCMU at 8 kHz, both channels (`external` the customer, `internal` the agent)
  or either one alone, and sends no audio before `opened`, then only the media the server chose;
- sends binary frames of interleaved μ-law samples in the chosen channel order, in real time at `speed`;
- numbers its messages (`seq` from 1), echoes the last server `seq` (`serverseq`), reports its `position`
  (audio sent, as an ISO 8601 duration; a pause's audio is not sent and not counted), pings every few
  seconds and checks each `pong` answers its `ping`;
- can put the call on hold (`paused` … `resumed` with the pause's `start` and `discarded` length);
- ends with `close` (reason `end`) and waits for `closed` before closing the socket; on a server
  `disconnect` it runs the same close transaction with reason `disconnect`.
Every server message goes to `on_message`; one that breaks the protocol (a `seq` out of order, a `pong`
for no `ping`, media that was not offered) raises AudioHookProtocolError once the session is over.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import websockets

from pipelines.audio import ChannelResampler, encode_g711

ENDPOINT = "/v1/connectors/audiohook"
RATE = 8000
FRAME_S = 0.1
OPEN_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0
PING_S = 5.0
SIGNED = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
          "audiohook-correlation-id", "x-api-key")


class AudioHookProtocolError(RuntimeError):
    """The server broke the AudioHook protocol."""


def duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "S"


def signature_headers(target: str, authority: str, headers: dict[str, str], api_key: str, client_secret: str,
                      created: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """`Signature-Input` and `Signature` for the upgrade request, as the AudioHook client signs it."""
    created = int(time.time()) if created is None else created
    nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
    values = {"@request-target": target, "@authority": authority,
              **{name: headers[name] for name in SIGNED if not name.startswith("@")}}
    components = " ".join(f'"{name}"' for name in SIGNED)
    params = f'({components});keyid="{api_key}";nonce="{nonce}";alg="hmac-sha256";created={created};expires={created + 30}'
    base = "\n".join([*(f'"{name}": {values[name]}' for name in SIGNED), f'"@signature-params": {params}'])
    digest = hmac.new(base64.b64decode(client_secret), base.encode(), hashlib.sha256).digest()
    return {"signature-input": f"sig1={params}", "signature": f"sig1=:{base64.b64encode(digest).decode()}:"}


def offered_media(channels: str) -> list[dict[str, Any]]:
    """What Genesys offers: both channels, then each alone (`channels` narrows it, e.g. "external")."""
    offers = {"both": [["external", "internal"], ["external"], ["internal"]],
              "external": [["external"]], "internal": [["internal"]]}[channels]
    return [{"type": "audio", "format": "PCMU", "channels": c, "rate": RATE} for c in offers]


class Session:
    """One AudioHook session on one websocket, from the client's side."""

    def __init__(self, ws: Any, session_id: str, on_message: Callable[[dict[str, Any]], None] | None):
        self.ws = ws
        self.id = session_id
        self.on_message = on_message
        self.seq = 0
        self.serverseq = 0
        self.position_s = 0.0
        # The `opened` parameters, or None when the server refused with `disconnect` instead.
        self.opened: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self.disconnect: dict[str, Any] | None = None
        self.violations: list[str] = []
        self._ping_seq: int | None = None
        self._lock = asyncio.Lock()

    async def send(self, kind: str, parameters: dict[str, Any]) -> int:
        async with self._lock:
            self.seq += 1
            await self.ws.send(json.dumps({"version": "2", "id": self.id, "type": kind, "seq": self.seq,
                                           "serverseq": self.serverseq, "position": duration(self.position_s),
                                           "parameters": parameters}))
            return self.seq

    async def send_audio(self, frame: bytes, seconds: float) -> None:
        async with self._lock:
            await self.ws.send(frame)
            self.position_s += seconds

    async def ping(self) -> None:
        if self._ping_seq is not None:
            self.violations.append(f"no pong for ping seq {self._ping_seq} within {PING_S:g} s")
        self._ping_seq = await self.send("ping", {})

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.violations.append(f"binary frame of {len(raw)} bytes from the server")
                    continue
                message = json.loads(raw)
                if self.on_message is not None:
                    self.on_message(message)
                self._check(message)
                self._dispatch(message)

    def _check(self, message: dict[str, Any]) -> None:
        if message.get("version") != "2" or message.get("id") != self.id:
            self.violations.append(f"not a version 2 message of this session: {message}")
        if message.get("seq") != self.serverseq + 1:
            self.violations.append(f"server seq {message.get('seq')} where {self.serverseq + 1} was due")
        self.serverseq = message.get("seq", self.serverseq)
        if not isinstance(message.get("clientseq"), int) or message["clientseq"] > self.seq:
            self.violations.append(f"clientseq {message.get('clientseq')} is past the last client seq {self.seq}")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "opened":
            if not self.opened.done():
                self.opened.set_result(message["parameters"])
        elif kind == "pong":
            if message.get("clientseq") != self._ping_seq:
                self.violations.append(f"pong with clientseq {message.get('clientseq')} for ping {self._ping_seq}")
            self._ping_seq = None
        elif kind == "closed":
            self.closed.set()
        elif kind == "disconnect":
            self.disconnect = message["parameters"]
            if not self.opened.done():
                self.opened.set_result(None)
        elif kind not in ("event", "pause", "resume", "reconnect", "updated"):
            self.violations.append(f"unknown server message type {kind!r}")

    async def close(self, reason: str, wait: bool = True, ahead_s: float = 0.0) -> None:
        """The close transaction: `close`, then `closed`, then the socket closes. `ahead_s`: how far this
        client ran ahead of real time (speed > 1): the server takes a call's audio in real time, so the
        `close` reaches the call that much later."""
        await self.send("close", {"reason": reason})
        if not wait:
            return
        try:
            await asyncio.wait_for(self.closed.wait(), CLOSE_TIMEOUT_S + ahead_s)
        except TimeoutError:
            self.violations.append(f"no 'closed' within {CLOSE_TIMEOUT_S + ahead_s:.1f} s of 'close'")


def _legs_at_8k(agent: np.ndarray, customer: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    if rate == RATE:
        return agent, customer
    return ChannelResampler(rate, RATE)(agent, last=True), ChannelResampler(rate, RATE)(customer, last=True)


async def play_call(url: str, agent: np.ndarray, customer: np.ndarray, rate: int, *, call_id: str,
                    agent_id: str, key: str | None = None, speed: float = 1.0,
                    on_message: Callable[[dict[str, Any]], None] | None = None,
                    organization_id: str | None = None, session_id: str | None = None,
                    caller_number: str | None = None, language: str | None = None,
                    client_secret: str | None = None, channels: str = "both",
                    hold: tuple[float, float] | None = None, wait_closed: bool = True,
                    vanish_at: float | None = None, frame_s: float = FRAME_S) -> None:
    """Stream one call as Genesys Cloud would over AudioHook. `url` is the endpoint's websocket URL (the
    server's root, ws://host:port, gets the endpoint path added). `call_id` is the conversation id;
    `agent_id` goes in `customConfig.agentId`, `caller_number` in the participant's `ani`. `language` asks
    for transcripts; `client_secret` (base64) signs the request; `hold=(at_s, length_s)` pauses the stream
    at `at_s` of the recording for `length_s`; `wait_closed=False` drops the socket right after `close`;
    `vanish_at` drops it mid-call without any close."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url, parts = url.rstrip("/") + ENDPOINT, urlsplit(url.rstrip("/") + ENDPOINT)
    session_id = session_id or str(uuid.uuid4())
    headers = {"audiohook-organization-id": organization_id or str(uuid.uuid4()),
               "audiohook-session-id": session_id, "audiohook-correlation-id": str(uuid.uuid4()),
               "x-api-key": key or ""}
    if client_secret:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers |= signature_headers(target, parts.netloc, headers, key or "", client_secret)
    agent, customer = _legs_at_8k(agent, customer, rate)
    by_channel = {"internal": encode_g711(agent, "mulaw"), "external": encode_g711(customer, "mulaw")}

    async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=10) as ws:
        session = Session(ws, session_id, on_message)
        reader = asyncio.create_task(session.read())
        open_parameters: dict[str, Any] = {
            "organizationId": headers["audiohook-organization-id"], "conversationId": call_id,
            "participant": {"id": str(uuid.uuid4()), "ani": f"tel:{caller_number}" if caller_number else "",
                            "aniName": "", "dnis": ""},
            "media": offered_media(channels), "customConfig": {"agentId": agent_id},
        }
        if language:
            open_parameters |= {"language": language, "supportedLanguages": True}
        await session.send("open", open_parameters)
        pinger: asyncio.Task[None] | None = None
        vanished = False
        try:
            try:
                opened = await asyncio.wait_for(asyncio.shield(session.opened), OPEN_TIMEOUT_S)
            except TimeoutError:
                opened = None
                session.violations.append(f"no 'opened' within {OPEN_TIMEOUT_S:g} s")
            chosen = (opened or {}).get("media") or []
            if opened is None:
                # Refused (a `disconnect` instead of `opened`) or no answer: the session is closed all the same.
                await session.close("disconnect" if session.disconnect else "error")
            elif len(chosen) != 1 or chosen[0] not in open_parameters["media"]:
                session.violations.append(f"the server chose media that was not offered: {chosen}")
                await session.close("error")
            else:
                streams = [np.frombuffer(by_channel[c], dtype=np.uint8) for c in chosen[0]["channels"]]
                pinger = asyncio.create_task(_ping_every(session, PING_S))
                ahead_s = await _stream(session, streams, frame_s, speed, hold, vanish_at)
                pinger.cancel()  # no more pings once the session is closing
                if vanish_at is not None and session.disconnect is None:
                    vanished = True  # gone mid-call (or at the end): no close, no closing handshake
                else:
                    await session.close("disconnect" if session.disconnect else "end", wait=wait_closed,
                                        ahead_s=ahead_s)
                    vanished = not wait_closed
                if vanished:
                    ws.transport.abort()
        finally:
            if pinger is not None:
                pinger.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
            await reader
    if session.violations and not vanished:
        raise AudioHookProtocolError("; ".join(session.violations))


async def _ping_every(session: Session, every_s: float) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        await asyncio.sleep(min(1.0, every_s))
        while True:
            await session.ping()
            await asyncio.sleep(every_s)


async def _stream(session: Session, streams: list[np.ndarray], frame_s: float, speed: float,
                  hold: tuple[float, float] | None, vanish_at: float | None) -> float:
    """Send the call in real time at `speed`; returns how far ahead of real time it was sent."""
    loop = asyncio.get_running_loop()
    per_frame = int(round(frame_s * RATE))
    total = len(streams[0])
    started, played_s = loop.time(), 0.0  # played_s: the call's time, audio and hold, on the wall clock
    for at in range(0, total, per_frame):
        if session.disconnect is not None:
            break
        now_s = at / RATE
        if vanish_at is not None and now_s >= vanish_at:
            break
        if hold is not None and now_s >= hold[0]:
            await session.send("paused", {})
            start = session.position_s
            played_s += hold[1]
            await asyncio.sleep(max(0.0, started + played_s / speed - loop.time()))
            await session.send("resumed", {"start": duration(start), "discarded": duration(hold[1])})
            hold = None
        chunk = [s[at:at + per_frame] for s in streams]
        frame = np.stack(chunk, axis=1).tobytes() if len(chunk) == 2 else chunk[0].tobytes()
        seconds = len(chunk[0]) / RATE
        await session.send_audio(frame, seconds)
        played_s += seconds
        await asyncio.sleep(max(0.0, started + played_s / speed - loop.time()))
    return max(0.0, played_s - (loop.time() - started))
