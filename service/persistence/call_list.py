"""The QA call list: its index (audit_calls, audit_call_rules, the full-text index), its query, and the calls
that reach it (an audited recording, a re-audited report, a live call that ended with one).

Every filter is a column of `audit_calls` with its own index (or the rule table's), the text search is the
full-text index (service.persistence.search); one statement returns the page, a second the total. A
tenant-scoped key's query is cut to its tenant (`audit_calls.tenant`) here, whatever else it asks for, and a
team supervisor's to its teams' agents (`audit_calls.agent_id`, tenant by tenant as the keys file places them),
so the totals and pages are of what it may see.

The index is written once per call when its audit is stored, refreshed when its report is replaced (a
re-audit, the post-call second pass); live calls that ended with a report are picked up by `sync`. Every
write here leaves the same rows however often it runs (a delete-then-insert, an overwrite), so the outage
retry may repeat one whose commit lost its answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import count
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from service.access.teams import TeamAgents
from service.audit.web.models import CallPage, CallQuery, CallRow
from service.persistence import search
from service.persistence.engine import Database
from service.persistence.tables import (
    audit_call_rules,
    audit_calls,
    call_events,
    call_prompts,
    calls,
    utterances,
)

MOOD_RANK = {"satisfied": 0, "neutral": 1, "upset": 2, "angry": 3}
_SORT_COLUMNS = {"started_at": "c.started_at", "score": "c.score", "duration": "c.duration",
                 "worst_valence": "c.worst_valence", "finding_count": "c.finding_count", "agent_id": "c.agent_id",
                 "audited_at": "c.audited_at"}
_IN_CHUNK = 500  # ids per IN (…) list: well under every database's parameter limit


@dataclass(frozen=True)
class Listed:
    """A call's row in the list, as far as QA's tools read it back."""

    audit: dict[str, Any]  # how the call was audited (file, format, rules, models, job); {} for a live call
    duration: float | None
    source_path: str | None  # the recording, for the report's player
    tenant: str | None


def worst_mood(utts: list[dict[str, Any]]) -> tuple[float | None, str | None]:
    """The customer's lowest (smoothed) valence and most severe label over the call."""
    samples = [u["emotion"] for u in utts if u.get("emotion")]
    if not samples:
        return None, None
    valence = min(float(s.get("smoothed_valence", s.get("valence", 0.0))) for s in samples)
    labels = [s.get("label") for s in samples if s.get("label") in MOOD_RANK]
    label = max(labels, key=lambda x: MOOD_RANK[x]) if labels else None
    return round(valence, 4), label


