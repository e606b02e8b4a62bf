"""Store one audited recording in a single transaction: the call, its events, utterances with emotion,
prompts, the report, and its row in the call list. Either all of it is there or none, so an interrupted
batch loses only the file in progress and a re-run knows exactly what is done.

Each of these rides out a brief database outage under the store's retry (CALLWATCH_DATABASE_RETRY_S), so a
recording whose audit ends while the database restarts is stored late rather than marked failed: each is
safe to run twice (a read, a delete, a delete-then-insert).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from service.audit.index import index_call
from service.persistence.call_store import CallStore
from service.persistence.tables import audit_call_rules, audit_calls, call_events, call_prompts, calls, utterances


def is_done(store: CallStore, call_id: str) -> bool:
    return store.with_retry(_is_done, store.engine, call_id)


def _is_done(engine: Engine, call_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(audit_calls.c.call_id).where(audit_calls.c.call_id == call_id)).first() is not None


def _call_tables() -> list[Any]:
    return [call_prompts, utterances, call_events]


def purge_call(store: CallStore, call_id: str) -> None:
    """Remove a call that was not completely stored (a run killed outside the transaction, or a live call
    that reused the id), so the audit can write it afresh."""
    store.with_retry(_purge_call, store.engine, call_id)


def _purge_call(engine: Engine, call_id: str) -> None:
    with engine.begin() as conn:
        for table in _call_tables():
            conn.execute(delete(table).where(table.c.call_id == call_id))
        conn.execute(delete(audit_call_rules).where(audit_call_rules.c.call_id == call_id))
        conn.execute(delete(calls).where(calls.c.call_id == call_id))


def store_audit(
    store: CallStore,
    *,
    call_id: str,
    agent_id: str,
    direction: str,
    caller_number: str | None,
    started_at: str | None,
    audio_format: dict[str, Any],
    duration: float,
    events: list[dict[str, Any]],
    utts: list[dict[str, Any]],
    prompts: list[dict[str, Any]],
    report: dict[str, Any],
    file_name: str,
    source_path: str,
    speaker_attribution: str,
    audit: dict[str, Any],
) -> None:
    now = datetime.now(timezone.utc)

    def write() -> None:
        # Delete-then-insert: a retry after a commit that lost its answer writes the same rows again.
        with store.engine.begin() as conn:
            for table in _call_tables():
                conn.execute(delete(table).where(table.c.call_id == call_id))
            conn.execute(delete(calls).where(calls.c.call_id == call_id))
            conn.execute(insert(calls).values(
                call_id=call_id, agent_id=agent_id, direction=direction, caller_number=caller_number,
                started_at=started_at, received_at=now, ended_at=now, status="completed",
                audio_format=json.dumps(audio_format), duration=duration, score=report.get("score"),
                report=json.dumps(report, ensure_ascii=False), tenant=audit.get("tenant"),
            ))
            if events:
                conn.execute(insert(call_events), [{"call_id": call_id, **e} for e in events])
            if utts:
                conn.execute(insert(utterances), [
                    {"call_id": call_id, "utterance_id": u["utterance_id"], "speaker": u["speaker"],
                     "start": u["start"], "end": u["end"], "text": u["text"], "level_db": u.get("level_db"),
                     "emotion": json.dumps(u["emotion"], ensure_ascii=False) if u.get("emotion") else None,
                     "text_pass": "second"}
                    for u in utts
                ])
            if prompts:
                conn.execute(insert(call_prompts), [{"call_id": call_id, **p} for p in prompts])
            index_call(
                conn, call_id=call_id, agent_id=agent_id, direction=direction, started_at=started_at,
                duration=duration, report=report, utts=utts, file_name=file_name, source_path=source_path,
                speaker_attribution=speaker_attribution, audit=audit,
            )

    store.with_retry(write)
