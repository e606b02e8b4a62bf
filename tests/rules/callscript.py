"""Helpers for the rules tests: write a call as a short script, audit it.

(A plain module, not a conftest: tests/rules has no __init__.py, so that it cannot
shadow the ``rules`` package.)
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

from rules.config import load_rules_config_text
from rules.engine import RuleBook, audit_timeline
from rules.findings import CallReport
from rules.timeline import CallTimeline, parse_timeline

DATA = Path(__file__).resolve().parent.parent / "data" / "timelines"

_spec = importlib.util.spec_from_file_location("build_timelines", DATA / "build_timelines.py")
assert _spec and _spec.loader
build_timelines = importlib.util.module_from_spec(_spec)
sys.modules["build_timelines"] = build_timelines
_spec.loader.exec_module(build_timelines)

BASE_RULES = """
deployment:
  company_name: 顺丰快递
  company_aliases: [顺丰]
"""

_books: dict[str, RuleBook] = {}


def rulebook(extra_yaml: str = "") -> RuleBook:
    text = BASE_RULES + textwrap.dedent(extra_yaml)
    if text not in _books:
        _books[text] = RuleBook(load_rules_config_text(text, "test-rules.yaml"))
    return _books[text]


def script_timeline(script: str, *, direction: str = "inbound", started_at: str = "2024-05-13T10:00:00", related: str | None = None) -> CallTimeline:
    header = [f"direction: {direction}", f"started_at: {started_at}", "deployment: test"]
    if related is not None:
        header.append(f"related: {related}")
    lines = header + textwrap.dedent(script).strip("\n").splitlines()
    data = build_timelines.build_call("test-call", lines)
    return parse_timeline(data)


def audit(script: str, rules_yaml: str = "", **kw: str) -> CallReport:
    return audit_timeline(script_timeline(script, **kw), rulebook(rules_yaml))


def times(report: CallReport, rule_id: str) -> list[float]:
    return [f.t for f in report.findings if f.rule_id == rule_id]


# A well-behaved opening and closing to wrap the part of a call a test is about.
OPEN = """
ring 0
answered 5
A +0.5 您好，顺丰快递，请问有什么可以帮您？
C 你好，我想查一下我的快递。
A 好的，请问您的运单号是多少？
C SF1302558872146。
"""
CLOSE = """
A 好的，还有其他可以帮您的吗？
C 没有了，谢谢。
A 不客气，感谢您的来电，再见。
hangup +1.5 customer
"""
