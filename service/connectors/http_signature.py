"""The HTTP message signature Genesys Cloud puts on an AudioHook websocket upgrade, checked with the
integration's client secret.

AudioHook signs the request as draft-ietf-httpbis-message-signatures (the draft Genesys follows, -11):
`Signature-Input: sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id"
"audiohook-correlation-id" "x-api-key");keyid="<API key>";nonce="…";alg="hmac-sha256";created=…;expires=…`
and `Signature: sig1=:<base64 HMAC-SHA256>:`, the HMAC keyed with the base64-decoded client secret over the
signature base: one `"name": value` line per covered component, then `"@signature-params": <the inner list
as serialised>`. Only the subset of structured fields (RFC 8941) those two headers use is read here.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from hashlib import sha256
from typing import Mapping

# What an AudioHook signature must cover: the request and every AudioHook header.
REQUIRED_COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
                       "audiohook-correlation-id", "x-api-key")
MAX_AGE_S = 10  # a signature is made for one connection attempt, moments before it
CLOCK_SKEW_S = 3
MIN_NONCE_CHARS = 22  # Genesys's nonces are 18 random bytes, base64 (24 characters)


class SignatureError(ValueError):
    """Why a request's signature is not accepted (safe to log: names no secret)."""


Bare = str | int | bool | bytes


@dataclass(frozen=True)
class Token:
    value: str


@dataclass(frozen=True)
class InnerList:
    items: list[str]
    params: list[tuple[str, Bare | Token]]


class _Reader:
    """RFC 8941 parsing for the pieces the signature headers use: dictionaries whose members are inner
    lists of strings or byte sequences, each with parameters."""

    _KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
    _TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*")
    _INTEGER = re.compile(r"-?\d{1,15}")

    def __init__(self, text: str):
        self.text, self.at = text.strip(), 0

    def fail(self, what: str) -> SignatureError:
        return SignatureError(f"unreadable structured field at {self.at}: {what}")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def key(self) -> str:
        match = self._KEY.match(self.text, self.at)
        if match is None:
            raise self.fail("expected a key")
        self.at = match.end()
        return match.group()

    def bare(self) -> Bare | Token:
        char = self.peek()
        if char == '"':
            out: list[str] = []
            self.at += 1
            while True:
                char = self.peek()
                if char == "":
                    raise self.fail("unterminated string")
                self.at += 1
                if char == '"':
                    return "".join(out)
                if char == "\\":
                    char = self.peek()
                    if char not in ('"', "\\"):
                        raise self.fail("bad escape in string")
                    self.at += 1
                out.append(char)
        if char == ":":
            end = self.text.find(":", self.at + 1)
            if end < 0:
                raise self.fail("unterminated byte sequence")
            raw, self.at = self.text[self.at + 1:end], end + 1
            try:
                return base64.b64decode(raw, validate=True)
            except ValueError:
                raise self.fail("byte sequence is not base64") from None
        if char == "?":
            value, self.at = self.text[self.at + 1:self.at + 2], self.at + 2
            if value not in ("0", "1"):
                raise self.fail("bad boolean")
            return value == "1"
        if match := self._INTEGER.match(self.text, self.at):
            self.at = match.end()
            return int(match.group())
        if match := self._TOKEN.match(self.text, self.at):
            self.at = match.end()
            return Token(match.group())
        raise self.fail("expected a value")

    def params(self) -> list[tuple[str, Bare | Token]]:
        out: list[tuple[str, Bare | Token]] = []
        while self.peek() == ";":
            self.at += 1
            self.spaces()
            name = self.key()
            value: Bare | Token = True
            if self.peek() == "=":
                self.at += 1
                value = self.bare()
            out.append((name, value))
        return out

    def spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.at += 1

    def member(self) -> InnerList | Bare | Token:
        if self.peek() != "(":
            value = self.bare()
            self.params()  # an item's parameters: none of the signature headers' items need them
            return value
        self.at += 1
        items: list[str] = []
        while True:
            self.spaces()
            if self.peek() == ")":
                self.at += 1
                return InnerList(items, self.params())
            item = self.bare()
            if not isinstance(item, str) or isinstance(item, Token):
                raise self.fail("covered components must be strings")
            if self.peek() == ";":
                raise self.fail("component parameters are not supported")
            items.append(item)
            if self.peek() not in (" ", ")"):
                raise self.fail("expected a space or ')' in an inner list")

    def dictionary(self) -> dict[str, InnerList | Bare | Token]:
        out: dict[str, InnerList | Bare | Token] = {}
        while self.at < len(self.text):
            name = self.key()
            if self.peek() != "=":
                raise self.fail("expected '='")
            self.at += 1
            out[name] = self.member()
            self.spaces()
            if self.at >= len(self.text):
                break
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.at += 1
            self.spaces()
        return out


