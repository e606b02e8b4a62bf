"""The week a call belongs to, for sampling plans and trends: the ISO week (Monday to Sunday) of the day the
call started, as the call list has that start (`audit_calls.started_at`: the phone system's local start time,
else when callwatch received the call, in UTC). A week is named by its Monday, `2026-11-23`.

The call list keeps starts as ISO 8601 text, sortable as text, and filters its dates on that text; weeks do
the same, so a call is in the week its own clock says, whatever zone the server runs in.
"""

from __future__ import annotations

from datetime import date, timedelta


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_of_start(started_at: str | None) -> date | None:
    """The Monday of the week of a start time as the call list stores it; None where it has none."""
    if not started_at or len(started_at) < 10:
        return None
    try:
        return monday_of(date.fromisoformat(started_at[:10]))
    except ValueError:
        return None


def week_bounds(monday: date) -> tuple[str, str]:
    """The week as bounds on the start text: from its Monday (inclusive) to the next Monday (exclusive)."""
    return monday.isoformat(), (monday + timedelta(days=7)).isoformat()


def last_whole_week(today: date) -> date:
    """The Monday of the week before `today`'s: what a plan samples when no week is named (run on a Monday
    morning, it samples the week just ended)."""
    return monday_of(today) - timedelta(days=7)
