"""Asterisk AudioSocket: a TCP listener of its own (CALLWATCH_AUDIOSOCKET_PORT; off by default).

The protocol (docs.asterisk.org, Configuration/Channel-Drivers/AudioSocket; Asterisk's res_audiosocket.c) is
a stream of messages, each a 1-byte type, a 2-byte big-endian payload length and the payload:

  0x00 hangup (closing the socket says the same)     0x01 the stream's UUID, 16 bytes, always first
  0x03 one DTMF digit, ASCII                          0x10 signed linear 16-bit little-endian mono, 8 kHz
  0x11 … 0x18 the same at 12, 16, 24, 32, 44.1, 48, 96, 192 kHz
  0xff an error in Asterisk; the payload's one byte is bit-packed: 0x01 hangup of the calling party,
       0x02 frame forwarding error, 0x04 memory (allocation) error

Asterisk takes only audio and hangup back, and ends the AudioSocket on anything else. So a refusal, and the
end of a call this side ends, is a hangup message (0x00 0x00 0x00) and the connection closed.

AudioSocket carries one leg per connection, names nothing but a UUID and has no credentials: the calls are
admitted as the integrator CALLWATCH_AUDIOSOCKET_INTEGRATOR names (its tenant applies), from the addresses
CALLWATCH_AUDIOSOCKET_ALLOW lists. How two legs name one call is the UUID's last hex digit (`leg_of`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from service.access.guard import _LOOPBACK
from service.access.keys import LOCAL, Principal
from service.access.ring import KeyRing
from service.app_state import AppState
from service.connectors.asterisk_call import (
    AGENT_LEG,
    CONNECTOR,
    CUSTOMER_LEG,
    CallIdentity,
    LegAudio,
    LegDigit,
    LegFault,
    LegHangup,
    LegItem,
    LegLost,
    LegMedia,
)
from service.settings import Settings
from wire.ingest import CloseCode

log = logging.getLogger("callwatch.connectors.audiosocket")

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_ERROR = 0xFF
# res_audiosocket.h: AST_AUDIOSOCKET_KIND_AUDIO (slin) and _AUDIO_SLIN12 … _AUDIO_SLIN192.
AUDIO_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000,
               0x17: 96000, 0x18: 192000}
MAX_TAKEN_RATE = 48000  # the highest rate a call takes (wire/ingest.py: AudioFormat)
ERROR_HANGUP = 0x01
ERROR_BITS = {0x01: "hangup of the calling party", 0x02: "frame forwarding error", 0x04: "memory (allocation) error"}
HANGUP_MESSAGE = bytes([KIND_HANGUP, 0, 0])
# The last hex digit of a leg's UUID: 0 the agent's leg, 1 the customer's; the call is the UUID ending in 0.
LEG_MARKS = {"0": AGENT_LEG, "1": CUSTOMER_LEG}
WRITE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Message:
    kind: int
    payload: bytes


class TruncatedMessage(Exception):
    def __init__(self, kind: int, length: int, got: int):
        super().__init__(f"message type 0x{kind:02x} says {length} payload bytes; the connection ended after {got}")


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message; None when the connection closed between messages."""
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as short:
        if not short.partial:
            return None
        raise TruncatedMessage(short.partial[0], 0, 0) from None
    kind, length = header[0], int.from_bytes(header[1:3], "big")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as short:
        raise TruncatedMessage(kind, length, len(short.partial)) from None
    return Message(kind, payload)


def describe_error(payload: bytes) -> str:
    if not payload:
        return "an error with no code"
    code = payload[0]
    named = [text for bit, text in ERROR_BITS.items() if code & bit] or ["an application-specific error"]
    return f"error code 0x{code:02x} ({', '.join(named)})"


def leg_of(stream: uuid.UUID) -> tuple[int, str]:
    """The leg a UUID names and the call id of its call: a UUID ending in 0 is the agent's leg, in 1 the
    customer's, of the call whose id is the UUID ending in 0; any other UUID is a call of its own with one
    leg, the customer's (AudioSocket() run on the caller's channel hears the caller)."""
    text = str(stream)
    number = LEG_MARKS.get(text[-1])
    if number is None:
        return CUSTOMER_LEG, text
    return number, text[:-1] + "0"


class AudioSocketLeg:
    """One AudioSocket connection, after its UUID: a `LegConnection`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.failed: str | None = None  # an Asterisk error other than a hangup: the leg is lost when it ends
        self.gone = False

    async def read(self) -> LegItem:
        while True:
            try:
                message = await read_message(self.reader)
            except TruncatedMessage as short:
                self.gone = True
                return LegLost("truncated_frame", f"{short}; what was heard is kept")
            except (ConnectionError, OSError) as err:
                self.gone = True
                return LegLost("connection_lost", f"the AudioSocket connection was lost ({err.__class__.__name__})")
            if message is None or message.kind == KIND_HANGUP:
                if message is None:
                    self.gone = True
                return LegLost("asterisk_error", self.failed) if self.failed else LegHangup()
            if message.kind in AUDIO_RATES:
                rate = AUDIO_RATES[message.kind]
                if rate > MAX_TAKEN_RATE:
                    return LegFault("unsupported_format", f"audio type 0x{message.kind:02x} ({rate} Hz) is above the "
                                                          f"{MAX_TAKEN_RATE} Hz callwatch takes: dropped")
                if not message.payload:
                    return LegFault("bad_audio_frame", f"audio type 0x{message.kind:02x} with no payload: dropped")
                return LegMedia(message.payload, LegAudio("pcm_s16le", rate))
            if message.kind == KIND_DTMF:
                if len(message.payload) != 1:
                    return LegFault("invalid_message", f"DTMF message of {len(message.payload)} bytes; it holds one digit")
                return LegDigit(message.payload.decode("ascii", "replace"))
            if message.kind == KIND_ERROR:
                text = describe_error(message.payload)
                if not message.payload or message.payload[0] != ERROR_HANGUP:
                    self.failed = f"Asterisk reported {text}"
                return LegFault("asterisk_error", f"Asterisk reported {text}")
            if message.kind == KIND_UUID:
                return LegFault("invalid_message", "a second UUID message: the UUID comes once, first; ignored")
            return LegFault("unknown_type", f"unknown AudioSocket message type 0x{message.kind:02x} "
                                            f"({len(message.payload)} bytes): skipped")

    async def hang_up(self, code: CloseCode, reason: str) -> None:
        await send_hangup(self.writer)
        self.gone = True


async def send_hangup(writer: asyncio.StreamWriter) -> None:
    """AudioSocket's way to end a call from this side: the hangup message, then the connection closed."""
    if writer.is_closing():
        return
    try:
        writer.write(HANGUP_MESSAGE)
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()
    except (ConnectionError, OSError, TimeoutError):
        pass
    writer.close()


