"""Phone platforms' own streaming protocols, each translated onto the one live call (service/call_link.py).

Each module is one platform's `CallLink` and its endpoint; docs/connectors.md documents them for the people
who configure the platform side.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.connectors import asterisk, audiohook, freeswitch, twilio

router = APIRouter()
router.include_router(asterisk.router)
router.include_router(audiohook.router)
router.include_router(freeswitch.router)
router.include_router(twilio.router)
