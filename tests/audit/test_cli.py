"""`callwatch audit` as a user runs it (its own runtime, settings from the environment)."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from service.audit.cli import audit, reaudit

app = typer.Typer()
app.command("audit")(audit)
app.command("reaudit")(reaudit)


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["audit", str(tmp_path), "--format", "pdf"])
    assert r.exit_code == 2 and "--format" in r.output
    r = runner.invoke(app, ["audit", str(tmp_path / "missing.wav")])
    assert r.exit_code == 2 and "not found" in r.output
    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text("rules:\n  opening.greeting:\n    weight: -1\n", encoding="utf-8")
    r = runner.invoke(app, ["audit", str(tmp_path), "--rules", str(bad_rules)])
    assert r.exit_code == 2 and "line" in r.output


@pytest.mark.slow  # the real command in a process of its own, with the models
def test_audit_command_writes_reports_and_summary(tmp_path, shared_audio, monkeypatch, settings):
    monkeypatch.setenv("CALLWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLWATCH_CACHE_DIR", str(settings.cache_dir))
    folder = tmp_path / "week"
    folder.mkdir()
    shutil.copy(shared_audio / "calls" / "call_01_read_vs_spontaneous.wav", folder / "A1001_20261123-101500.wav")
    (folder / "empty.wav").write_bytes(b"")
    rules = tmp_path / "site.yaml"
    rules.write_text("deployment:\n  company_name: 测试公司\n", encoding="utf-8")
    out = tmp_path / "reports"
    r = CliRunner().invoke(app, ["audit", str(folder), "--rules", str(rules), "--format", "html", "--format", "json",
                                 "--out", str(out), "--quiet"])
    assert r.exit_code == 1, r.output  # one file failed
    assert "2 recording(s), 1 failed" in r.output
    report = json.loads((out / "A1001_20261123-101500.json").read_text(encoding="utf-8"))
    assert report["agent_id"] == "A1001" and report["rules"] == "site.yaml"
    greeting = next(f for f in report["findings"] if f["rule_id"] == "opening.greeting")
    assert "测试公司" in greeting["detail"] + greeting["prompt"]  # the batch's rules, not the defaults
    assert (out / "A1001_20261123-101500.html").is_file() and (out / "index.html").is_file()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 1} and summary["rules"] == "site.yaml"