class CallList:
    def __init__(self, db: Database):
        self.db = db

    # --- reading ---------------------------------------------------------------------

    def page(self, q: CallQuery, tenant: str | None = None, agents: TeamAgents | None = None) -> CallPage:
        """A page of the call list; with `tenant`, of that tenant's calls only; with `agents`, of theirs only."""
        began = time.perf_counter()
        where, params = _where_clause(q, self.db.dialect, tenant, agents)
        col = _SORT_COLUMNS[q.sort]
        order = "DESC" if q.order == "desc" else "ASC"
        # Calls without a value sort last either way; the call id breaks ties so pages never overlap.
        nulls = f"CASE WHEN {col} IS NULL THEN 1 ELSE 0 END, "
        sql = (f"SELECT c.call_id, c.agent_id, c.direction, c.started_at, c.duration, c.score, c.worst_valence, "
               f"c.worst_label, c.finding_count, c.rules, c.file_name, c.speaker_attribution FROM audit_calls c{where} "
               f"ORDER BY {nulls}{col} {order}, c.call_id {order} LIMIT :limit OFFSET :offset")

        def read(conn: Connection) -> tuple[list[Any], int, dict[str, str]]:
            rows = conn.execute(text(sql), {**params, "limit": q.limit, "offset": q.offset}).mappings().all()
            total = conn.execute(text(f"SELECT count(*) FROM audit_calls c{where}"), params).scalar() or 0
            snippets = _snippets(conn, [r["call_id"] for r in rows], q) if q.q and rows else {}
            return list(rows), int(total), snippets

        rows, total, snippets = self.db.read(read)
        out = [CallRow(**{**dict(r), "rules": r["rules"].split() if r["rules"] else []}, snippet=snippets.get(r["call_id"]))
               for r in rows]
        return CallPage(total=total, offset=q.offset, limit=q.limit, rows=out,
                        took_ms=round((time.perf_counter() - began) * 1000, 2))

    def call_ids(self, q: CallQuery, tenant: str | None = None, agents: TeamAgents | None = None) -> list[str]:
        """Every call the query's filters select (no paging), for re-audits; with `tenant`, of that tenant only;
        with `agents`, of theirs only."""
        where, params = _where_clause(q, self.db.dialect, tenant, agents)
        sql = text(f"SELECT c.call_id FROM audit_calls c{where} ORDER BY c.started_at")
        return self.db.read(lambda conn: [r[0] for r in conn.execute(sql, params)])

    def is_listed(self, call_id: str) -> bool:
        """Whether the call is in the list: for an audit, completely stored (one transaction wrote it all)."""
        return self.db.read(lambda conn: conn.execute(
            select(audit_calls.c.call_id).where(audit_calls.c.call_id == call_id)).first() is not None)

    def listed(self, call_id: str) -> Listed | None:
        row = self.db.read(lambda conn: conn.execute(
            select(audit_calls.c.audit, audit_calls.c.duration, audit_calls.c.source_path, audit_calls.c.tenant)
            .where(audit_calls.c.call_id == call_id)).first())
        if row is None:
            return None
        return Listed(audit=json.loads(row.audit) if row.audit else {}, duration=row.duration,
                      source_path=row.source_path, tenant=row.tenant)

    def calls_within(self, call_ids: Iterable[str], tenant: str | None, agents: TeamAgents | None) -> set[str]:
        """Those of `call_ids` in the call list that are `tenant`'s (None: any tenant's or none's) and, with
        `agents`, one of theirs."""
        wanted = sorted(set(call_ids))
        scope, scope_params = _scope_clause(tenant, agents)

        def read(conn: Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(wanted), _IN_CHUNK):
                chunk = {f"id{n}": call_id for n, call_id in enumerate(wanted[i:i + _IN_CHUNK])}
                among = f"c.call_id IN ({', '.join(':' + name for name in chunk)})"
                sql = f"SELECT c.call_id FROM audit_calls c WHERE {' AND '.join([among, *scope])}"
                found.update(conn.execute(text(sql), {**scope_params, **chunk}).scalars())
            return found

        return self.db.read(read)

    # --- writing ---------------------------------------------------------------------

    def store_audited(
        self,
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
        """One audited recording in a single transaction: the call, its events, utterances with emotion,
        prompts, the report, and its row in the list. Either all of it is there or none, so an interrupted
        batch loses only the file in progress and a re-run knows exactly what is done (`is_listed`)."""
        now = datetime.now(timezone.utc)

        def write(conn: Connection) -> None:
            # Delete-then-insert: a retry after a commit that lost its answer writes the same rows again.
            _delete_call_rows(conn, call_id)
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
            _index_call(
                conn, call_id=call_id, agent_id=agent_id, direction=direction, started_at=started_at,
                duration=duration, report=report, utts=utts, file_name=file_name, source_path=source_path,
                speaker_attribution=speaker_attribution, audit=audit,
            )

        self.db.write(write)

    def purge(self, call_id: str) -> None:
        """Remove a call that was not completely stored (a run killed outside the transaction, or a live call
        that reused the id), so the audit can write it afresh."""
        def write(conn: Connection) -> None:
            _delete_call_rows(conn, call_id)
            conn.execute(delete(audit_call_rules).where(audit_call_rules.c.call_id == call_id))

        self.db.write(write)

    def replace_report(self, call_id: str, report: dict[str, Any], utts: list[dict[str, Any]], *,
                       rules_name: str | None, index_unlisted: bool) -> None:
        """A stored call's new report and score, and its list row refreshed from them, in one transaction.
        `rules_name`, when the report comes from other rules than the deployment's (a re-audit), is recorded
        in the row's audit. A call the list does not have yet is indexed only with `index_unlisted`; else
        `sync` picks it up when the list is next read, from what is stored now."""
        def write(conn: Connection) -> None:
            conn.execute(update(calls).where(calls.c.call_id == call_id)
                         .values(score=report["score"], report=json.dumps(report, ensure_ascii=False)))
            listed = conn.execute(select(audit_calls).where(audit_calls.c.call_id == call_id)).mappings().first()
            if listed is None and not index_unlisted:
                return
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).mappings().one()
            if listed is not None:
                # It keeps its start time, attribution and tenant: for a live call the phone system gave no
                # start, the list shows when it was received, which the call row's empty start would blank out.
                started_at, attribution, tenant = listed["started_at"], listed["speaker_attribution"], listed["tenant"]
                audit = json.loads(listed["audit"]) if listed["audit"] else {}
            else:
                # Listed here first (an ended live call the list has not read yet): under its tenant, as `sync`
                # would list it, or its tenant's list would never show it and `sync` would not come back to it.
                started_at, attribution, tenant, audit = _list_start(row), "channels", row["tenant"], {}
            if rules_name is not None:
                audit["rules"] = rules_name
            _index_call(conn, call_id=call_id, agent_id=row["agent_id"], direction=row["direction"],
                        started_at=started_at, duration=row["duration"], report=report, utts=utts,
                        speaker_attribution=attribution, audit=audit, tenant=tenant)

        self.db.write(write)

    def sync(self, limit: int = 500) -> int:
        """List stored calls with a report that the list does not know yet (live calls); returns how many."""
        def write(conn: Connection) -> int:
            known = select(audit_calls.c.call_id)
            rows = conn.execute(
                select(calls).where(calls.c.report.is_not(None), calls.c.status != "live", calls.c.call_id.not_in(known))
                .limit(limit)
            ).mappings().all()
            for r in rows:
                utts = [
                    {"speaker": u["speaker"], "start": u["start"], "text": u["text"],
                     "emotion": json.loads(u["emotion"]) if u["emotion"] else None}
                    for u in conn.execute(select(utterances).where(utterances.c.call_id == r["call_id"])).mappings()
                ]
                _index_call(
                    conn, call_id=r["call_id"], agent_id=r["agent_id"], direction=r["direction"],
                    started_at=_list_start(r), duration=r["duration"], report=json.loads(r["report"]), utts=utts,
                    speaker_attribution="channels" if all(u["speaker"] in ("agent", "customer") for u in utts) else "guessed",
                    audit={"source": "live"}, tenant=r["tenant"],  # the integrator's that streamed it
                )
            return len(rows)

        return self.db.write(write)

    def index(self, **listing: Any) -> None:
        """Insert or refresh one call's row as `_index_call` takes it, in a transaction of its own (tests
        build lists of calls that were never audited)."""
        self.db.write(lambda conn: _index_call(conn, **listing))

    # --- generated calls (service.audit.synthetic) ---------------------------------------

    def last_rowid(self) -> int:
        return self.db.read(lambda conn: conn.execute(
            select(audit_calls.c.rowid_).order_by(audit_calls.c.rowid_.desc()).limit(1)).scalar() or 0)

    def insert_generated(self, call_rows: list[dict[str, Any]], utt_rows: list[dict[str, Any]],
                         list_rows: list[dict[str, Any]], rule_rows: list[dict[str, Any]],
                         docs: list[tuple[int, dict[str, str]]]) -> None:
        """Rows made up elsewhere, in bulk, with their own list row ids; in one transaction, which a retry
        finds committed by its first call."""
        def write(conn: Connection, attempt: int) -> None:
            if attempt > 0 and conn.execute(select(calls.c.call_id)
                                            .where(calls.c.call_id == call_rows[0]["call_id"])).first() is not None:
                return
            conn.execute(insert(calls), call_rows)
            conn.execute(insert(utterances), utt_rows)
            conn.execute(insert(audit_calls), list_rows)
            if rule_rows:
                conn.execute(insert(audit_call_rules), rule_rows)
            _refresh_trend_facts(conn, [r["call_id"] for r in list_rows])
            for rowid, by_side in docs:
                search.index_document(conn, rowid, by_side)
            if conn.dialect.name == "postgresql":
                # The rows carry their own ids; move the sequence past them or the next real audit collides.
                last = select(func.max(audit_calls.c.rowid_)).scalar_subquery()
                conn.execute(select(func.setval(func.pg_get_serial_sequence("audit_calls", "rowid_"), last)))

        if call_rows:
            self.db.write_once(write)


