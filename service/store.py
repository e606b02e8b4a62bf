"""Calls, their events and utterances, written as they happen.

SQLite through SQLAlchemy by default; any SQLAlchemy URL (PostgreSQL) by setting. Only portable SQL: no
SQLite pragmas in queries, JSON kept as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column("call_id", String(128), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("direction", String(16), nullable=False),
    Column("caller_number", String(32)),
    Column("started_at", String(40), doc="local start time as the phone system gave it (ISO 8601)"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, doc="live | completed | dropped | interrupted"),
    Column("audio_format", Text, nullable=False),
    Column("duration", Float),
    Column("score", Float),
    Column("report", Text, doc="post-call report JSON (findings, score, figures)"),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("event", String(32), nullable=False),
    Column("t", Float, nullable=False),
    Column("by", String(16)),
    Column("target", String(128)),
)

utterances = Table(
    "utterances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("utterance_id", String(64), nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("text", Text, nullable=False),
    Column("level_db", Float, doc="speech level, dBFS (the speech.volume rule compares the agent's)"),
    Column("emotion", Text, doc="emotion result JSON for customer utterances"),
    UniqueConstraint("call_id", "utterance_id"),
)


call_prompts = Table(
    "call_prompts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("calls.call_id"), nullable=False, index=True),
    Column("prompt_id", String(96), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("t", Float, nullable=False),
    Column("text", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("dismissed_at", DateTime(timezone=True), doc="when the agent dismissed it; QA reads whether prompts were heeded"),
    Column("dismissed_by", String(128)),
    UniqueConstraint("call_id", "prompt_id"),
)


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    agent_id: str
    direction: str
    caller_number: str | None
    started_at: str | None
    status: str
    audio_format: dict[str, Any]
    duration: float | None
    score: float | None = None
    report: dict[str, Any] | None = None


class CallStore:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_for_concurrent_writers)
        metadata.create_all(self.engine)

    def create_call(
        self,
        call_id: str,
        agent_id: str,
        direction: str,
        caller_number: str | None,
        started_at: str | None,
        audio_format: dict[str, Any],
    ) -> bool:
        """Insert a new live call; False if the id is already taken (live or stored)."""
        with self.engine.begin() as conn:
            if conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id)).first():
                return False
            conn.execute(
                insert(calls).values(
                    call_id=call_id,
                    agent_id=agent_id,
                    direction=direction,
                    caller_number=caller_number,
                    started_at=started_at,
                    received_at=datetime.now(timezone.utc),
                    status="live",
                    audio_format=json.dumps(audio_format),
                )
            )
        return True

    def add_event(self, call_id: str, event_name: str, t: float, by: str | None, target: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(call_events).values(call_id=call_id, event=event_name, t=t, by=by, target=target))

    def add_utterance(
        self, call_id: str, utterance_id: str, speaker: str, start: float, end: float, text: str,
        level_db: float | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(utterances).values(
                    call_id=call_id, utterance_id=utterance_id, speaker=speaker, start=start, end=end, text=text,
                    level_db=level_db,
                )
            )

    def set_utterance_emotion(self, call_id: str, utterance_id: str, emotion: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(utterances)
                .where(utterances.c.call_id == call_id, utterances.c.utterance_id == utterance_id)
                .values(emotion=json.dumps(emotion, ensure_ascii=False))
            )

    def add_prompt(self, call_id: str, prompt_id: str, rule_id: str, severity: str, t: float, text: str, evidence: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(call_prompts).values(call_id=call_id, prompt_id=prompt_id, rule_id=rule_id,
                                                     severity=severity, t=t, text=text, evidence=evidence))

    def dismiss_prompt(self, call_id: str, prompt_id: str, agent_id: str) -> bool:
        """Record the agent's dismissal; False if no such prompt (or already dismissed)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(call_prompts)
                .where(call_prompts.c.call_id == call_id, call_prompts.c.prompt_id == prompt_id,
                       call_prompts.c.dismissed_at.is_(None))
                .values(dismissed_at=datetime.now(timezone.utc), dismissed_by=agent_id)
            )
            return done.rowcount == 1

    def list_prompts(self, call_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(call_prompts).where(call_prompts.c.call_id == call_id).order_by(call_prompts.c.id)).mappings()
            return [{k: r[k] for k in ("prompt_id", "rule_id", "severity", "t", "text", "evidence", "dismissed_at", "dismissed_by")}
                    for r in rows]

    def end_call(self, call_id: str, status: str, duration: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(status=status, duration=duration, ended_at=datetime.now(timezone.utc))
            )

    def save_report(self, call_id: str, score: float | None, report: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(score=score, report=json.dumps(report, ensure_ascii=False))
            )

    def get_call(self, call_id: str) -> CallRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).mappings().first()
        if row is None:
            return None
        return CallRecord(
            call_id=row["call_id"],
            agent_id=row["agent_id"],
            direction=row["direction"],
            caller_number=row["caller_number"],
            started_at=row["started_at"],
            status=row["status"],
            audio_format=json.loads(row["audio_format"]),
            duration=row["duration"],
            score=row["score"],
            report=json.loads(row["report"]) if row["report"] else None,
        )

    def list_utterances(self, call_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(utterances).where(utterances.c.call_id == call_id).order_by(utterances.c.start)
            ).mappings()
            return [
                {
                    "utterance_id": r["utterance_id"],
                    "speaker": r["speaker"],
                    "start": r["start"],
                    "end": r["end"],
                    "text": r["text"],
                    "level_db": r["level_db"],
                    "emotion": json.loads(r["emotion"]) if r["emotion"] else None,
                }
                for r in rows
            ]

    def list_events(self, call_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(call_events).where(call_events.c.call_id == call_id).order_by(call_events.c.id)
            ).mappings()
            return [{k: r[k] for k in ("event", "t", "by", "target")} for r in rows]

    def mark_live_calls_interrupted(self) -> int:
        """At start-up, calls still 'live' belonged to a process that died mid-call: they were interrupted
        (unlike 'dropped', where the phone system went away and this process saw it)."""
        with self.engine.begin() as conn:
            return conn.execute(update(calls).where(calls.c.status == "live").values(status="interrupted")).rowcount


def _sqlite_for_concurrent_writers(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web pages read while calls are being written; busy_timeout makes a writer wait for
    # another instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
