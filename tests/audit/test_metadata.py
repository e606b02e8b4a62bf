"""Call metadata from file names and CSV files."""

from datetime import datetime

import pytest

from service.audit.intake.ids import recording_call_id
from service.audit.intake.metadata import MetadataError, meta_from_name, read_metadata_csv, resolve_meta
from service.audit.web.models import RecordingMeta


@pytest.mark.parametrize("name, expected", [
    ("A1042_20261123-093012_13800138000_in.wav",
     {"agent_id": "A1042", "started_at": datetime(2026, 11, 23, 9, 30, 12), "caller_number": "13800138000", "direction": "inbound"}),
    ("20261123_093012_agent-7_out.mp3", {"agent_id": "agent-7", "started_at": datetime(2026, 11, 23, 9, 30, 12), "direction": "outbound"}),
    ("呼出_01055123456_KF2003.wav", {"agent_id": "KF2003", "caller_number": "01055123456", "direction": "outbound"}),
    ("recording.wav", {}),
])
def test_metadata_from_the_file_name(name, expected):
    assert meta_from_name(name).model_dump(exclude_none=True) == expected


def test_metadata_csv_with_events_and_precedence(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("\ufefffile,agent_id,direction,started_at,answered_at,hangup_at,hangup_by,extra\n"
                    "A1_20260101-080000.wav,A9,呼入,2026-11-23T09:30:00+08:00,3.5,60,客户,x\n", encoding="utf-8")
    meta = read_metadata_csv(path)["A1_20260101-080000.wav"]
    assert meta.agent_id == "A9" and meta.direction == "inbound"
    assert [(e.event, e.t, e.by) for e in meta.events] == [("answered", 3.5, None), ("hangup", 60.0, "customer")]
    merged = resolve_meta("A1_20260101-080000.wav", {"A1_20260101-080000.wav": meta}, RecordingMeta(agent_id="REQ"))
    assert merged.agent_id == "REQ"  # the request wins over the CSV
    assert merged.started_at.isoformat() == "2026-11-23T09:30:00+08:00"  # the CSV wins over the name


def test_a_bad_csv_value_names_the_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("file,answered_at\na.wav,soon\n", encoding="utf-8")
    with pytest.raises(MetadataError, match=r"m.csv, row 2: answered_at"):
        read_metadata_csv(path)


def test_call_ids_are_stable_and_safe():
    a = recording_call_id("ab" * 32, "录音 2026/11 A1.wav")
    assert a == recording_call_id("ab" * 32, "录音 2026/11 A1.wav")
    assert a != recording_call_id("cd" * 32, "录音 2026/11 A1.wav")
    assert a.startswith("rec-") and all(c.isalnum() or c in "._:-" for c in a) and len(a) <= 128


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_a_metadata_csv_in_utf8_or_gbk_reads_the_same(tmp_path, encoding):
    """Excel on a Chinese Windows saves a CSV as GBK unless told otherwise."""
    path = tmp_path / "calls.csv"
    path.write_bytes("file,agent_id,direction,hangup_at,hangup_by\n录音一.wav,坐席A1,呼出,60,客户\n".encode(encoding))
    meta = read_metadata_csv(path)["录音一.wav"]
    assert meta.agent_id == "坐席A1" and meta.direction == "outbound" and meta.events[0].by == "customer"


@pytest.mark.parametrize("content, message", [
    ("file,agent_id\n录音一.wav,A1\n".encode("utf-16"), r"calls.csv: not text in UTF-8 .* nor in GB18030"),
    (b"file,agent_id\na.wav," + b"x" * 200_000 + b"\n", r"calls.csv: not a CSV file"),  # over csv's field limit
], ids=["utf-16", "field-over-the-limit"])
def test_a_metadata_csv_that_cannot_be_read_names_the_file(tmp_path, content, message):
    path = tmp_path / "calls.csv"
    path.write_bytes(content)
    with pytest.raises(MetadataError, match=message):
        read_metadata_csv(path)


def test_cells_past_the_header_are_ignored(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("file,agent_id\na.wav,A1,extra,cells\n", encoding="utf-8")
    assert read_metadata_csv(path)["a.wav"].agent_id == "A1"