class CallListSync:
    """Picks up into the call list the live calls that ended with a report (`CallList.sync`) for the list's
    requests, at most once every `every_s` seconds: the list must stay fast. One per run of the app, built at
    start-up (service/app_state.py)."""

    def __init__(self, db: Database, every_s: float = 30.0) -> None:
        self._list = CallList(db)
        self._every_s = every_s
        self._last: float | None = None

    def due(self) -> bool:
        """Whether to sync now. A yes starts the next wait at once, before the sync runs, so that the requests
        that come while it runs do not start another."""
        now = time.monotonic()
        if self._last is not None and now - self._last <= self._every_s:
            return False
        self._last = now
        return True

    def sync(self) -> int:
        return self._list.sync()


def _refresh_trend_facts(conn: Connection, call_ids: list[str]) -> None:
    """A listed call's trend facts follow its list row (its report, score, start, agent)."""
    from service.persistence.qa_call_facts import refresh_trend_facts  # here: that module reads the list

    refresh_trend_facts(conn, call_ids)


def _delete_call_rows(conn: Connection, call_id: str) -> None:
    for table in (call_prompts, utterances, call_events):
        conn.execute(delete(table).where(table.c.call_id == call_id))
    conn.execute(delete(calls).where(calls.c.call_id == call_id))


