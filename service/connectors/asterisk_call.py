"""One Asterisk call, whose legs arrive over connections of their own (AudioSocket or chan_websocket).

Asterisk sends one leg per connection: a call's agent and customer come in as two connections that name the
same call. The first leg opens the call; a second one naming the same call (same tenant) within
CALLWATCH_ASTERISK_PAIR_WINDOW_S joins it. The call reaches its owner (service/ingest.py) as ONE link in the
v1 `two_legs` layout: each binary frame's first byte is the leg (0 agent, 1 customer). A leg whose audio starts
later than the other's is preceded by silence for the time between, so both legs keep one clock.

A leg that hangs up does not end the call: the call ends when every leg that joined has ended. It ends as
`completed`, hung up `by` the leg that ended first, when every leg ended in Asterisk's normal way (a hangup
message or the connection closed between frames); as `dropped` when a leg was lost (a connection reset or
closed inside a frame, an Asterisk error other than a hangup).

The transports (service/connectors/audiosocket.py, service/connectors/asterisk.py) only read their wire
into `LegItem`s; this module pairs the legs and speaks protocol v1 to the owner.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from service.access.keys import Principal
from service.call_link import Gone, Incoming, ProtocolFault
from service.ingest import LiveConnections, serve_call
from service.runtime import Runtime
from wire.errors import describe_invalid
from wire.ingest import AudioFormat, CallEventMessage, CloseCode, StartMessage

log = logging.getLogger("callwatch.connectors.asterisk")

CONNECTOR = "asterisk"
LEG_SPEAKERS: tuple[Literal["agent"], Literal["customer"]] = ("agent", "customer")
AGENT_LEG, CUSTOMER_LEG = 0, 1
Encoding = Literal["pcm_s16le", "mulaw", "alaw"]
# One encoded sample of silence: zero for linear PCM, the codes of zero for G.711.
SILENCE_BYTE = {"pcm_s16le": b"\x00\x00", "mulaw": b"\xff", "alaw": b"\xd5"}
# Items read from the legs and not yet taken by the owner; past this a leg's reader waits (TCP back-pressure).
QUEUE_ITEMS = 256
# Two legs whose audio starts within this of each other started together (ChanSpy or ARI snoops start both
# legs at once): a busy server reads the second socket a little later, and shifting a leg by a few frames
# changes how its speech is cut up (on the shared two-party call, 40 ms lost the customer's first turn).
SIMULTANEOUS_S = 0.5


@dataclass(frozen=True)
class LegAudio:
    """How one leg's audio is encoded; both legs of a call must match."""

    encoding: Encoding
    sample_rate: int

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * len(SILENCE_BYTE[self.encoding])

    def describe(self) -> str:
        return f"{self.encoding} {self.sample_rate} Hz"


@dataclass(frozen=True)
class CallIdentity:
    """What a leg says of its call: the platform's call id, and what the dial plan or ARI set."""

    call_id: str
    agent_id: str
    caller_number: str | None = None
    direction: Literal["inbound", "outbound"] = "inbound"

    def start(self, audio: LegAudio) -> StartMessage:
        return StartMessage(type="start", call_id=self.call_id, agent_id=self.agent_id, direction=self.direction,
                            caller_number=self.caller_number,
                            audio=AudioFormat(encoding=audio.encoding, sample_rate=audio.sample_rate, layout="two_legs"))

    def invalid(self) -> str | None:
        """Why a start with this identity would be refused; None if it would not."""
        try:
            self.start(LegAudio("pcm_s16le", 8000))
        except ValidationError as err:
            return describe_invalid(err)
        return None


# ---------------------------------------------------------------- what a leg's transport reads


@dataclass(frozen=True)
class LegMedia:
    payload: bytes
    audio: LegAudio


@dataclass(frozen=True)
class LegDigit:
    digit: str


@dataclass(frozen=True)
class LegFault:
    """A message the leg's transport could not take; the call goes on."""

    code: str
    message: str


