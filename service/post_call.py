"""After a live call ends: the second pass over its legs, then its stored report judged again on that text.

The agent's screen got the live pass; what is stored for the report, search and QA is the second pass's
text (pipelines/second_pass.py), with the live text kept beside it where they differ. The prompts the agent
was shown stay as they were raised. The pass runs as the recogniser's background work, after every live
final, so it never slows a call in progress; a call whose pass did not run (the process stopped first)
keeps its live transcript and report, which say so (`transcript: "live"`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipelines.audio import speech_level_db
from pipelines.call_session import CallSession
from rules.engine import RuleBook, audit_timeline
from service.audit.running.timeline import timeline_from_store
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

async def hear_call_again(runtime: Any, session: CallSession) -> dict[str, Any] | None:
    """Run the second pass over `session` (ended), store its text and the report judged on it; returns the
    report (None when the call had no speech to hear)."""
    speech = session.speech()
    if not any(speech):
        return None
    heard = await runtime.second_pass.call(speech)
    rows = [{"utterance_id": h.piece.utterance_id, "speaker": h.piece.speaker, "start": round(h.piece.start, 3),
             "end": round(h.piece.end, 3), "text": h.text} for h in heard]
    pieces = {h.piece.utterance_id: h.piece for h in heard}

    def level_db(utterance_id: str) -> float | None:
        return speech_level_db(pieces[utterance_id].audio)

    store: CallStore = runtime.store
    await runtime.store_async(store.apply_second_pass, session.call_id, rows, level_db)
    return await asyncio.to_thread(rejudge, store, session.call_id, runtime.rule_book)


def rejudge(store: CallStore, call_id: str, book: RuleBook) -> dict[str, Any]:
    """The call's stored timeline judged again; the report and, if the call list has it, its row updated."""
    timeline, _ = timeline_from_store(store, call_id)
    report = audit_timeline(timeline, book).model_copy(update={"transcript": "second_pass"}).model_dump(mode="json")
    CallList(store.db).replace_report(call_id, report, store.list_utterances(call_id), rules_name=None,
                                      index_unlisted=False)
    return report
