"""One names table for every page (issue 15): the agent screen, the supervisor board, the QA report page and
its CSV name listen.no_silence, complaint.empathy_first and the severity warn as GET /v1/rules/names does, in
a real headless Chromium against a real server on loopback; and a rules file that renames them renames them
on every page. The expected names are read from the served table (or, for the renaming, from the file this
test writes), never copied from the code under test.

The server is light (no models): the feed and page routes, the names endpoint and the QA routes around a real
SQLite store, a feed hub fed by hand, and the rules book the test chooses.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from feedkit import (
    AGENT_TOKENS,
    SUPERVISOR_TOKENS,
    ScriptedCall,
    Server,
    sign_in_agent,
    sign_in_supervisor,
)
from support.page_wait import wait_until
from support.stand_in_state import install_stand_in

SILENCE, EMPATHY = "listen.no_silence", "complaint.empathy_first"
CALL = "c-names"
# The deployment's renaming: the names here are this test's own.
RENAMED_RULES = """
severity_names:
  warn: 留意（本站）
rules:
  listen.no_silence:
    name: 回应客户（本站）
  complaint.empathy_first:
    name: 先表达理解（本站）
"""
RENAMED = {SILENCE: "回应客户（本站）", EMPATHY: "先表达理解（本站）", "warn": "留意（本站）"}

# What the rules found, as the engine reports it (docs/report.md); severities as the shipped rules give them.
FINDINGS = [
    {"rule_id": SILENCE, "severity": "warn", "t": 21.5, "end": 42.0,
     "evidence": [{"kind": "span", "t": 21.5, "end": 42.0, "text": "客户持续讲话"}],
     "detail": "客户连续讲了 20 秒以上，坐席没有任何回应", "prompt": "请适时回应，让客户知道您在听", "seed": "001"},
    {"rule_id": EMPATHY, "severity": "breach", "t": 50.0,
     "evidence": [{"kind": "utterance", "t": 48.0, "end": 50.0, "speaker": "customer", "text": "你们这是什么服务"}],
     "detail": "客户情绪激动 15 秒内没有表达理解或道歉", "prompt": "先表达理解、真诚道歉", "seed": "000"},
]


@dataclass
class NamesRuntime:
    """What the routes under test read: settings (tokens), the feed hub, the store and the rules book."""

    settings: Any
    feed_hub: Any
    store: Any
    rule_book: Any


@dataclass
class Site:
    url: str
    hub: Any
    names: dict[str, Any]  # the table as GET /v1/rules/names serves it
    renamed: bool  # the deployment's rules file is RENAMED_RULES


def names_app(runtime: NamesRuntime) -> Any:
    from fastapi import FastAPI

    from service import agent_feed, names_api
    from service.audit.web import api as audit_api
    from service.audit.web import pages as audit_pages

    app = FastAPI()
    for router in (agent_feed.router, names_api.router, audit_api.router, audit_pages.router):
        app.include_router(router)
    # The state the app's start-up builds, which the routes take as dependencies (the key ring, the runtime).
    return install_stand_in(app, runtime)


@pytest.fixture(params=["shipped", "renamed"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    from rules.config import load_rules_config_text
    from rules.engine import RuleBook
    from service.agent_feed.hub import AgentFeedHub
    from service.persistence.call_store import CallStore
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path, agent_tokens=dict(AGENT_TOKENS), supervisor_tokens=dict(SUPERVISOR_TOKENS))
    store = CallStore(settings.resolved_database_url)
    store.create_call(CALL, "a1", "inbound", "13800138000", "2026-11-23T09:30:12+08:00", {"encoding": "pcm_s16le"})
    store.end_call(CALL, "completed", 60.0)
    store.save_report(CALL, 89.0, {"score": 89.0, "findings": FINDINGS, "deductions": [], "prompts": []})
    renamed = request.param == "renamed"
    hub = AgentFeedHub()
    runtime = NamesRuntime(settings, hub, store, RuleBook(load_rules_config_text(RENAMED_RULES if renamed else None, "site.yaml")))
    server = Server(names_app(runtime)).start()
    try:
        names = httpx.get(f"{server.url}/v1/rules/names", headers={"Authorization": f"Bearer {AGENT_TOKENS['a1']}"},
                          timeout=10).raise_for_status().json()
        yield Site(server.url, hub, names, renamed)
    finally:
        server.stop()
        hub.close()
        store.close()


def wanted(site: Site) -> dict[str, str]:
    return {SILENCE: site.names["rules"][SILENCE], EMPATHY: site.names["rules"][EMPATHY],
            "warn": site.names["severities"]["warn"]}


def agent_screen_names(site: Site, new_page: Any) -> dict[str, str]:
    """The call's end-of-call findings on the agent screen: each rule's name, and the warn finding's severity."""
    page = new_page()
    sign_in_agent(page, site.url, "a1", AGENT_TOKENS["a1"])
    call = ScriptedCall(site.hub, CALL, "a1")
    call.started()
    call.send("ended", status="completed", duration=60.0, utterances=0)
    call.send("report", score=89, findings=[{k: f[k] for k in ("rule_id", "severity", "t", "prompt")} for f in FINDINGS])
    wait_until(page, "document.querySelectorAll('.finding').length === 2")
    shown = {rule: page.locator(f".finding[data-rule='{rule}'] .meta").inner_text().split(" · ")[1]
             for rule in (SILENCE, EMPATHY)}
    shown["warn"] = page.locator(f".finding[data-rule='{SILENCE}'] .sev-icon").get_attribute("aria-label") or ""
    assert page.js_errors == []
    return shown