@dataclass(frozen=True)
class LegHangup:
    """The leg ended the normal way."""


@dataclass(frozen=True)
class LegLost:
    """The leg ended abnormally; the call will be stored as `dropped`."""

    code: str
    message: str


LegItem = LegMedia | LegDigit | LegFault | LegHangup | LegLost


class LegConnection(Protocol):
    """One Asterisk connection carrying one leg."""

    async def read(self) -> LegItem:
        """The next item; after LegHangup or LegLost the leg is over."""
        ...

    async def hang_up(self, code: CloseCode, reason: str) -> None:
        """End the connection in its own terms (AudioSocket hangup, chan_websocket HANGUP and close); a no-op
        once it has gone."""
        ...


# ---------------------------------------------------------------- the call


@dataclass
class _Leg:
    connection: LegConnection
    sent_bytes: int = 0  # audio passed on, without silence added
    open: bool = True


@dataclass
class AsteriskCall:
    """The owner's link for one Asterisk call (a `CallLink`), fed by one reader per leg."""

    identity: CallIdentity
    tenant: str | None
    joinable_until: float  # loop time
    connector: str = CONNECTOR
    legs: dict[int, _Leg] = field(default_factory=dict)
    audio: LegAudio | None = None
    audio_since: float = 0.0  # loop time of the call's first audio
    first_hangup_by: str | None = None
    lost: bool = False
    refused_media: bool = False
    closed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[Incoming | ProtocolFault] = field(default_factory=lambda: asyncio.Queue(QUEUE_ITEMS))

    # -------------------------------------------------------- CallLink

    async def accept(self) -> None:
        """The legs' connections were accepted by their transports."""

    async def receive(self) -> Incoming:
        item = await self._queue.get()
        if isinstance(item, ProtocolFault):
            raise item
        return item

    async def send(self, result: dict[str, Any]) -> None:
        """Neither AudioSocket nor chan_websocket has a message for a transcript or a prompt: results reach the
        agent's screen and the API, not Asterisk."""

    async def close(self, code: CloseCode, reason: str) -> None:
        self.stop_taking()
        for leg in self.legs.values():
            if leg.open:
                await leg.connection.hang_up(code, reason)

    # -------------------------------------------------------- legs

    def join(self, number: int, connection: LegConnection, now: float) -> str | None:
        """Take `connection` as leg `number`; or why not."""
        if self.closed:
            return "call_ended: this call has ended"
        if number in self.legs:
            return f"leg_taken: the call already has its {LEG_SPEAKERS[number]} leg"
        if self.legs and now > self.joinable_until:
            return "pair_window_over: the call's first leg arrived too long ago for a second to join"
        self.legs[number] = _Leg(connection)
        return None

    async def carry(self, number: int, runtime: Runtime) -> None:
        """Read leg `number` until it ends, passing its audio and faults to the owner."""
        leg = self.legs[number]
        try:
            while True:
                item = await leg.connection.read()
                if isinstance(item, LegMedia):
                    if not await self._media(number, leg, item):
                        return
                elif isinstance(item, LegDigit):
                    # Protocol v1 has no DTMF event; a digit says nothing the rules judge.
                    log.debug("DTMF %s on the %s leg", item.digit, LEG_SPEAKERS[number])
                elif isinstance(item, LegFault):
                    await self._put(ProtocolFault(item.code, f"{LEG_SPEAKERS[number]} leg: {item.message}"))
                elif isinstance(item, LegLost):
                    self.lost = True
                    await self._put(ProtocolFault(item.code, f"{LEG_SPEAKERS[number]} leg: {item.message}"))
                    return
                else:
                    self.first_hangup_by = self.first_hangup_by or LEG_SPEAKERS[number]
                    return
        finally:
            leg.open = False
            if not any(other.open for other in self.legs.values()):
                await self._all_legs_ended()

    async def _media(self, number: int, leg: _Leg, media: LegMedia) -> bool:
        """Pass on one leg's audio; False when the leg cannot be taken (its format differs from the call's)."""
        if self.audio is None:
            self.audio = media.audio
            self.audio_since = asyncio.get_running_loop().time()
            await self._put(self.identity.start(media.audio))
        elif media.audio != self.audio:
            self.refused_media = True
            reason = (f"unsupported_format: the {LEG_SPEAKERS[number]} leg sends {media.audio.describe()}, the call "
                      f"is {self.audio.describe()}; both legs must match")
            await self._put(ProtocolFault("unsupported_format", reason))
            await leg.connection.hang_up(CloseCode.NORMAL, reason)
            return False
        if leg.sent_bytes == 0:
            await self._catch_up(number)
        leg.sent_bytes += len(media.payload)
        await self._put(bytes([number]) + media.payload)
        return True

    async def _catch_up(self, number: int) -> None:
        """A leg's first audio: silence for the time the call's audio has run before it (Asterisk streams in real
        time), so that both legs keep one clock."""
        assert self.audio is not None
        late = asyncio.get_running_loop().time() - self.audio_since
        if late < SIMULTANEOUS_S:
            return
        sample = SILENCE_BYTE[self.audio.encoding]
        frame = self.audio.bytes_per_second // 50 // len(sample) * len(sample)  # 20 ms
        frames = int(late * 50)
        while frames > 0:
            chunk = min(frames, 50)  # up to a second a message
            await self._put(bytes([number]) + sample * (chunk * frame // len(sample)))
            frames -= chunk

    async def _all_legs_ended(self) -> None:
        if self.audio is None and (self.lost or self.refused_media):
            await self._put(Gone())  # nothing was heard and no call was begun: nothing to store
            return
        if self.audio is None:
            # Asterisk connected and hung up before any audio: the call happened, and is stored, empty.
            self.audio = LegAudio("pcm_s16le", 8000)
            await self._put(self.identity.start(self.audio))
        if self.lost:
            await self._put(Gone())
        else:
            await self._put(CallEventMessage(type="event", event="hangup", by=self.first_hangup_by or "system"))

    async def _put(self, item: Incoming | ProtocolFault) -> None:
        if not self.closed:
            await self._queue.put(item)

    def stop_taking(self) -> None:
        """The owner is done: take nothing more, and free readers waiting on a full queue."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()


class AsteriskCalls:
    """The Asterisk calls open in one app, by tenant and call id, so that a call's second leg finds its first."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str | None, str], AsteriskCall] = {}

    async def take_leg(self, number: int, connection: LegConnection, identity: CallIdentity, principal: Principal,
                       runtime: Runtime, connections: LiveConnections) -> None:
        """Carry one leg, opening its call or joining it; returns when the call is over for this leg."""
        loop = asyncio.get_running_loop()
        key = (principal.tenant, identity.call_id)
        call = self._calls.get(key)
        if call is not None:
            refusal = call.join(number, connection, loop.time())
            if refusal is not None:
                runtime.metrics.calls_refused.labels(refusal.split(":")[0], CONNECTOR).inc()
                log.warning("%s leg of call %s refused: %s", LEG_SPEAKERS[number], identity.call_id, refusal)
                await connection.hang_up(CloseCode.DUPLICATE_CALL, refusal)
                return
            log.info("%s leg joined call %s", LEG_SPEAKERS[number], identity.call_id)
            await call.carry(number, runtime)
            await call.done.wait()
            return
        call = AsteriskCall(identity, principal.tenant, loop.time() + runtime.settings.asterisk_pair_window_s)
        call.join(number, connection, loop.time())
        self._calls[key] = call
        owner = asyncio.create_task(serve_call(call, runtime, connections, principal))
        try:
            await call.carry(number, runtime)
            await owner
        finally:
            if self._calls.get(key) is call:
                del self._calls[key]
            call.stop_taking()
            call.done.set()
            if not owner.done():
                owner.cancel()
