"""The work queue and the sampling plans' pages in a real headless Chromium, against a real server on loopback
with a real SQLite database (two audited calls of the week of 2026-11-23, each with a breach: promise.rash)
and a real keys file:

- the supervisor opens its plan on /qa/plans, runs it over that week, and sees the calls it picked;
- the reviewer's queue (/qa/queue) lists each picked call with why (the plan, the reason), its agent, start
  and automatic score, and its link opens the call's review page;
- a reviewer with nothing assigned is told so; an agent's key, a wrong key and a QA key on the plans each get
  a sentence, not the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.qa_app import Principals
from support.served_qa_site import ServedSite, served_qa_site
from support.stored_reports import AUTOMATIC_SCORE

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "qa"
CALL, OTHER_CALL = "20261123-0930-000123", "20261123-1000-000456"  # agent A1042's; agent A1043's
STARTED = "2026-11-23 09:30"  # support/audited_call.py stores each call as started then (the phone system's clock)
WEEK = "2026-11-23"
PLAN = "每周严重违规必查"
PRINCIPALS: Principals = {
    "wang.li": ("supervisor", "acme", ["east-1"]),
    "qa.li": ("qa", "acme", None),
    "qa.zhou": ("qa", "acme", None),
    "A1042": ("agent", "acme", "east-1"),
    "A1043": ("agent", "acme", "east-1"),
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedSite]:
    with served_qa_site(tmp_path, PRINCIPALS, {CALL: ("A1042", "acme"), OTHER_CALL: ("A1043", "acme")}) as served:
        yield served


@pytest.fixture
def plan_id(site: ServedSite) -> str:
    """A plan that samples nothing and picks every call with a breach, for qa.li alone."""
    plan = site.api("POST", "/v1/qa/plans", "wang.li", {"name": PLAN, "share": 0, "severities": ["breach"],
                                                         "negative_end": False, "reviewers": ["qa.li"]})
    return str(plan["plan_id"])


def shot(page: Any, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def test_the_supervisor_runs_a_plan_and_the_reviewer_finds_the_picked_call_with_why_and_opens_its_review(
        site: ServedSite, new_page: Any, plan_id: str) -> None:
    supervisor = new_page()
    supervisor.goto(site.page("/qa/plans", "wang.li"))
    listed = supervisor.locator(f'#plans-body tr.plan[data-plan-id="{plan_id}"]')
    listed.wait_for()
    assert PLAN in listed.inner_text() and "qa.li" in listed.inner_text()
    listed.locator("a.open-plan").click()
    supervisor.wait_for_selector("#one:not([hidden])")
    supervisor.fill("#run-week", "2026-11-26")  # any day of the week: its Monday is meant
    supervisor.click("#run-submit")
    supervisor.wait_for_selector(f'#picks-body tr.pick[data-call-id="{CALL}"]')
    assert "选中 2 通" in supervisor.locator("#run-result").inner_text()  # both calls have a breach
    picked = supervisor.locator(f'#picks-body tr.pick[data-call-id="{CALL}"]')
    assert picked.get_attribute("data-reviewer") == "qa.li" and WEEK in picked.inner_text()
    shot(supervisor, "plan-picks")

    reviewer = new_page()
    reviewer.goto(site.page("/qa/queue", "qa.li"))
    item = reviewer.locator(f'#queue-body tr.queue-item[data-call-id="{CALL}"]')
    item.wait_for()
    assert reviewer.locator("#queue-body tr.queue-item").count() == 2
    assert item.get_attribute("data-kind") == "sample" and item.get_attribute("data-state") == "not_started"
    # Why: the plan and the reason (a breach: promise.rash at 120 s), with the call's agent, start and score.
    assert item.locator(".source .plan").inner_text() == PLAN
    reason = item.locator('ul.reasons li[data-code="severe_finding"]')
    assert "严重发现" in reason.inner_text() and "promise.rash" in reason.locator(".detail").inner_text()
    cells = item.locator("td").all_inner_texts()
    assert cells[1] == "A1042" and cells[2] == STARTED and item.locator(".automatic").inner_text() == f"{AUTOMATIC_SCORE:.1f}"
    shot(reviewer, "queue")
    item.locator("a.open-work").click()
    reviewer.wait_for_url(f"**/qa/calls/{CALL}/review")
    reviewer.wait_for_selector("#start-review")  # the call's review page, its review not yet opened
    assert reviewer.locator("#automatic-score").inner_text() == f"{AUTOMATIC_SCORE:.1f}"
    reviewer.click("#start-review")
    reviewer.wait_for_selector('#review-state[data-state="open"]')

    reviewer.goto(site.page("/qa/queue", None))  # the queue now says how far it is
    reviewer.wait_for_selector(f'#queue-body tr.queue-item[data-call-id="{CALL}"][data-state="in_progress"]')
    for page in (supervisor, reviewer):
        assert not page.js_errors, page.js_errors


def test_a_reviewer_with_nothing_assigned_is_told_so(site: ServedSite, new_page: Any, plan_id: str) -> None:
    site.api("POST", f"/v1/qa/plans/{plan_id}/runs", "wang.li", {"week": WEEK})
    page = new_page()
    page.goto(site.page("/qa/queue", "qa.zhou"))
    page.wait_for_selector("#queue-empty:not([hidden])")
    assert "空" in page.locator("#queue-empty").inner_text() and page.locator("#queue").is_hidden()
    assert not page.js_errors, page.js_errors


def test_an_agent_a_wrong_key_and_a_qa_key_on_the_plans_are_refused_in_words(site: ServedSite, new_page: Any,
                                                                               plan_id: str) -> None:
    site.api("POST", f"/v1/qa/plans/{plan_id}/runs", "wang.li", {"week": WEEK})
    agent = new_page()
    agent.goto(site.page("/qa/queue", "A1042"))
    agent.wait_for_selector('#notice[data-status="403"]')
    assert "无权访问" in agent.locator("#notice").inner_text() and agent.locator("#content").is_hidden()
    assert agent.locator("#signin").is_visible()

    stranger = new_page()
    stranger.goto(f"{site.url}/qa/queue?token=cw_not-a-key-of-this-deployment")
    stranger.wait_for_selector('#notice[data-status="403"]')
    assert CALL not in stranger.content()

    reviewer = new_page()
    reviewer.goto(site.page(f"/qa/plans/{plan_id}", "qa.li"))  # plans are the supervisors'
    reviewer.wait_for_selector('#notice[data-status="403"]')
    assert PLAN not in reviewer.content()
    for page in (agent, stranger, reviewer):
        assert not page.js_errors, page.js_errors
