"""Call metadata from file names and CSV files."""

from datetime import datetime

import pytest

from service.audit.ids import recording_call_id
from service.audit.metadata import MetadataError, meta_from_name, read_metadata_csv, resolve_meta
from service.audit.models import RecordingMeta


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
