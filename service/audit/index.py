"""Keep the call list's index (audit_calls, audit_call_rules, the full-text index) in step with the store.

Written once per call when its audit is stored, refreshed when its report is replaced (`replace_report`: a
re-audit, the post-call second pass); live calls that ended with a report are picked up by `sync_index`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from service.persistence import search
from service.persistence.tables import audit_call_rules, audit_calls, calls, utterances

MOOD_RANK = {"satisfied": 0, "neutral": 1, "upset": 2, "angry": 3}


def worst_mood(utts: list[dict[str, Any]]) -> tuple[float | None, str | None]:
    """The customer's lowest (smoothed) valence and most severe label over the call."""
    samples = [u["emotion"] for u in utts if u.get("emotion")]
    if not samples:
        return None, None
    valence = min(float(s.get("smoothed_valence", s.get("valence", 0.0))) for s in samples)
    labels = [s.get("label") for s in samples if s.get("label") in MOOD_RANK]
    label = max(labels, key=lambda x: MOOD_RANK[x]) if labels else None
    return round(valence, 4), label


def _side(speaker: str) -> str:
    return speaker if speaker in ("agent", "customer") else "other"


def index_call(
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
    # Transcripts do not change after a call is stored (a re-audit re-runs rules, not ASR).
    if not search.has_document(conn, rowid):
        by_side: dict[str, list[str]] = {"agent": [], "customer": [], "other": []}
        for u in sorted(utts, key=lambda u: u["start"]):
            by_side[_side(u["speaker"])].append(u["text"])
        search.index_document(conn, rowid, {k: "\n".join(v) for k, v in by_side.items()})


def replace_report(engine: Engine, call_id: str, report: dict[str, Any], utts: list[dict[str, Any]], *,
                   rules_name: str | None, index_unlisted: bool) -> None:
    """A stored call's new report and score, and its call-list row refreshed from them, in one transaction
    (it only overwrites, so the store's outage retry may run it twice). `rules_name`, when the report comes
    from other rules than the deployment's (a re-audit), is recorded in the row's audit. A call the list
    does not have yet is indexed only with `index_unlisted`; else `sync_index` picks it up when the list is
    next read, from what is stored now."""
    with engine.begin() as conn:
        conn.execute(calls.update().where(calls.c.call_id == call_id)
                     .values(score=report["score"], report=json.dumps(report, ensure_ascii=False)))
        listed = conn.execute(select(audit_calls).where(audit_calls.c.call_id == call_id)).mappings().first()
        if listed is None and not index_unlisted:
            return
        row = conn.execute(select(calls).where(calls.c.call_id == call_id)).mappings().one()
        if listed is not None:
            # It keeps its start time, attribution and tenant: for a live call the phone system gave no start,
            # the list shows when it was received, which the call row's empty start would blank out.
            started_at, attribution, tenant = listed["started_at"], listed["speaker_attribution"], listed["tenant"]
            audit = json.loads(listed["audit"]) if listed["audit"] else {}
        else:
            # Listed here first (an ended live call the list has not read yet): under its tenant, as sync_index
            # would list it, or its tenant's list would never show it and sync_index would not come back to it.
            started_at, attribution, tenant, audit = _list_start(row), "channels", row["tenant"], {}
        if rules_name is not None:
            audit["rules"] = rules_name
        index_call(conn, call_id=call_id, agent_id=row["agent_id"], direction=row["direction"], started_at=started_at,
                   duration=row["duration"], report=report, utts=utts, speaker_attribution=attribution, audit=audit,
                   tenant=tenant)


def _list_start(call: Any) -> str | None:
    """A stored call's start time in the list: the one the phone system sent, else when it was received."""
    return call["started_at"] or (call["received_at"].isoformat() if call["received_at"] else None)


def sync_index(engine: Engine, limit: int = 500) -> int:
    """Index stored calls with a report that the call list does not know yet (live calls); returns how many."""
    with engine.begin() as conn:
        known = select(audit_calls.c.call_id)
        rows = conn.execute(
            select(calls).where(calls.c.report.is_not(None), calls.c.status != "live", calls.c.call_id.not_in(known)).limit(limit)
        ).mappings().all()
        for r in rows:
            utts = [
                {"speaker": u["speaker"], "start": u["start"], "text": u["text"],
                 "emotion": json.loads(u["emotion"]) if u["emotion"] else None}
                for u in conn.execute(select(utterances).where(utterances.c.call_id == r["call_id"])).mappings()
            ]
            index_call(
                conn, call_id=r["call_id"], agent_id=r["agent_id"], direction=r["direction"],
                started_at=_list_start(r),
                duration=r["duration"], report=json.loads(r["report"]), utts=utts,
                speaker_attribution="channels" if all(u["speaker"] in ("agent", "customer") for u in utts) else "guessed",
                audit={"source": "live"}, tenant=r["tenant"],  # the integrator's that streamed it
            )
    return len(rows)