def _serialise_bare(value: Bare | Token) -> str:
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialise_inner_list(inner: InnerList) -> str:
    """The inner list as RFC 8941 writes it: what the `@signature-params` line of the signature base holds."""
    items = " ".join(_serialise_bare(item) for item in inner.items)
    params = "".join(f";{name}" if value is True else f";{name}={_serialise_bare(value)}" for name, value in inner.params)
    return f"({items}){params}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else re.sub(r"[ \t]*\r\n[ \t]+", " ", value.strip())


def verify(headers: Mapping[str, str], *, request_target: str, api_key: str, client_secret: bytes,
           now: float) -> None:
    """Accept the request's signature or raise SignatureError saying why. `headers` are lower-case names;
    `request_target` is the path and query as the request line sent them."""
    raw_input, raw_signature = headers.get("signature-input"), headers.get("signature")
    if not raw_input or not raw_signature:
        raise SignatureError("the request is not signed (no Signature-Input / Signature header)")
    inputs, signatures = _Reader(raw_input).dictionary(), _Reader(raw_signature).dictionary()
    if not inputs:
        raise SignatureError("empty Signature-Input")
    label, inner = next(iter(inputs.items()))
    signature = signatures.get(label)
    if not isinstance(inner, InnerList):
        raise SignatureError(f"Signature-Input {label!r} is not an inner list")
    if not isinstance(signature, bytes):
        raise SignatureError(f"no signature {label!r} as a byte sequence")
    params = dict(inner.params)
    if params.get("alg", "hmac-sha256") != "hmac-sha256":
        raise SignatureError(f"signature algorithm {params.get('alg')!r} is not hmac-sha256")
    if params.get("keyid") != api_key:
        raise SignatureError("the signature's keyid is not the X-API-KEY")
    nonce = params.get("nonce")
    if not isinstance(nonce, str) or len(nonce) < MIN_NONCE_CHARS:
        raise SignatureError("the signature has no nonce, or one too short")
    created, expires = params.get("created"), params.get("expires")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("the signature has no 'created' time")
    if created > now + CLOCK_SKEW_S:
        raise SignatureError("the signature was created in the future")
    if created + MAX_AGE_S < now - CLOCK_SKEW_S:
        raise SignatureError(f"the signature is older than {MAX_AGE_S} s")
    if isinstance(expires, int) and not isinstance(expires, bool) and expires < now - CLOCK_SKEW_S:
        raise SignatureError("the signature has expired")
    missing = set(REQUIRED_COMPONENTS) - set(inner.items)
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join(sorted(missing))}")
    if len(set(inner.items)) != len(inner.items):
        raise SignatureError("a component is covered twice")
    lines = []
    for name in inner.items:
        if name == "@request-target":
            value: str | None = request_target
        elif name == "@authority":
            value = _header(headers, "host")
        elif name.startswith("@"):
            raise SignatureError(f"derived component {name!r} is not supported")
        else:
            value = _header(headers, name)
        if value is None:
            raise SignatureError(f"covered header {name!r} is missing")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {serialise_inner_list(inner)}')
    expected = hmac.new(client_secret, "\n".join(lines).encode(), sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureError("the signature does not match (wrong client secret, or a header changed)")
