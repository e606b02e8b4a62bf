"""Call metadata for recordings: a CSV beside the files, the file name, or the request.

CSV columns (header row, any order, unknown columns ignored): `file` (the recording's file name, required),
`agent_id`, `direction` (inbound/outbound, 呼入/呼出), `started_at` (ISO 8601), `caller_number`, and the
call events as seconds on the recording's clock: `ringing_at`, `answered_at`, `hold_at`, `resume_at`,
`transfer_at`, `hangup_at` with `hangup_by` (agent/customer/system). File names like
`A1042_20261123-093012_13800138000_in.wav` are read token by token (see `meta_from_name`). The CSV may be
UTF-8 (with or without BOM) or GB18030/GBK, as Excel on a Chinese Windows saves it (rules/encodings.py).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

from rules.encodings import UndecodableText, decode_text
from service.audit.web.models import MetaEvent, RecordingMeta

EVENT_COLUMNS = ("ringing", "answered", "hold", "resume", "transfer", "hangup")
_DIRECTIONS = {"in": "inbound", "inbound": "inbound", "呼入": "inbound", "out": "outbound", "outbound": "outbound",
               "呼出": "outbound"}
_HANGUP_BY = {"agent": "agent", "坐席": "agent", "customer": "customer", "客户": "customer", "system": "system",
              "系统": "system"}


class MetadataError(ValueError):
    """A metadata CSV that cannot be used; names the file and row."""


def _datetime(token: str) -> datetime | None:
    digits = re.sub(r"[-_T:]", "", token)
    if re.fullmatch(r"\d{14}", digits):
        try:
            return datetime.strptime(digits, "%Y%m%d%H%M%S")
        except ValueError:
            return None
    return None


def meta_from_name(file_name: str) -> RecordingMeta:
    """Read what a recorder's file name says: a date-time (YYYYMMDD-HHMMSS, YYYYMMDDHHMMSS or a date token
    followed by a time token), a phone number (mobile or with an area code), a direction word, and an
    agent id (letters then digits, e.g. A1042 or agent-7). A token that fits nothing is ignored."""
    tokens = [t for t in re.split(r"[_\s]+", Path(file_name).stem) if t]
    found: dict[str, object] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        low = tok.lower()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if "started_at" not in found and re.fullmatch(r"\d{8}", tok) and re.fullmatch(r"\d{6}", nxt):
            when = _datetime(tok + nxt)
            if when:
                found["started_at"] = when
                i += 2
                continue
        if "started_at" not in found and (when := _datetime(tok)):
            found["started_at"] = when
        elif low in _DIRECTIONS and "direction" not in found:
            found["direction"] = _DIRECTIONS[low]
        elif re.fullmatch(r"(\+?86)?1[3-9]\d{9}|0\d{9,11}", tok) and "caller_number" not in found:
            found["caller_number"] = tok
        elif re.fullmatch(r"(?i)(agent|坐席)?[-]?[A-Za-z]{1,8}[-]?\d{1,8}", tok) and "agent_id" not in found:
            found["agent_id"] = tok
        i += 1
    return RecordingMeta.model_validate(found)


def _events(row: dict[str, str], where: str) -> list[MetaEvent] | None:
    events: list[MetaEvent] = []
    for name in EVENT_COLUMNS:
        value = (row.get(f"{name}_at") or "").strip()
        if not value:
            continue
        try:
            t = float(value)
        except ValueError:
            raise MetadataError(f"{where}: {name}_at must be seconds on the recording's clock, got {value!r}") from None
        by = None
        if name == "hangup":
            by = _HANGUP_BY.get((row.get("hangup_by") or "").strip().lower(), "system")
        events.append(MetaEvent(event=name, t=t, by=by))
    return sorted(events, key=lambda e: e.t) or None


def read_metadata_csv(path: Path) -> dict[str, RecordingMeta]:
    """File name → metadata, from one CSV. Raises MetadataError naming the row for a bad value, or the file
    when it is text in no encoding it may be in or no CSV."""
    try:
        text = decode_text(path.read_bytes(), path.name)
    except UndecodableText as err:
        raise MetadataError(str(err)) from None
    try:
        return _rows_meta(csv.DictReader(io.StringIO(text, newline="")), path.name)
    except csv.Error as err:  # a field over the csv module's size limit, a stray quote in strict mode
        raise MetadataError(f"{path.name}: not a CSV file the service can read: {err}") from None


def _rows_meta(reader: csv.DictReader[str], file_name: str) -> dict[str, RecordingMeta]:
    out: dict[str, RecordingMeta] = {}
    if not reader.fieldnames or "file" not in [f.strip() for f in reader.fieldnames]:
        return out
    for n, raw in enumerate(reader, start=2):
        # Cells past the header's columns come under the key None, as a list: not a column of ours.
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{file_name}, row {n}"
        name = Path(row.get("file", "")).name
        if not name:
            continue
        direction = row.get("direction", "").lower()
        try:
            meta = RecordingMeta(
                agent_id=row.get("agent_id") or None,
                direction=_DIRECTIONS.get(direction) if direction else None,
                started_at=row.get("started_at") or None,
                caller_number=row.get("caller_number") or None,
                events=_events(row, where),
            )
        except ValueError as err:
            raise MetadataError(f"{where}: {err}") from None
        out[name] = meta
    return out


def metadata_beside(folder: Path) -> dict[str, RecordingMeta]:
    """Every CSV in `folder` with a `file` column, merged (a later file name wins)."""
    merged: dict[str, RecordingMeta] = {}
    for csv_path in sorted(folder.glob("*.csv")):
        merged.update(read_metadata_csv(csv_path))
    return merged


def resolve_meta(file_name: str, beside: dict[str, RecordingMeta], request: RecordingMeta | None) -> RecordingMeta:
    meta = meta_from_name(file_name)
    if file_name in beside:
        meta = beside[file_name].merged_over(meta)
    if request is not None:
        meta = request.merged_over(meta)
    return meta
