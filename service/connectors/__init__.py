"""Phone platforms' own streaming protocols, each translated onto the one live call (service/call_link.py).

Each module is one platform's `CallLink` and its endpoint; docs/connectors.md documents them for the people
who configure the platform side.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.connectors import asterisk

router = APIRouter()
router.include_router(asterisk.router)