# ---------------------------------------------------------------- who a connection is


def allowed(peer: str, allow: list[str]) -> bool:
    if not allow:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allow)


def principal_for(settings: Settings, ring: KeyRing, peer: str) -> Principal | str:
    """Whom an AudioSocket connection from `peer` is admitted as, or why it is not."""
    if not ring.uses_keys_file(settings) and "integrator" not in ring.configured_roles(settings):
        # No integrator keys at all: like every other surface, this machine only.
        return LOCAL if peer in _LOOPBACK else "no integrator keys are configured: AudioSocket answers this machine only"
    name = settings.audiosocket_integrator
    if not name:
        return "CALLWATCH_AUDIOSOCKET_INTEGRATOR names no integrator: AudioSocket calls cannot be admitted"
    now = datetime.now(timezone.utc)
    for entries in ring.entries(settings).values():
        for entry in entries:
            if entry.principal.role == "integrator" and entry.principal.name == name and not entry.expired(now):
                return entry.principal
    return f"integrator {name!r} (CALLWATCH_AUDIOSOCKET_INTEGRATOR) has no current key"


# ---------------------------------------------------------------- the listener


class AudioSocketServer:
    """Accepts AudioSocket connections and hands each leg to its call."""

    def __init__(self, state: AppState):
        self.runtime = state.runtime
        self.key_ring = state.key_ring
        self.connections = state.ingest_connections
        self.calls = state.asterisk_calls

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("unknown",))[0]
        try:
            await self._serve(reader, writer, peer)
        except Exception:
            log.exception("AudioSocket connection from %s failed", peer)
        finally:
            writer.close()

    def _refuse_count(self, reason: str) -> None:
        self.runtime.metrics.calls_refused.labels(reason, CONNECTOR).inc()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        settings = self.runtime.settings
        if not allowed(peer, settings.audiosocket_allow):
            self._refuse_count("unauthorized")
            log.warning("AudioSocket connection from %s refused: not in CALLWATCH_AUDIOSOCKET_ALLOW", peer)
            await send_hangup(writer)
            return
        principal = principal_for(settings, self.key_ring, peer)
        if isinstance(principal, str):
            self._refuse_count("unauthorized")
            log.warning("AudioSocket connection from %s refused: %s", peer, principal)
            await send_hangup(writer)
            return
        stream = await self._first_uuid(reader, writer, peer)
        if stream is None:
            return
        number, call_id = leg_of(stream)
        identity = CallIdentity(call_id=call_id, agent_id=settings.asterisk_agent_id)
        await self.calls.take_leg(number, AudioSocketLeg(reader, writer), identity, principal, self.runtime,
                                  self.connections)

    async def _first_uuid(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          peer: str) -> uuid.UUID | None:
        """The connection's UUID, which the protocol sends first; None (and the connection hung up) without one."""
        timeout = self.runtime.settings.ingest_start_timeout_s
        why: str
        try:
            async with asyncio.timeout(timeout):
                first = await read_message(reader)
        except TimeoutError:
            first, why = None, f"start_timeout: no UUID message within {timeout:g} s of connecting"
        except TruncatedMessage as short:
            first, why = None, f"truncated_frame: {short}"
        except (ConnectionError, OSError):
            return None
        else:
            why = "no_uuid: the connection closed before its UUID message"
        if first is not None:
            if first.kind == KIND_UUID and len(first.payload) == 16:
                return uuid.UUID(bytes=first.payload)
            if first.kind == KIND_UUID:
                why = f"bad_uuid: the UUID message holds {len(first.payload)} bytes, not 16"
            elif first.kind in AUDIO_RATES:
                why = "audio_before_uuid: audio came before the UUID message, which comes first"
            else:
                why = f"no_uuid: the first message is type 0x{first.kind:02x}; the UUID message comes first"
        self._refuse_count(why.split(":")[0])
        log.warning("AudioSocket connection from %s refused: %s", peer, why)
        await send_hangup(writer)
        return None


@asynccontextmanager
async def audiosocket_listener(state: AppState) -> AsyncIterator[Any]:
    """The AudioSocket listener for the app's lifetime, when CALLWATCH_AUDIOSOCKET_PORT sets one. Calls still in
    progress at shutdown are ended by the app's own shutdown (service/app.py), as every live call is."""
    settings = state.runtime.settings
    if not settings.audiosocket_port:
        yield None
        return
    server = await asyncio.start_server(AudioSocketServer(state).handle, settings.audiosocket_host,
                                        settings.audiosocket_port)
    log.info("AudioSocket listening on %s:%d", settings.audiosocket_host, settings.audiosocket_port)
    try:
        yield None
    finally:
        server.close()
