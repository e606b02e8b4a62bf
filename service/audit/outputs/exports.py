"""CSV for spreadsheets: a batch (one row per call, one column per rule) and one call's transcript.

Written with a UTF-8 byte-order mark: Excel, which most QA teams open these in, reads Chinese correctly only
with it; other tools ignore it. Every CSV the service writes goes through `spreadsheet_csv`, which keeps a
text cell from being read as a formula (`spreadsheet_cell`).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

from rules.catalog import RULE_IDS
from rules.names import NameTable

BATCH_COLUMNS = ["file_name", "call_id", "state", "error", "agent_id", "direction", "started_at", "duration_s",
                 "score", "findings", "worst_valence", "worst_mood", "speaker_attribution"]
BOM = "\ufeff"
# What makes Excel, LibreOffice and Google Sheets read a cell as a formula (OWASP, "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (an agent id `=HYPERLINK(…)` from a start frame or
    a metadata CSV) gets a leading `'`, which spreadsheets show as text. Numbers stay numbers: a valence of
    -0.41 is written as it is."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with the byte-order mark, every cell through `spreadsheet_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([spreadsheet_cell(c) for c in header])
    for row in rows:
        writer.writerow([spreadsheet_cell(c) for c in row])
    return BOM + buf.getvalue()


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
    columns = BATCH_COLUMNS + list(RULE_IDS)
    return spreadsheet_csv(columns, ([row.get(c) for c in columns] for row in rows))


def call_csv(report: dict[str, Any], names: NameTable) -> str:
    """One call: the transcript line by line with its emotion, then its findings. A finding's rule and severity
    are written as ids (for programs) and, in the last two columns, as `names` calls them (for people, the same
    names as the report page)."""
    rows: list[list[Any]] = []
    for u in report.get("utterances", []):
        e = u.get("emotion") or {}
        speaker = u["speaker"] if not u.get("speaker_uncertain") else f"{u.get('speaker_guess')}?"
        rows.append(["utterance", u["start"], u["end"], speaker, u["text"], e.get("valence", ""), e.get("label", ""),
                     "", "", "", ""])
    for f in report.get("findings", []):
        rows.append(["finding", f["t"], f.get("end") or "", "", f.get("detail", ""), "", "", f["rule_id"], f["severity"],
                     names.rule(f["rule_id"]), names.severity(f["severity"])])
    return spreadsheet_csv(["kind", "start", "end", "speaker", "text", "valence", "mood", "rule_id", "severity",
                            "rule_name", "severity_name"], rows)
