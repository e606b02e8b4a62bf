"""Calls, their events, utterances and prompts, written as they happen: the calls' repository.

Every statement runs under the database's outage retry (service.persistence.engine), and a retried write is
not stored twice when its first try's commit reached the server just before the connection broke: it
recognises its own row (a call, an event, an utterance or prompt by its unique key), or it only overwrites.

Several instances may share one database: each call row names the instance that ingests it (`instance`), so
an instance starting up marks interrupted only the calls it left live, not those live right now elsewhere.

Call ids are per tenant: the phone systems of two tenants may both send `20261123-0001`, and neither learns
of the other's. A row's key (`calls.call_id`, which every other table refers to) is the id as sent when no
other row has it, else `tenant_call_key(tenant, id)` (the id, `~`, a hash of tenant and id), with the id as
sent kept in `client_call_id`. `find_call` resolves an id within one tenant; whoever shows a call to a
tenant-scoped principal shows the id as sent. Chosen over a (tenant, call_id) key because that key would
have to reach every table, index and query that names a call (events, utterances, prompts, the call list,
its search index, the audit jobs); this way one nullable column is added, existing rows keep their keys and
stay readable as they are, and a deployment without colliding ids sees no change at all.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, ColumnElement, Table, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from service.persistence.engine import Database, is_duplicate
from service.persistence.tables import audit_calls, call_events, call_prompts, calls, utterances

if TYPE_CHECKING:
    from service.settings import Settings


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
    tenant: str | None = None
    instance: str | None = None


@dataclass(frozen=True)
class LiveCalls:
    """The calls still 'live' in the database that one instance ingested (None: rows from before instances
    were recorded)."""

    instance: str | None
    count: int
    oldest_received_at: datetime


@dataclass(frozen=True)
class CallOwner:
    """Who may see a call (service.access.guard): its agent and tenant, and its id as sent."""

    agent_id: str
    tenant: str | None
    call_id: str  # as its phone system sent it (the row key, unless another tenant's call had that id)


KEY_MARK = "~"  # never in a call id as the protocol allows it, so a derived key is never someone's id
_KEY_HASH_HEX = 20


def tenant_call_key(tenant: str | None, call_id: str) -> str:
    """The row key of `tenant`'s call `call_id` when another row already has `call_id` as its key: readable
    (it starts with the id), unique per (tenant, id), and no longer than a call id."""
    owner = "-" if tenant is None else f"t:{tenant}"  # "-" is no tenant's "t:…"
    digest = hashlib.sha256(f"{owner}\0{call_id}".encode()).hexdigest()[:_KEY_HASH_HEX]
    return f"{call_id[:128 - 1 - _KEY_HASH_HEX]}{KEY_MARK}{digest}"


def _of_tenant(tenant: str | None) -> ColumnElement[bool]:
    return calls.c.tenant.is_(None) if tenant is None else calls.c.tenant == tenant


def _find_call(conn: Any, tenant: str | None, call_id: str) -> Any:
    """The row (call_id, agent_id, received_at) of `tenant`'s call `call_id`, or None: the key is the id
    itself or the tenant's derived key (two primary-key lookups). A derived key is no call id: it names none."""
    if KEY_MARK in call_id:
        return None
    for key in (call_id, tenant_call_key(tenant, call_id)):
        row = conn.execute(select(calls.c.call_id, calls.c.agent_id, calls.c.received_at)
                           .where(calls.c.call_id == key, _of_tenant(tenant))).first()
        if row is not None:
            return row
    return None


def default_instance_id() -> str:
    """The instance id when none is configured: the host's name, the same across restarts of one instance a
    machine (CALLWATCH_INSTANCE_ID's default)."""
    return socket.gethostname()