def _list_start(call: Any) -> str | None:
    """A stored call's start time in the list: the one the phone system sent, else when it was received."""
    return call["started_at"] or (call["received_at"].isoformat() if call["received_at"] else None)


def _side(speaker: str) -> str:
    return speaker if speaker in ("agent", "customer") else "other"


def _index_call(
    conn: Connection,
    *,
    call_id: str,
    agent_id: str,
    direction: str,
    started_at: str | None,
    duration: float | None,
    report: dict[str, Any] | None,
    utts: list[dict[str, Any]],
    file_name: str | None = None,
    source_path: str | None = None,
    speaker_attribution: str = "channels",
    audit: dict[str, Any] | None = None,
    tenant: str | None = None,
) -> None:
    """Insert or refresh one call's row, its rule rows and (once) its transcript in the search index.

    The tenant is `tenant`, else the one the audit was queued under (`audit["tenant"]`); with neither, a row
    keeps the tenant it has (a re-audit never moves a call to another tenant or to none)."""
    findings = (report or {}).get("findings") or []
    per_rule: dict[str, int] = {}
    for f in findings:
        per_rule[f["rule_id"]] = per_rule.get(f["rule_id"], 0) + 1
    valence, label = worst_mood(utts)
    row = dict(
        agent_id=agent_id, direction=direction, started_at=started_at, duration=duration,
        score=(report or {}).get("score"), worst_valence=valence, worst_label=label, finding_count=len(findings),
        rules=" ".join(sorted(per_rule)), speaker_attribution=speaker_attribution,
        audited_at=datetime.now(timezone.utc),
    )
    if file_name is not None:
        row["file_name"] = file_name
    if source_path is not None:
        row["source_path"] = source_path
    if audit is not None:
        row["audit"] = json.dumps(audit, ensure_ascii=False, default=str)
    owner = tenant if tenant is not None else (audit or {}).get("tenant")
    if owner is not None:
        row["tenant"] = owner
    rowid = conn.execute(select(audit_calls.c.rowid_).where(audit_calls.c.call_id == call_id)).scalar()
    if rowid is None:
        inserted = conn.execute(insert(audit_calls).values(call_id=call_id, **row)).inserted_primary_key
        assert inserted is not None  # a single-row insert always has one
        rowid = inserted[0]
    else:
        conn.execute(update(audit_calls).where(audit_calls.c.call_id == call_id).values(**row))
    conn.execute(delete(audit_call_rules).where(audit_call_rules.c.call_id == call_id))
    if per_rule:
        conn.execute(insert(audit_call_rules), [{"call_id": call_id, "rule_id": r, "findings": n} for r, n in per_rule.items()])
    _refresh_trend_facts(conn, [call_id])
    # Transcripts do not change after a call is stored (a re-audit re-runs rules, not ASR).
    if not search.has_document(conn, rowid):
        by_side: dict[str, list[str]] = {"agent": [], "customer": [], "other": []}
        for u in sorted(utts, key=lambda u: u["start"]):
            by_side[_side(u["speaker"])].append(u["text"])
        search.index_document(conn, rowid, {k: "\n".join(v) for k, v in by_side.items()})


