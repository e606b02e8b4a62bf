"""A stored (or just audited) call as the rules engine's timeline, for reports and re-audits.

Mono recordings have one channel for both voices: the pipeline marks their speaker `unknown`. The rules
need a side, so a mono call's utterances are given a guessed side (turns alternate, the agent speaks first
on an inbound call) and the report says the attribution is guessed; nothing stored is changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from rules.timeline import CallEvent, CallTimeline, EmotionSample, Utterance
from service.persistence.call_store import CallStore

SIDES = ("agent", "customer")
# Two utterances of one mono channel closer than this are taken as the same person going on.
SAME_SPEAKER_GAP_S = 0.3
# A call stored without a start time: a weekday morning inside business hours, so the outbound-hours rule
# (which needs a real time) stays silent instead of judging an invented one. Audits always store a time.
UNKNOWN_START = datetime(2000, 1, 3, 10, 0)


def guess_mono_sides(utterances: list[dict[str, Any]], direction: str) -> list[str]:
    """A side for each utterance of a mono call (in time order): alternate at every pause longer than
    SAME_SPEAKER_GAP_S, starting with the agent on inbound calls (they answer) and the customer on
    outbound ones. A guess, and labelled as one wherever it is shown."""
    side = 0 if direction != "outbound" else 1
    out: list[str] = []
    last_end: float | None = None
    for u in utterances:
        if last_end is not None and u["start"] - last_end > SAME_SPEAKER_GAP_S:
            side = 1 - side
        out.append(SIDES[side])
        last_end = u["end"]
    return out


def parse_started_at(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return fallback


def build_timeline(
    *,
    call_id: str,
    direction: str,
    started_at: datetime,
    agent_id: str | None,
    caller_number: str | None,
    events: Iterable[dict[str, Any]],
    utterances: list[dict[str, Any]],
) -> tuple[CallTimeline, bool]:
    """Timeline from stored rows (events: event/t/by/target; utterances: speaker/start/end/text/emotion).
    Returns it with whether the speakers were guessed."""
    utterances = sorted(utterances, key=lambda u: (u["start"], u["end"]))
    mono = any(u["speaker"] not in SIDES for u in utterances)
    sides = guess_mono_sides(utterances, direction) if mono else [u["speaker"] for u in utterances]
    evs = [CallEvent(type=e["event"], t=max(0.0, float(e["t"])), by=e.get("by") if e["event"] == "hangup" else None,
                     target=e.get("target")) for e in events]
    # The engine wants events in time order with the hangup last.
    evs = sorted((e for e in evs if e.type != "hangup"), key=lambda e: e.t) + [e for e in evs if e.type == "hangup"][:1]
    if len(evs) > 1 and evs[-1].type == "hangup" and evs[-1].t < evs[-2].t:
        evs[-1] = evs[-1].model_copy(update={"t": evs[-2].t})
    emotion = [
        EmotionSample(t=float(u["emotion"]["t"]), valence=float(u["emotion"]["valence"]),
                      arousal=float(u["emotion"].get("arousal", 0.5)), label=u["emotion"].get("label"))
        for u, side in zip(utterances, sides)
        if u.get("emotion") and side == "customer"
    ]
    timeline = CallTimeline(
        call_id=call_id,
        direction=direction,
        started_at=started_at,
        agent_id=agent_id,
        caller_number=caller_number,
        events=evs,
        utterances=[Utterance(speaker=side, start=u["start"], end=max(u["end"], u["start"]), text=u["text"],
                              level_db=u.get("level_db"))
                     for u, side in zip(utterances, sides)],
        emotion=sorted(emotion, key=lambda s: s.t),
    )
    return timeline, mono


def timeline_from_store(store: CallStore, call_id: str) -> tuple[CallTimeline, bool]:
    record = store.get_call(call_id)
    if record is None:
        raise KeyError(call_id)
    return build_timeline(
        call_id=call_id,
        direction=record.direction,
        started_at=parse_started_at(record.started_at, UNKNOWN_START),
        agent_id=record.agent_id,
        caller_number=record.caller_number,
        events=store.list_events(call_id),
        utterances=store.list_utterances(call_id),
    )
