"""CSV for spreadsheets: a batch (one row per call, one column per rule) and one call's transcript.

Written with a UTF-8 byte-order mark: Excel, which most QA teams open these in, reads Chinese correctly only
with it; other tools ignore it.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

from rules.catalog import RULE_IDS

BATCH_COLUMNS = ["file_name", "call_id", "state", "error", "agent_id", "direction", "started_at", "duration_s",
                 "score", "findings", "worst_valence", "worst_mood", "speaker_attribution"]
BOM = "\ufeff"


def batch_row(file_name: str, state: str, report: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """One spreadsheet row: the call's figures and, per rule id, how many findings it had."""
    row: dict[str, Any] = {"file_name": file_name, "state": state, "error": error or ""}
    if report:
        per_rule: dict[str, int] = {}
        for f in report.get("findings", []):
            per_rule[f["rule_id"]] = per_rule.get(f["rule_id"], 0) + 1
        mood = report.get("worst_mood") or {}
        row.update(call_id=report["call_id"], agent_id=report.get("agent_id"), direction=report.get("direction"),
                   started_at=report.get("started_at"), duration_s=report.get("duration_s"), score=report.get("score"),
                   findings=len(report.get("findings", [])), worst_valence=mood.get("valence"),
                   worst_mood=mood.get("label"), speaker_attribution=report.get("speaker_attribution"),
                   **{rid: per_rule.get(rid, 0) for rid in RULE_IDS})
    return row


def batch_csv(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=BATCH_COLUMNS + list(RULE_IDS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return BOM + buf.getvalue()


def call_csv(report: dict[str, Any]) -> str:
    """One call: the transcript line by line with its emotion, then its findings."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "start", "end", "speaker", "text", "valence", "mood", "rule_id", "severity"])
    for u in report.get("utterances", []):
        e = u.get("emotion") or {}
        speaker = u["speaker"] if not u.get("speaker_uncertain") else f"{u.get('speaker_guess')}?"
        w.writerow(["utterance", u["start"], u["end"], speaker, u["text"], e.get("valence", ""), e.get("label", ""), "", ""])
    for f in report.get("findings", []):
        w.writerow(["finding", f["t"], f.get("end") or "", "", f.get("detail", ""), "", "", f["rule_id"], f["severity"]])
    return BOM + buf.getvalue()
