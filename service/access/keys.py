"""Principals and their keys, as the key ring holds them: only SHA-256 digests of the keys, never the keys.

Keys are random tokens of 256 bits, so a fast hash is enough: nobody can guess a key from its digest or try
keys against it faster than against the service itself. (Slow password hashes exist for human-chosen
passwords, which are guessable; these are not.)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

Role = Literal["integrator", "agent", "supervisor", "qa"]
ROLES: tuple[Role, ...] = ("integrator", "agent", "supervisor", "qa")
DIGEST_PREFIX = "sha256:"
KEY_PREFIX = "cw_"


@dataclass(frozen=True)
class Principal:
    """Someone with keys. `tenant` None means deployment-wide (every tenant's calls); an integrator always
    has one (its own name unless set). The role `local` stands for a loopback client where a surface has no
    keys configured at all.

    `team` is an agent's team; `teams` the teams a supervisor leads (empty: every agent its tenant lets it
    see, as before teams). Both come from the keys file only (docs/security.md, Teams)."""

    role: str
    name: str
    tenant: str | None = None
    team: str | None = None
    teams: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f"{self.role} {self.name!r}" + (f" of tenant {self.tenant!r}" if self.tenant else "")
                + (f" leading {', '.join(map(repr, self.teams))}" if self.teams else ""))


LOCAL = Principal(role="local", name="this machine")


@dataclass(frozen=True)
class KeyEntry:
    principal: Principal
    key_id: str
    digest: str  # lowercase hex SHA-256 of the key
    expires_at: datetime | None
    source: str  # the keys file, or "settings"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(digest: str) -> str:
    """A short name for a key in logs and listings: the start of its digest, which says nothing of the key."""
    return digest[:12]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def stored_digest(value: str) -> str:
    """A settings value is a key (development) or already `sha256:<hex>`; either way, its digest."""
    if value.startswith(DIGEST_PREFIX):
        return value[len(DIGEST_PREFIX):].strip().lower()
    return digest_of(value)


def utc(moment: datetime) -> datetime:
    """Naive times in the keys file are UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
