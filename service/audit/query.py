"""The call list's query: full-text search, filters, sorting, pagination over the audit index.

Every filter is a column of `audit_calls` with its own index (or the rule table's), the text search is the
FTS index (see search.py); one statement returns the page, a second the total. A tenant-scoped key's query
is cut to its tenant (`audit_calls.tenant`) here, whatever else it asks for.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.persistence import search
from service.audit.models import CallPage, CallQuery, CallRow

_SORT_COLUMNS = {"started_at": "c.started_at", "score": "c.score", "duration": "c.duration",
                 "worst_valence": "c.worst_valence", "finding_count": "c.finding_count", "agent_id": "c.agent_id",
                 "audited_at": "c.audited_at"}


def _day_end(value: str) -> str | None:
    """`date_to` as an exclusive upper bound: a bare date includes its whole day. None: no bound (the last
    day there is). CallQuery has already checked and normalised the value."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value  # a date-time: the bound itself
    return None if day == date.max else (day + timedelta(days=1)).isoformat()


def where_clause(q: CallQuery, dialect: str, tenant: str | None = None) -> tuple[str, dict[str, Any]]:
    """The filters as SQL over `audit_calls c`; with `tenant`, only that tenant's calls."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if tenant is not None:
        parts.append("c.tenant = :tenant")
        params["tenant"] = tenant
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


def list_calls(engine: Engine, q: CallQuery, tenant: str | None = None) -> CallPage:
    """A page of the call list; with `tenant`, of that tenant's calls only."""
    began = time.perf_counter()
    where, params = where_clause(q, engine.dialect.name, tenant)
    col = _SORT_COLUMNS[q.sort]
    order = "DESC" if q.order == "desc" else "ASC"
    # Calls without a value sort last either way; the call id breaks ties so pages never overlap.
    nulls = f"CASE WHEN {col} IS NULL THEN 1 ELSE 0 END, "
    sql = (f"SELECT c.call_id, c.agent_id, c.direction, c.started_at, c.duration, c.score, c.worst_valence, "
           f"c.worst_label, c.finding_count, c.rules, c.file_name, c.speaker_attribution FROM audit_calls c{where} "
           f"ORDER BY {nulls}{col} {order}, c.call_id {order} LIMIT :limit OFFSET :offset")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {**params, "limit": q.limit, "offset": q.offset}).mappings().all()
        total = conn.execute(text(f"SELECT count(*) FROM audit_calls c{where}"), params).scalar() or 0
        snippets = _snippets(conn, [r["call_id"] for r in rows], q) if q.q and rows else {}
    out = [CallRow(**{**dict(r), "rules": r["rules"].split() if r["rules"] else []}, snippet=snippets.get(r["call_id"]))
           for r in rows]
    return CallPage(total=int(total), offset=q.offset, limit=q.limit, rows=out,
                    took_ms=round((time.perf_counter() - began) * 1000, 2))


def _snippets(conn: Any, call_ids: list[str], q: CallQuery) -> dict[str, str]:
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


def select_call_ids(engine: Engine, q: CallQuery, tenant: str | None = None) -> list[str]:
    """Every call the query's filters select (no paging), for re-audits; with `tenant`, of that tenant only."""
    where, params = where_clause(q, engine.dialect.name, tenant)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(f"SELECT c.call_id FROM audit_calls c{where} ORDER BY c.started_at"), params)]