class CallStore:
    """The calls' repository: a live call's rows as they happen, and the reads of a stored call."""

    def __init__(self, url: str, *, retry_s: float = 30.0, instance: str | None = None):
        """Open the database at `url` and bring its schema to the newest revision (creating it when empty).
        `retry_s`: how long a statement keeps retrying while the database is unreachable. `instance`: the id
        written on the calls this process ingests (default: the host name)."""
        from service.migrations import upgrade_to_head

        self.db = Database(url, retry_s=retry_s)
        self.instance = instance or default_instance_id()
        self.db.retrying(lambda _attempt: upgrade_to_head(self.db.engine))

    @classmethod
    def from_settings(cls, settings: Settings) -> CallStore:
        """The store every callwatch process opens: the configured database, outage retry and instance id."""
        return cls(settings.resolved_database_url, retry_s=settings.database_retry_s, instance=settings.instance_id)

    def close(self) -> None:
        self.db.close()

    def create_call(
        self,
        call_id: str,
        agent_id: str,
        direction: str,
        caller_number: str | None,
        started_at: str | None,
        audio_format: dict[str, Any],
        tenant: str | None = None,
    ) -> str | None:
        """Insert a new live call of `tenant`, owned by this store's instance; returns its key (the id itself
        unless another tenant's call has that key), or None if the tenant already has a call with this id
        (live or stored). Another tenant's calls never refuse it."""
        received_at = datetime.now(timezone.utc)

        def write(conn: Connection, attempt: int) -> str | None:
            mine = _find_call(conn, tenant, call_id)
            if mine is not None:
                # On a retry, the row may be this very call, committed just before the connection broke.
                same = attempt > 0 and mine.agent_id == agent_id and _same_instant(mine.received_at, received_at)
                return mine.call_id if same else None
            taken = conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id)).first() is not None
            key = tenant_call_key(tenant, call_id) if taken else call_id
            conn.execute(
                insert(calls).values(
                    call_id=key,
                    agent_id=agent_id,
                    direction=direction,
                    caller_number=caller_number,
                    started_at=started_at,
                    received_at=received_at,
                    status="live",
                    audio_format=json.dumps(audio_format),
                    tenant=tenant,
                    instance=self.instance,
                    client_call_id=call_id if taken else None,
                )
            )
            return key

        def write_once_more_on_a_race(attempt: int) -> str | None:
            # Not `write_once`: on a race the transaction is run again within the same attempt.
            try:
                with self.db.engine.begin() as conn:
                    return write(conn, attempt)
            except IntegrityError as err:
                # Another process inserted the same key between the look and the insert: look again (now it
                # is this tenant's duplicate, or another tenant's and this call takes the derived key).
                if not is_duplicate(err):
                    raise
            with self.db.engine.begin() as conn:
                return write(conn, attempt)

        return self.db.retrying(write_once_more_on_a_race)

    def find_call(self, tenant: str | None, call_id: str) -> str | None:
        """The key of `tenant`'s call `call_id` (tenant None: of the calls of no tenant), or None."""
        def read(conn: Connection) -> str | None:
            row = _find_call(conn, tenant, call_id)
            return row.call_id if row is not None else None

        return self.db.read(read)

    def sent_ids(self, keys: Iterable[str]) -> dict[str, str]:
        """For each row key, the call id its phone system sent: the key itself but for derived keys."""
        keys = list(keys)
        derived = sorted({k for k in keys if KEY_MARK in k})
        if not derived:
            return {k: k for k in keys}
        found = self.db.read(lambda conn: dict(conn.execute(
            select(calls.c.call_id, calls.c.client_call_id)
            .where(calls.c.call_id.in_(derived), calls.c.client_call_id.is_not(None))).all()))
        return {k: found.get(k, k) for k in keys}

    def owner(self, key: str) -> CallOwner | None:
        """Whose call the row `key` is; None if there is no such call. The tenant is the integrator's that
        streamed it (`calls.tenant`), else the one an audit was filed under (`audit_calls.tenant`)."""
        def read(conn: Connection) -> CallOwner | None:
            row = conn.execute(select(calls.c.agent_id, calls.c.tenant, calls.c.client_call_id)
                               .where(calls.c.call_id == key)).first()
            if row is None:
                return None
            tenant = row.tenant
            if tenant is None:
                tenant = conn.execute(select(audit_calls.c.tenant).where(audit_calls.c.call_id == key)).scalar()
            return CallOwner(agent_id=row.agent_id, tenant=tenant, call_id=row.client_call_id or key)

        return self.db.read(read)

    def add_event(self, call_id: str, event_name: str, t: float, by: str | None, target: str | None) -> None:
        row = {"call_id": call_id, "event": event_name, "t": t, "by": by, "target": target}

        def write(conn: Connection, attempt: int) -> None:
            if attempt > 0 and conn.execute(
                select(call_events.c.id).where(*[call_events.c[k] == v if v is not None else call_events.c[k].is_(None)
                                                 for k, v in row.items()])
            ).first():
                return  # the same event is there: our earlier try's
            conn.execute(insert(call_events).values(**row))

        self.db.write_once(write)

    def add_utterance(
        self, call_id: str, utterance_id: str, speaker: str, start: float, end: float, text: str,
        level_db: float | None = None,
    ) -> None:
        self._insert_keyed(utterances, utterances.c.utterance_id, dict(
            call_id=call_id, utterance_id=utterance_id, speaker=speaker, start=start, end=end, text=text,
            level_db=level_db, text_pass="live"))

    def _insert_keyed(self, table: Table, key: Column[str], row: dict[str, Any]) -> None:
        """Insert a row of a call, unique by (call_id, `key`): on a retry, a row with that key is the one our
        earlier try committed."""
        def write(conn: Connection, attempt: int) -> None:
            if attempt > 0 and conn.execute(select(key).where(
                    table.c.call_id == row["call_id"], key == row[key.name])).first() is not None:
                return
            conn.execute(insert(table).values(**row))

        self.db.write_once(write)

    def apply_second_pass(self, call_id: str, heard: list[dict[str, Any]],
                          level_db: Callable[[str], float | None]) -> None:
        """The second pass's text for a call's utterances (utterance_id, speaker, start, end, text), in one
        transaction. A live utterance keeps what the agent saw in `live_text`, and its level; one the live pass
        heard nothing in is added (its `live_text` null) with `level_db(utterance_id)`, measured only for these;
        where the second pass heard nothing, the live text stays."""

        def write(conn: Connection) -> None:
            stored = {r.utterance_id: r for r in conn.execute(
                select(utterances.c.utterance_id, utterances.c.text, utterances.c.live_text, utterances.c.text_pass)
                .where(utterances.c.call_id == call_id))}
            for h in heard:
                row = stored.get(h["utterance_id"])
                if row is None:
                    if h["text"]:
                        conn.execute(insert(utterances).values(call_id=call_id, text_pass="second",
                                                               level_db=level_db(h["utterance_id"]), **h))
                    continue
                # A row already of this pass is our earlier try's (the retry after a commit that lost its
                # answer): left as it is, or an utterance it added would take its own text as the live one.
                if not h["text"] or row.text_pass == "second":
                    continue
                conn.execute(
                    update(utterances)
                    .where(utterances.c.call_id == call_id, utterances.c.utterance_id == h["utterance_id"])
                    .values(text=h["text"], text_pass="second",
                            live_text=row.live_text if row.live_text is not None else row.text)
                )

        self.db.write(write)

    def set_utterance_emotion(self, call_id: str, utterance_id: str, emotion: dict[str, Any]) -> None:
        self.db.write(lambda conn: conn.execute(
            update(utterances)
            .where(utterances.c.call_id == call_id, utterances.c.utterance_id == utterance_id)
            .values(emotion=json.dumps(emotion, ensure_ascii=False))
        ))

    def add_prompt(self, call_id: str, prompt_id: str, rule_id: str, severity: str, t: float, text: str, evidence: str) -> None:
        self._insert_keyed(call_prompts, call_prompts.c.prompt_id, dict(
            call_id=call_id, prompt_id=prompt_id, rule_id=rule_id, severity=severity, t=t, text=text,
            evidence=evidence))

    def dismiss_prompt(self, call_id: str, prompt_id: str, agent_id: str) -> bool:
        """Record the agent's dismissal; False if no such prompt (or already dismissed)."""
        def write(conn: Connection, attempt: int) -> bool:
            done = conn.execute(
                update(call_prompts)
                .where(call_prompts.c.call_id == call_id, call_prompts.c.prompt_id == prompt_id,
                       call_prompts.c.dismissed_at.is_(None))
                .values(dismissed_at=datetime.now(timezone.utc), dismissed_by=agent_id)
            )
            if done.rowcount == 1:
                # A prompt may be dismissed after its call is listed: trends count dismissals.
                from service.persistence.qa_call_facts import refresh_trend_facts  # here: it imports this module

                refresh_trend_facts(conn, [call_id])
                return True
            if attempt == 0:
                return False
            by = conn.execute(select(call_prompts.c.dismissed_by).where(
                call_prompts.c.call_id == call_id, call_prompts.c.prompt_id == prompt_id)).scalar()
            return by == agent_id

        return self.db.write_once(write)

    def list_prompts(self, call_id: str) -> list[dict[str, Any]]:
        def read(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(select(call_prompts).where(call_prompts.c.call_id == call_id).order_by(call_prompts.c.id)).mappings()
            return [{k: r[k] for k in ("prompt_id", "rule_id", "severity", "t", "text", "evidence", "dismissed_at", "dismissed_by")}
                    for r in rows]

        return self.db.read(read)

    def end_call(self, call_id: str, status: str, duration: float) -> None:
        ended_at = datetime.now(timezone.utc)
        self.db.write(lambda conn: conn.execute(
            update(calls).where(calls.c.call_id == call_id).values(status=status, duration=duration, ended_at=ended_at)
        ))

    def save_report(self, call_id: str, score: float | None, report: dict[str, Any]) -> None:
        self.db.write(lambda conn: conn.execute(
            update(calls).where(calls.c.call_id == call_id)
            .values(score=score, report=json.dumps(report, ensure_ascii=False))
        ))

    def get_call(self, call_id: str) -> CallRecord | None:
        row = self.db.read(lambda conn: conn.execute(select(calls).where(calls.c.call_id == call_id)).mappings().first())
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
            tenant=row["tenant"],
            instance=row["instance"],
        )

    def list_utterances(self, call_id: str) -> list[dict[str, Any]]:
        def read(conn: Connection) -> list[dict[str, Any]]:
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
                    "live_text": r["live_text"],
                    "text_pass": r["text_pass"] or "live",
                }
                for r in rows
            ]

        return self.db.read(read)

    def list_events(self, call_id: str) -> list[dict[str, Any]]:
        def read(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                select(call_events).where(call_events.c.call_id == call_id).order_by(call_events.c.id)
            ).mappings()
            return [{k: r[k] for k in ("event", "t", "by", "target")} for r in rows]

        return self.db.read(read)

    def mark_live_calls_interrupted(self) -> int:
        """At start-up, this instance's calls still 'live' belonged to its previous process, which died
        mid-call: they were interrupted (unlike 'dropped', where the phone system went away and the process
        saw it). Calls with no instance (stored before instances were recorded) are marked too; calls of other
        instances sharing the database are theirs, maybe live right now, and are left alone."""
        mine = (calls.c.instance == self.instance) | calls.c.instance.is_(None)
        return self._interrupt(mine)

    def interrupt_calls_of(self, instance: str) -> int:
        """Mark interrupted the live calls of `instance`, one that died and will not start again under that id
        (`callwatch calls-interrupt`). A call of an instance that is in fact running gets its right status
        when it ends: ending a call sets its status whatever it was."""
        return self._interrupt(calls.c.instance == instance)

    def _interrupt(self, whose: ColumnElement[bool]) -> int:
        return self.db.write(lambda conn: conn.execute(
            update(calls).where(calls.c.status == "live", whose).values(status="interrupted")).rowcount)

    def live_calls_by_instance(self) -> list[LiveCalls]:
        """How many calls each instance has live, and since when (for an operator looking for dead ones)."""
        rows = self.db.read(lambda conn: conn.execute(
            select(calls.c.instance, func.count(), func.min(calls.c.received_at))
            .where(calls.c.status == "live").group_by(calls.c.instance).order_by(calls.c.instance)
        ).all())
        return [LiveCalls(instance, count, _utc(oldest)) for instance, count, oldest in rows]


def _same_instant(stored: datetime | None, ours: datetime) -> bool:
    if stored is None:
        return False
    if stored.tzinfo is None:  # SQLite hands back what it was given, without the zone
        return stored == ours.replace(tzinfo=None)
    return stored == ours


def _utc(stored: datetime) -> datetime:
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=timezone.utc)
