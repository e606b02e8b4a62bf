"""Who may be named a reviewer: the keys of role qa or supervisor, from the key ring as it is now (the keys
file and the settings' keys), known by their name within their tenant. A plan or a calibration names its
reviewers by the keys' names, and the work queue finds a reviewer's work by the name of the key asking."""

from __future__ import annotations

from typing import Any

from service.access.keys import Principal
from service.access.ring import KeyRing
from service.qa.access import REVIEWER_ROLES


def reviewer_keys(ring: KeyRing, settings: Any) -> dict[tuple[str, str | None], Principal]:
    """(name, tenant) → the reviewer principal with that name in that tenant. Where a QA user and a supervisor
    share a name and tenant, the QA user's: reviewing is their work."""
    found: dict[tuple[str, str | None], Principal] = {}
    for entries in ring.entries(settings).values():
        for entry in entries:
            p = entry.principal
            if p.role in REVIEWER_ROLES and (found.get((p.name, p.tenant)) is None or p.role == "qa"):
                found[(p.name, p.tenant)] = p
    return found