def qa_report_names(site: Site, new_page: Any) -> dict[str, str]:
    """The QA report page of the same call: the findings table's rule and severity cells."""
    page = new_page()
    page.goto(f"{site.url}/audit/calls/{CALL}?token={SUPERVISOR_TOKENS['lead']}")
    page.wait_for_selector("#findings tr.finding")
    shown = {rule: page.locator(f"#findings tr.finding[data-rule='{rule}'] td").nth(1)
             .evaluate("td => td.firstChild.textContent.trim()") for rule in (SILENCE, EMPATHY)}
    shown["warn"] = page.locator(f"#findings tr.finding[data-rule='{SILENCE}'] td.sev-warn").inner_text().strip()
    assert page.js_errors == []
    return shown


def report_csv_names(site: Site) -> dict[str, str]:
    """The same call's CSV export: the finding rows' rule_name and severity_name."""
    body = httpx.get(f"{site.url}/v1/audit/calls/{CALL}/report.csv",
                     headers={"Authorization": f"Bearer {SUPERVISOR_TOKENS['lead']}"}, timeout=10).raise_for_status()
    rows = {r["rule_id"]: r for r in csv.DictReader(io.StringIO(body.text.lstrip("\ufeff"))) if r["kind"] == "finding"}
    return {SILENCE: rows[SILENCE]["rule_name"], EMPATHY: rows[EMPATHY]["rule_name"],
            "warn": rows[SILENCE]["severity_name"]}


def supervisor_board_name(site: Site, new_page: Any) -> str:
    """A live prompt's pill on the supervisor board."""
    page = new_page()
    sign_in_supervisor(page, site.url, "lead", SUPERVISOR_TOKENS["lead"])
    call = ScriptedCall(site.hub, "c-board", "a2")
    call.started()
    call.send("prompt", prompt_id=f"{SILENCE}@21.5", rule_id=SILENCE, severity="warn", t=21.5,
              evidence="客户持续讲话", text="请适时回应", recovery=None)
    pill = page.locator("tr[data-call-id='c-board'] .pill")
    pill.wait_for()
    assert page.js_errors == []
    return pill.inner_text().strip()


def test_every_page_names_rules_and_severities_from_the_one_table(site: Site, new_page: Any) -> None:
    table = wanted(site)
    if site.renamed:
        assert table == RENAMED  # the rules file renamed them, in the table served
    else:
        assert len(set(table.values())) == 3 and all(v not in (SILENCE, EMPATHY, "warn") for v in table.values())
    assert agent_screen_names(site, new_page) == table
    assert qa_report_names(site, new_page) == table
    assert report_csv_names(site) == table
    assert supervisor_board_name(site, new_page) == table[SILENCE]