def _day_end(value: str) -> str | None:
    """`date_to` as an exclusive upper bound: a bare date includes its whole day. None: no bound (the last
    day there is). CallQuery has already checked and normalised the value."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value  # a date-time: the bound itself
    return None if day == date.max else (day + timedelta(days=1)).isoformat()


def _scope_clause(tenant: str | None, agents: TeamAgents | None) -> tuple[list[str], dict[str, Any]]:
    """Conditions over `audit_calls c` for what a key may see: its tenant's calls (tenant None: every call),
    and with `agents` (a team supervisor's), only those agents' calls."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if tenant is not None:
        parts.append("c.tenant = :tenant")
        params["tenant"] = tenant
    if agents is not None:
        parts.append(_team_clause(agents, tenant, params))
    return parts, params


def _team_clause(agents: TeamAgents, tenant: str | None, params: dict[str, Any]) -> str:
    """SQL over `audit_calls c` that holds for exactly the calls of `agents` (its parameters added to
    `params`). Within one tenant that is a list of agent ids; across tenants, the list of each tenant the keys
    file names, and for every other tenant (or none) the tenant-less entries' ids."""
    names: Iterator[str] = (f"team{n}" for n in count())

    def one_of(column: str, values: Iterable[str]) -> str:
        marks = []
        for value in sorted(values):
            name = next(names)
            params[name] = value
            marks.append(f":{name}")
        return f"{column} IN ({', '.join(marks)})" if marks else "1 = 0"  # `IN ()` is no SQL

    if tenant is not None:
        return one_of("c.agent_id", agents.in_tenant(tenant))
    either = [f"({one_of('c.tenant', [t])} AND {one_of('c.agent_id', ids)})"
              for t, ids in sorted(agents.by_tenant.items()) if ids]
    if agents.elsewhere:
        ids = one_of("c.agent_id", agents.elsewhere)
        either.append(f"((c.tenant IS NULL OR NOT {one_of('c.tenant', agents.by_tenant)}) AND {ids})"
                      if agents.by_tenant else ids)
    return f"({' OR '.join(either)})" if either else "1 = 0"


def _where_clause(q: CallQuery, dialect: str, tenant: str | None = None,
                  agents: TeamAgents | None = None) -> tuple[str, dict[str, Any]]:
    """The filters as SQL over `audit_calls c`; with `tenant`, only that tenant's calls; with `agents`, only
    theirs."""
    parts, params = _scope_clause(tenant, agents)
    if q.q:
        match = search.match_clause(dialect, q.q, q.speaker)
        if match is not None:
            parts.append(match[0])
            params.update(match[1])
    if q.agent_id:
        parts.append("c.agent_id = :agent_id")
        params["agent_id"] = q.agent_id
    if q.date_from:
        parts.append("c.started_at >= :date_from")
        params["date_from"] = q.date_from
    if q.date_to and (day_end := _day_end(q.date_to)) is not None:
        parts.append("c.started_at < :date_to")
        params["date_to"] = day_end
    for field, op, col in (("score_min", ">=", "score"), ("score_max", "<=", "score"), ("duration_min", ">=", "duration"),
                           ("duration_max", "<=", "duration"), ("valence_max", "<=", "worst_valence")):
        value = getattr(q, field)
        if value is not None:
            parts.append(f"c.{col} {op} :{field}")
            params[field] = value
    if q.mood:
        parts.append("c.worst_label = :mood")
        params["mood"] = q.mood
    if q.rule:
        parts.append("EXISTS (SELECT 1 FROM audit_call_rules r WHERE r.rule_id = :rule AND r.call_id = c.call_id)")
        params["rule"] = q.rule
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _snippets(conn: Connection, call_ids: list[str], q: CallQuery) -> dict[str, str]:
    """The first utterance of each listed call that holds the searched text."""
    piece = search.like_pattern(q.q or "")
    if not piece:
        return {}
    marks = ", ".join(f":c{i}" for i in range(len(call_ids)))
    side = " AND speaker = :speaker" if q.speaker else ""
    rows = conn.execute(
        text(f"SELECT call_id, start, text FROM utterances WHERE call_id IN ({marks}){side} AND lower(text) LIKE :like "
             "ORDER BY call_id, start"),
        {**{f"c{i}": c for i, c in enumerate(call_ids)}, "like": f"%{piece.lower()}%", "speaker": q.speaker},
    ).mappings()
    out: dict[str, str] = {}
    for r in rows:
        out.setdefault(r["call_id"], r["text"])
    return out
