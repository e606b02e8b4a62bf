"""What a QA workflow step can fail with, whatever stores it; the API answers each with its status."""

from __future__ import annotations


class NotFound(LookupError):
    """No such review, finding or dispute (404: the same as one the caller may not see)."""


class Conflict(RuntimeError):
    """The step does not fit the state the review or dispute is in (409), e.g. deciding on a submitted review."""
