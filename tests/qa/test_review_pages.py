"""The QA review pages in a real headless Chromium, against a real server on loopback with a real SQLite
database holding audited calls (a recording, its transcript and automatic findings, as `callwatch audit`
stores them) and a real keys file:

- a reviewer hears the call, clicks a transcript line (the audio seeks there, the line is marked), rejects
  one finding and adds one at the playback position, submits, and the page shows the reviewed score the
  API computes and the history of both;
- the agent acknowledges and disputes a finding, the team's supervisor overturns it, and the agent's page
  shows the ruling and the new score;
- an agent's key on another agent's review, a missing key and a key of the wrong role each get a sentence;
- what people type (a reason, a comment) is shown as text, never as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from support.audited_call import LINES, LightRuntime, store_audited_call, write_keys
from support.live_server import LiveServer
from support.page_wait import wait_until
from support.served_qa_site import ServedSite
from support.stand_in_state import install_stand_in

from service.app import create_app
from service.persistence.call_store import CallStore
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "qa"  # screenshots of each page as the tests leave it, to look at
CALL, OTHER_CALL = "20261123-0930-000123", "20261123-1000-000456"  # agent A1042's; agent A1043's

# What people type, with markup in it: it must come back as these very characters.
REJECT_REASON = "恢复通话时已致歉，识别有误 <b>粗体</b>"
ADDED_NOTE = "客户投诉时未先安抚情绪"
COMMENT = '客户先说了再见才挂断 <img src=x onerror="document.title=\'pwned\'">'
RULING_REASON = "<i>录音证实</i>客户先道别，撤销该项"


class Site(ServedSite):
    """The served site, with the review steps these tests take through the API."""

    def review_of(self, call_id: str) -> dict[str, Any]:
        reviews = self.api("GET", f"/v1/qa/reviews?call_id={call_id}", "qa.li")["reviews"]
        assert len(reviews) == 1
        return dict(self.api("GET", f"/v1/qa/reviews/{reviews[0]['review_id']}", "qa.li"))

    def reviewed_by_api(self, call_id: str) -> str:
        """The call reviewed as the reviewer's test does in the browser: the hold.apology at 95 s rejected,
        complaint.empathy_first added, the rest confirmed, submitted (reviewed score 80)."""
        review = self.api("POST", f"/v1/qa/calls/{call_id}/review", "qa.li")
        path = f"/v1/qa/reviews/{review['review_id']}"
        for f in review["findings"]:
            body = ({"decision": "reject", "reason": REJECT_REASON} if (f["rule_id"], f["t"]) == ("hold.apology", 95.0)
                    else {"decision": "confirm"})
            self.api("POST", f"{path}/findings/{f['finding_id']}/decision", "qa.li", body)
        self.api("POST", f"{path}/findings", "qa.li", {"rule_id": "complaint.empathy_first", "t": 5.0, "note": ADDED_NOTE})
        assert self.api("POST", f"{path}/submit", "qa.li")["reviewed_score"] == 80.0
        return str(review["review_id"])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    keys = write_keys(tmp_path / "keys.yaml")
    store = CallStore(f"sqlite:///{tmp_path / 'callwatch.db'}")
    store_audited_call(store, tmp_path, CALL, "A1042", "acme")
    store_audited_call(store, tmp_path, OTHER_CALL, "A1043", "acme")
    app = install_stand_in(create_app(), LightRuntime(Settings(data_dir=tmp_path, keys_file=tmp_path / "keys.yaml"), store))
    try:
        with LiveServer(app, lifespan="off") as served, httpx.Client(base_url=served.url, timeout=30) as http:
            yield Site(served.url, keys, http)
    finally:
        store.close()


def shot(page: Any, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky player where a reader first sees it
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def row(page: Any, rule_id: str, t: float | None = None) -> Any:
    selector = f'#findings-body tr.finding[data-rule="{rule_id}"]' + (f'[data-t="{t:g}"]' if t is not None else "")
    return page.locator(selector)


# ---------------------------------------------------------------- the reviewer


def test_a_reviewer_hears_rejects_one_adds_one_submits_and_sees_the_apis_score_and_history(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page("/audit/calls", "qa.li"))  # from the call list, as a reviewer starts
    assert "token=" not in page.url  # the key went into the cookie, not the history
    page.locator(f'#calls tr.call[data-call-id="{CALL}"] a.review-link').click()
    page.wait_for_url(f"**/qa/calls/{CALL}/review")
    page.wait_for_selector("#start-review")
    assert page.locator("#automatic-score").inner_text() == "85.0"
    page.click("#start-review")
    page.wait_for_selector('#findings-body tr.finding[data-decision="pending"]')
    assert page.locator('#findings-body tr.finding[data-decision="pending"]').count() == 4
    assert page.locator("#timeline .marker").count() == 4  # the findings on the timeline under the waveform
    page.wait_for_selector('#waveform[data-drawn="1"]')  # decoded from the recording and drawn
    assert page.locator("#transcript li.utt").count() == len(LINES)

    # Clicking a line seeks the audio there, and the line being played is marked.
    line = page.locator('#transcript li.utt[data-start="4.5"]')
    assert page.evaluate("document.getElementById('audio').currentTime") < 1
    line.click()
    wait_until(page, "Math.abs(document.getElementById('audio').currentTime - 4.5) < 1.5")
    page.wait_for_selector('#transcript li.utt.playing[data-start="4.5"]')
    assert line.get_attribute("aria-current") == "true"
    page.evaluate("document.getElementById('audio').pause()")
    heard = page.evaluate("document.getElementById('audio').currentTime")

    # Decide every automatic finding: the hold.apology at 95 s rejected with a reason, the rest confirmed.
    rejected = row(page, "hold.apology", 95)
    rejected.locator("button.reject").click()
    rejected.locator("textarea.reason-input").fill(REJECT_REASON)
    rejected.locator("button.reject-ok").click()
    page.wait_for_selector('#findings-body tr.finding[data-rule="hold.apology"][data-t="95"][data-decision="rejected"]')
    for rule_id, t in (("hold.apology", 40), ("promise.rash", 120), ("closing.caller_hangs_up_first", 180)):
        row(page, rule_id, t).locator("button.confirm").click()
        page.wait_for_selector(f'#findings-body tr.finding[data-rule="{rule_id}"][data-t="{t}"][data-decision="confirmed"]')

    # Add what the rules missed, at the position being heard.
    page.select_option("#add-rule", "complaint.empathy_first")
    page.fill("#add-note", ADDED_NOTE)
    page.click("#add-submit")
    added = page.locator('#findings-body tr.finding[data-source="added"]')
    added.wait_for()
    assert abs(float(added.get_attribute("data-t")) - heard) < 0.2
    assert added.locator(".note").inner_text().endswith(ADDED_NOTE)
    assert page.locator("#timeline .marker").count() == 5
    shot(page, "review-open")

    page.click("#submit-review")
    page.wait_for_selector('#review-state[data-state="submitted"]')
    review = site.review_of(CALL)
    assert review["state"] == "submitted" and review["reviewed_score"] == 80.0  # 100 − 3 − 5 − 4 − 8
    assert page.locator("#reviewed-score").inner_text() == f"{review['reviewed_score']:.1f}"
    assert page.locator("#automatic-score").inner_text() == "85.0"
    assert page.locator("#findings-body button.confirm").count() == 0  # decisions are final once submitted

    # The history: who, when, what, why, for both changes; the reason as the characters typed.
    page.wait_for_selector('#history-body tr.entry[data-action="submitted"]')
    actions = page.locator("#history-body tr.entry").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions == ["opened", "rejected", "confirmed", "confirmed", "confirmed", "added", "submitted"]
    reject_entry = page.locator('#history-body tr.entry[data-action="rejected"]')
    assert reject_entry.locator(".why").inner_text() == REJECT_REASON
    assert "qa.li" in reject_entry.inner_text()
    assert page.locator('#history-body tr.entry[data-action="added"] .why').inner_text() == ADDED_NOTE
    assert rejected.locator(".reason").inner_text().endswith(REJECT_REASON)
    assert page.locator("#content b").count() == 0  # the <b> in the reason stayed text
    shot(page, "review-submitted")
    assert not page.js_errors, page.js_errors

    # The reviewer's list of reviews leads back to it.
    page.goto(site.page("/qa/reviews", None))
    listed = page.locator(f'#reviews-body tr.review[data-review-id="{review["review_id"]}"]')
    assert listed.get_attribute("data-state") == "submitted" and "80.0" in listed.inner_text()
    listed.locator("a").click()
    page.wait_for_selector('#review-state[data-state="submitted"]')
    assert not page.js_errors, page.js_errors


# ---------------------------------------------------------------- the agent and the supervisor


def test_the_agent_disputes_the_supervisor_overturns_and_the_agent_sees_the_ruling_and_score(site: Site, new_page: Any) -> None:
    review_id = site.reviewed_by_api(CALL)

    agent = new_page()
    agent.goto(site.page("/qa/my-reviews", "A1042"))
    agent.locator(f'#reviews-body tr.review[data-review-id="{review_id}"] a').click()
    agent.wait_for_selector("#one:not([hidden])")
    assert agent.locator("#reviewed-score").inner_text() == "80.0"
    agent.wait_for_selector("#transcript li.utt")
    assert agent.locator("#transcript li.utt").count() == len(LINES)
    # The reviewer's reason, as typed, beside the rejected finding.
    assert agent.locator('tr.finding[data-decision="rejected"] .reason').inner_text().endswith(REJECT_REASON)

    agent.click("#acknowledge")
    agent.wait_for_selector("#acknowledge[hidden]", state="attached")
    assert "确认" in agent.locator("#acknowledged").inner_text()

    disputed = row(agent, "closing.caller_hangs_up_first")
    assert row(agent, "hold.apology", 95).locator("button.dispute-open").count() == 0  # rejected: nothing to dispute
    disputed.locator("button.dispute-open").click()
    disputed.locator("textarea.comment-input").fill(COMMENT)
    disputed.locator("button.dispute-send").click()
    agent.wait_for_selector('#findings-body .dispute[data-dispute-id] .ruling.pending')
    assert disputed.locator(".dispute .comment").inner_text() == COMMENT

    supervisor = new_page()
    supervisor.goto(site.page("/qa/disputes", "wang.li"))
    queued = supervisor.locator("#disputes-body tr.dispute-row")
    queued.first.wait_for()
    assert queued.count() == 1 and queued.locator(".comment").inner_text() == COMMENT
    queued.locator("a.open-dispute").click()
    supervisor.wait_for_selector("#one:not([hidden])")
    supervisor.wait_for_selector("#transcript li.utt.near")
    # The transcript around the finding (180 s): the goodbye, not the greeting.
    assert "再见" in supervisor.locator("#transcript li.utt.near").inner_text()
    starts = supervisor.locator("#transcript li.utt").evaluate_all("rows => rows.map(r => +r.dataset.start)")
    assert starts and min(starts) >= 180 - 30 - 10 and LINES[0][1] not in starts
    assert supervisor.locator("#findings-body .dispute .comment").inner_text() == COMMENT
    supervisor.check("#outcome-overturn")
    supervisor.fill("#ruling-reason", RULING_REASON)
    shot(supervisor, "dispute-open")
    supervisor.click("#ruling-submit")
    supervisor.wait_for_selector('#dispute-state[data-state="overturned"]')
    assert supervisor.locator("#reviewed-score").inner_text() == "84.0"
    assert supervisor.locator(".ruling .ruling-reason").inner_text() == RULING_REASON

    agent.reload()
    agent.wait_for_selector("#findings-body .ruling.outcome-overturned")
    mine = site.api("GET", f"/v1/qa/my-reviews/{review_id}", "A1042")
    assert mine["reviewed_score"] == 84.0
    assert agent.locator("#reviewed-score").inner_text() == f"{mine['reviewed_score']:.1f}"
    assert agent.locator("#findings-body .ruling .ruling-reason").inner_text() == RULING_REASON
    assert disputed.get_attribute("class") == "finding"  # no longer counted
    shot(agent, "my-review-ruled")

    for page in (agent, supervisor):
        assert page.locator("#content img, #content i").count() == 0  # markup typed by people stayed text
        assert page.title() != "pwned"
        assert not page.js_errors, page.js_errors


# ---------------------------------------------------------------- refusals, in words


def test_an_agents_key_on_another_agents_review_says_not_found(site: Site, new_page: Any) -> None:
    others = site.reviewed_by_api(OTHER_CALL)
    page = new_page()
    page.goto(site.page(f"/qa/my-reviews/{others}", "A1042"))
    page.wait_for_selector('#notice[data-status="404"]')
    assert "未找到" in page.locator("#notice").inner_text()
    assert page.locator("#content").is_hidden()
    assert LINES[1][3] not in page.content()
    shot(page, "my-review-not-found")
    assert not page.js_errors, page.js_errors


def test_no_key_asks_for_one_and_the_wrong_role_is_told_so(site: Site, new_page: Any) -> None:
    site.reviewed_by_api(CALL)
    page = new_page()
    page.goto(site.page("/qa/my-reviews", None))
    page.wait_for_selector('#notice[data-status="401"]')
    assert "需要登录" in page.locator("#notice").inner_text()
    page.fill("#signin input[name=token]", site.keys["A1042"])  # signing in from the notice
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#reviews-body tr.review")
    assert "token=" not in page.url

    page.goto(site.page(f"/qa/calls/{CALL}/review", None))  # the agent's cookie, on a reviewer's page
    page.wait_for_selector('#notice[data-status="403"]')
    assert "无权访问" in page.locator("#notice").inner_text()
    page.goto(site.page("/qa/disputes", None))
    page.wait_for_selector('#notice[data-status="403"]')
    page.goto(site.page("/audit/calls", None))  # the QA tools' own pages say it too
    assert page.locator('#refusal[data-status="403"]').is_visible()
    assert not page.js_errors, page.js_errors
