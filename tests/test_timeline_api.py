"""The timeline audit over REST and the command line, against the real server and CLI."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

TIMELINES = Path(__file__).parent / "data" / "timelines"
SWITCHED_OFF = "rules:\n  opening.bare_wei:\n    enabled: false\n"


def a_timeline_with_a_bare_wei():
    """A hand-labelled call whose expected findings include a bare 喂, with its deployment's rules file."""
    for path in sorted(TIMELINES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if any(e["rule_id"] == "opening.bare_wei" for e in data.get("expected", [])):
            return path, data, TIMELINES / data["rules_file"]
    raise AssertionError("the labelled set has no bare-喂 call")


def test_rest_audit_finds_the_bare_wei_and_a_rules_override_changes_the_judgement(live_server):
    _, timeline, rules_file = a_timeline_with_a_bare_wei()
    deployment = rules_file.read_text(encoding="utf-8")
    report = httpx.post(f"{live_server.url}/v1/audit-timeline",
                        json={"timeline": timeline, "rules_yaml": deployment}, timeout=30).json()
    assert "opening.bare_wei" in {f["rule_id"] for f in report["findings"]}
    assert report["score"] < 100

    report = httpx.post(f"{live_server.url}/v1/audit-timeline",
                        json={"timeline": timeline, "rules_yaml": deployment + "\n" + SWITCHED_OFF}, timeout=30).json()
    assert "opening.bare_wei" not in {f["rule_id"] for f in report["findings"]}


def test_rest_audit_refuses_a_bad_timeline_with_the_place_named(live_server):
    bad = {"call_id": "x", "direction": "inbound", "started_at": "2026-11-23T10:00:00+08:00",
           "events": [{"type": "explode", "t": 1.0}]}
    response = httpx.post(f"{live_server.url}/v1/audit-timeline", json={"timeline": bad}, timeout=30)
    assert response.status_code == 422
    assert "events[0]" in response.json()["detail"]


@pytest.mark.slow  # a process of its own, with the models
def test_cli_prints_the_report_and_exits_2_on_a_bad_rules_file(tmp_path):
    path, _, rules_file = a_timeline_with_a_bare_wei()
    done = subprocess.run([sys.executable, "-m", "service.cli", "audit-timeline", str(path), "--rules", str(rules_file)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "opening.bare_wei" in {f["rule_id"] for f in json.loads(done.stdout)["findings"]}

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  answer.rings:\n    thresholds_typo: 3\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "service.cli", "audit-timeline", str(path), "--rules", str(rules)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "rules.yaml" in done.stderr and "Traceback" not in done.stderr
