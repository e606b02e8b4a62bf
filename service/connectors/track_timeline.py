"""Where each chunk of a track belongs on the call's clock, for platforms that stamp per-track chunks with a
time since the stream began (Twilio's `media.timestamp`) instead of sending every track's silence.

The call's clock is audio heard (service/call_link.py): a leg that skipped a second would run a second
early from then on, and its speech would be stamped, judged and shown against the other leg a second off.
So a chunk stamped later than the audio its track has delivered is preceded by that much silence, and a
chunk stamped wholly within audio already delivered (sent twice, or out of order) is dropped. A chunk that
overlaps what was delivered only in part is kept whole: real speech is never cut to fit a stamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrackTimeline:
    """Samples delivered per track; `tolerance` samples of jitter in the stamps are not treated as a gap."""

    tolerance: int
    _delivered: dict[str, int] = field(default_factory=dict)

    def delivered(self, track: str) -> int:
        return self._delivered.get(track, 0)

    def place(self, track: str, start: int, length: int) -> int | None:
        """A chunk of `length` samples of `track` stamped at sample `start`: the samples of silence to
        deliver before it, or None when all of it was delivered already (drop it)."""
        delivered = self.delivered(track)
        if start + length <= delivered:
            return None
        gap = start - delivered if start - delivered >= self.tolerance else 0
        self._delivered[track] = delivered + gap + length
        return gap
