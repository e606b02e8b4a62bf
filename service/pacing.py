"""Holding a live call to the pace it is spoken at.

A live socket carries a call as it happens, so its audio arrives at about real time; a platform that
buffered through a network hiccup may send a few seconds at once. A client that sends much faster than that
(a recording pushed as a "live" call, a flood) would hand the recogniser more work than its share. So audio
up to `max_lead_s` ahead of the wall clock (counted from the first audio) is taken as it comes, and past it
the ingest holds the call's frames back until the wall clock catches up (service/ingest.py; a client that
keeps sending past a second lead's worth of held audio is closed with 4429). Audits of recordings do not
come this way; they have their own queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class RealTimePacer:
    max_lead_s: float
    clock: Callable[[], float] = time.monotonic
    _began: float | None = None

    def delay(self, heard_s: float) -> float:
        """Seconds to wait once `heard_s` seconds of the call's audio have arrived."""
        now = self.clock()
        if self._began is None:
            self._began = now - heard_s  # the first frame is received, not ahead
        return max(0.0, heard_s - (now - self._began) - self.max_lead_s)
