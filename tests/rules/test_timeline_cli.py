"""Bad input gives one clear message and exit code 2, never a traceback."""

import io
import json
from pathlib import Path

import pytest

from rules.cli import EXIT_BAD_INPUT, EXIT_OK, audit_timeline_main
from rules.timeline import TimelineError, load_timeline, parse_timeline

GOOD = {
    "call_id": "c1",
    "direction": "inbound",
    "started_at": "2024-05-13T10:00:00",
    "events": [{"type": "ringing", "t": 0}, {"type": "answered", "t": 5}, {"type": "hangup", "t": 30, "by": "customer"}],
    "utterances": [
        {"speaker": "agent", "start": 5.5, "end": 9, "text": "您好，顺丰快递，请问有什么可以帮您？"},
        {"speaker": "customer", "start": 9.5, "end": 12, "text": "我查快递。"},
    ],
}


def run(tmp_path: Path, data: object, rules: str | None = None) -> tuple[int, str, str]:
    path = tmp_path / "call.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    rules_path = None
    if rules is not None:
        rules_path = tmp_path / "rules.yaml"
        rules_path.write_text(rules, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = audit_timeline_main(path, rules_path, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_good_timeline_prints_report(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, GOOD, "deployment:\n  company_name: 顺丰快递\n")
    assert code == EXIT_OK and not err
    report = json.loads(out)
    assert {"findings", "score", "figures", "deductions"} <= set(report)
    for f in report["findings"]:
        assert {"rule_id", "severity", "t", "evidence", "prompt"} <= set(f)


def test_annotation_keys_are_ignored(tmp_path: Path) -> None:
    code, _, _ = run(tmp_path, {**GOOD, "expected": [{"rule_id": "x", "t": 1}], "rules_file": "x.yaml", "title": "t"})
    assert code == EXIT_OK


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["events"].reverse(), "out of order"),
        (lambda d: d["events"].insert(1, {"type": "ringback", "t": 1}), "events[1].type"),
        (lambda d: d["utterances"][0].pop("speaker"), "utterances[0].speaker: required field is missing"),
        (lambda d: d["utterances"][1].update(speaker="robot"), "utterances[1].speaker"),
        (lambda d: d["events"][2].pop("by"), "hangup event needs 'by'"),
        (lambda d: d["utterances"][0].update(end=1), "end (1.0) is before start"),
        (lambda d: d.update(direction="sideways"), "direction"),
        (lambda d: d.pop("call_id"), "call_id: required field is missing"),
        (lambda d: d.update(colour="blue"), "colour"),
    ],
)
def test_bad_timeline(tmp_path: Path, mutate, needle: str) -> None:
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    code, out, err = run(tmp_path, data)
    assert code == EXIT_BAD_INPUT and not out
    assert needle in err
    assert "Traceback" not in err


def test_not_json(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, '{"call_id": "c1",\n  oops}')
    assert code == EXIT_BAD_INPUT and "line 2" in err and "not valid JSON" in err


def test_missing_file(tmp_path: Path) -> None:
    code = audit_timeline_main(tmp_path / "nope.json", None, out=io.StringIO(), err=(err := io.StringIO()))
    assert code == EXIT_BAD_INPUT and "cannot read" in err.getvalue()


def test_bad_rules_file(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, GOOD, "rules:\n  answer.ring:\n    enabled: false\n")
    assert code == EXIT_BAD_INPUT and not out
    assert "unknown rule id 'answer.ring'" in err and "line 2" in err


def test_load_timeline_errors_are_timeline_errors(tmp_path: Path) -> None:
    with pytest.raises(TimelineError):
        parse_timeline([1, 2, 3])
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(TimelineError, match="JSON object"):
        load_timeline(tmp_path / "x.json")


def test_module_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**GOOD, "events": [{"type": "explode", "t": 0}]}))
    proc = subprocess.run([sys.executable, "-m", "rules.cli", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "events[0].type" in proc.stderr and "Traceback" not in proc.stderr
