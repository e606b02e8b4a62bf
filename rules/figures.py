"""Call figures for QA: talk ratio, longest dead air, agent pace, ring count, recovery."""

from __future__ import annotations

from rules.findings import CallFigures, DeadAirFigure, RecoveryFigure
from rules.opening import count_rings
from rules.state import CallState


def longest_dead_air(call: CallState, end: float) -> DeadAirFigure:
    """Longest stretch with nobody speaking while the line was live (answered, not on hold)."""
    if call.answered_at is None:
        return DeadAirFigure(seconds=0.0)
    busy = sorted([(u.start, u.end) for u in call.utterances] + list(call.holds))
    if call.hold_since is not None:
        busy.append((call.hold_since, end))
    best, best_t = 0.0, None
    cursor = call.answered_at
    for start, stop in sorted(busy):
        if start > cursor and start - cursor > best:
            best, best_t = start - cursor, cursor
        cursor = max(cursor, stop)
    if end > cursor and end - cursor > best:
        best, best_t = end - cursor, cursor
    return DeadAirFigure(seconds=round(best, 2), t=None if best_t is None else round(best_t, 2))


def compute_figures(call: CallState, recovery: RecoveryFigure, ring_cadence_s: float) -> CallFigures:
    end = call.hangup.t if call.hangup is not None else call.now
    agent_s = sum(u.duration for u in call.agent)
    customer_s = sum(u.duration for u in call.customer)
    answered = next((e for e in call.events if e.type == "answered"), None)
    rings = count_rings(call.ringing, answered, ring_cadence_s) if answered is not None else None
    return CallFigures(
        duration_s=round(end, 2),
        ring_count=rings,
        agent_talk_s=round(agent_s, 2),
        customer_talk_s=round(customer_s, 2),
        talk_ratio=round(agent_s / (agent_s + customer_s), 3) if agent_s + customer_s > 0 else None,
        longest_dead_air=longest_dead_air(call, end),
        agent_speech_rate=round(sum(len(u.norm) for u in call.agent) / agent_s, 2) if agent_s > 0 else None,
        complaint_recovered=recovery,
    )
