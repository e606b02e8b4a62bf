"""After a live call ends: the second pass over its legs, then its stored report judged again on that text.

The agent's screen got the live pass; what is stored for the report, search and QA is the second pass's
text (pipelines/second_pass.py), with the live text kept beside it where they differ. The prompts the agent
was shown stay as they were raised. The pass runs as the recogniser's background work, after every live
final, so it never slows a call in progress; a call whose pass did not run (the process stopped first)
keeps its live transcript and report, which say so (`transcript: "live"`).

The pass waits for a recogniser that has time, so under sustained load ended calls queue for it, each holding
its speech. `SecondPassBacklog` bounds what they hold (CALLWATCH_SECOND_PASS_BACKLOG_S seconds of speech): a
call that would go over it keeps its live transcript, as a call whose pass never ran does, and is counted
(`callwatch_second_pass_skipped_total`). Without the bound a server taking calls faster than its spare
recogniser time grew by the speech of every call (a soak on a contended machine: 9 MiB a minute).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Sequence

from pipelines.audio import speech_level_db
from pipelines.second_pass import SpokenPiece
from rules.engine import RuleBook, audit_timeline
from service.audit.running.timeline import timeline_from_store
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

@dataclass
class SecondPassBacklog:
    """Ended calls whose second pass has not finished, and the seconds of speech each holds."""

    limit_s: float
    held: dict["asyncio.Task[Any]", float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.held)

    @property
    def speech_s(self) -> float:
        # Summed afresh rather than kept as a running total, which float rounding leaves a hair off zero.
        return sum(self.held.values())

    def admits(self, seconds: float) -> bool:
        return self.speech_s + seconds <= self.limit_s

    def hold(self, task: "asyncio.Task[Any]", seconds: float) -> None:
        self.held[task] = seconds
        task.add_done_callback(lambda done: self.held.pop(done, None))


def speech_seconds(speech: Sequence[Sequence[SpokenPiece]]) -> float:
    return sum(piece.seconds for leg in speech for piece in leg)


async def hear_call_again(runtime: Any, call_id: str, speech: list[list[SpokenPiece]]) -> dict[str, Any] | None:
    """Run the second pass over an ended call's `speech` (its legs' utterances), store its text and the report
    judged on it; returns the report (None when the call had no speech to hear)."""
    if not any(speech):
        return None
    heard = await runtime.second_pass.call(speech)
    rows = [{"utterance_id": h.piece.utterance_id, "speaker": h.piece.speaker, "start": round(h.piece.start, 3),
             "end": round(h.piece.end, 3), "text": h.text} for h in heard]
    pieces = {h.piece.utterance_id: h.piece for h in heard}

    def level_db(utterance_id: str) -> float | None:
        return speech_level_db(pieces[utterance_id].audio)

    store: CallStore = runtime.store
    await runtime.store_async(store.apply_second_pass, call_id, rows, level_db)
    return await asyncio.to_thread(rejudge, store, call_id, runtime.rule_book)


def rejudge(store: CallStore, call_id: str, book: RuleBook) -> dict[str, Any]:
    """The call's stored timeline judged again; the report and, if the call list has it, its row updated."""
    timeline, _ = timeline_from_store(store, call_id)
    report = audit_timeline(timeline, book).model_copy(update={"transcript": "second_pass"}).model_dump(mode="json")
    CallList(store.db).replace_report(call_id, report, store.list_utterances(call_id), rules_name=None,
                                      index_unlisted=False)
    return report
