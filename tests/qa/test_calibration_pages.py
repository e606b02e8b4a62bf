"""Calibration in a real headless Chromium, against a real server on loopback with a real SQLite database (an
audited call: recording, transcript, four automatic findings) and a real keys file:

- the supervisor sends the call to three reviewers on /qa/calibrations;
- each reviewer signs in in a browser of its own, opens the calibration (from its work queue or the list),
  scores the call blind with known, different answers and submits; before submitting it sees only its own
  decisions (never another's, nor another's added finding), and no result;
- the supervisor's result page then shows, per rule, the counts, the agreement rate, the majority and whether
  the automatic report sides with it, and Fleiss' kappa, each equal to the figure worked out here by hand from
  the answers entered (the formulas are written out below, not taken from service/qa/kappa.py);
- an agent's key, a wrong key and a reviewer not named each get a sentence, not the calibration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.audited_call import LINES
from support.qa_app import Principals
from support.served_qa_site import ServedSite, served_qa_site

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "qa"
CALL = "20261123-0930-000123"  # agent A1042's
PRINCIPALS: Principals = {
    "wang.li": ("supervisor", "acme", ["east-1"]),
    "qa.li": ("qa", "acme", None),
    "qa.zhou": ("qa", "acme", None),
    "qa.chen": ("qa", "acme", None),
    "qa.wu": ("qa", "acme", None),  # not named in the calibration
    "A1042": ("agent", "acme", "east-1"),
}
NOTE = "投诉处理：保持与承诺的判定"

# The call's automatic findings (support/stored_reports.py), by (rule, time).
HOLD_40, HOLD_95 = ("hold.apology", 40.0), ("hold.apology", 95.0)
RASH, CLOSING = ("promise.rash", 120.0), ("closing.caller_hangs_up_first", 180.0)
AUTOMATIC = [HOLD_40, HOLD_95, RASH, CLOSING]


@dataclass(frozen=True)
class Answers:
    """What one reviewer enters: confirm or reject each automatic finding, and the rules it adds."""

    rejected: frozenset[tuple[str, float]] = frozenset()
    added: tuple[str, ...] = ()

    def breached(self) -> set[str]:
        """The rules this reviewer finds broken: a confirmed automatic finding of the rule, or an added one."""
        return {rule for rule, t in AUTOMATIC if (rule, t) not in self.rejected} | set(self.added)


ANSWERS: dict[str, Answers] = {
    "qa.li": Answers(),  # confirms all four
    "qa.zhou": Answers(rejected=frozenset({HOLD_95, RASH}), added=("complaint.empathy_first",)),
    "qa.chen": Answers(rejected=frozenset({HOLD_95, RASH})),
}
REASON = {HOLD_95: "恢复通话时已致歉 <b>zhou</b>", RASH: "“三个工作日”有依据，不算轻率承诺"}
ADDED_NOTE = "客户投诉时没有先安抚 <i>情绪</i>"


@dataclass(frozen=True)
class Expected:
    yes: int
    no: int
    agreement: float
    majority: str
    automatic: bool
    automatic_agrees: bool | None


def expected_figures(answers: dict[str, Answers]) -> tuple[dict[str, Expected], float, float]:
    """Per rule in play, Fleiss' kappa over them, and the automatic report's share of agreement, by hand.

    The rules in play (the subjects) are those the automatic report or any reviewer found broken. With n
    reviewers and, for rule i, yes_i saying broken and no_i = n − yes_i not:
      P_i = (yes_i² + no_i² − n) / (n (n − 1))            the share of reviewer pairs agreeing on rule i
      P̄   = mean of P_i over the N rules
      p_yes = Σ yes_i / (N n),  p_no = Σ no_i / (N n)
      P̄_e = p_yes² + p_no²                               agreement expected by chance
      κ    = (P̄ − P̄_e) / (1 − P̄_e)                       Fleiss (1971)
    The majority is yes, no or tie; the automatic report agrees with it when it found the rule broken exactly
    when the majority did; its share of agreement leaves ties out.
    """
    n = len(answers)
    automatic_rules = {rule for rule, _ in AUTOMATIC}
    in_play = sorted(automatic_rules.union(*(a.breached() for a in answers.values())))
    rules: dict[str, Expected] = {}
    for rule in in_play:
        yes = sum(rule in a.breached() for a in answers.values())
        no = n - yes
        majority = "yes" if yes > no else "no" if no > yes else "tie"
        automatic = rule in automatic_rules
        agrees = None if majority == "tie" else automatic == (majority == "yes")
        rules[rule] = Expected(yes, no, (yes * yes + no * no - n) / (n * (n - 1)), majority, automatic, agrees)
    mean_p = sum(r.agreement for r in rules.values()) / len(rules)
    p_yes = sum(r.yes for r in rules.values()) / (len(rules) * n)
    chance = p_yes ** 2 + (1 - p_yes) ** 2
    kappa = (mean_p - chance) / (1 - chance)
    decided = [r.automatic_agrees for r in rules.values() if r.automatic_agrees is not None]
    return rules, kappa, sum(decided) / len(decided)


def test_the_hand_worked_figures_are_those_of_the_answers() -> None:
    # Worked once more with numbers, so that a slip in expected_figures cannot pass unseen: four rules in play,
    # hold.apology 3–0 and closing 3–0 (P_i = 1), promise.rash 1–2 and complaint.empathy_first 1–2 (P_i = 1/3);
    # P̄ = 2/3; p_yes = 8/12; P̄_e = 4/9 + 1/9 = 5/9; κ = (2/3 − 5/9) / (4/9) = 1/4. The automatic report sides
    # with the majority on hold.apology, closing and (not found) complaint.empathy_first, not on promise.rash: 3/4.
    rules, kappa, automatic = expected_figures(ANSWERS)
    assert sorted(rules) == ["closing.caller_hangs_up_first", "complaint.empathy_first", "hold.apology", "promise.rash"]
    assert kappa == pytest.approx(0.25) and automatic == pytest.approx(0.75)
    assert rules["promise.rash"] == Expected(1, 2, pytest.approx(1 / 3), "no", True, False)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedSite]:
    with served_qa_site(tmp_path, PRINCIPALS, {CALL: ("A1042", "acme")}) as served:
        yield served


def shot(page: Any, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def finding_row(page: Any, key: tuple[str, float]) -> Any:
    return page.locator(f'#findings-body tr.finding[data-rule="{key[0]}"][data-t="{key[1]:g}"]')


def score_blind(page: Any, answers: Answers) -> None:
    """Enter `answers` on the open calibration page, and submit."""
    page.wait_for_selector('#findings-body tr.finding[data-decision="pending"]')
    for key in AUTOMATIC:
        row = finding_row(page, key)
        if key in answers.rejected:
            row.locator("button.reject").click()
            row.locator("textarea.reason-input").fill(REASON[key])
            row.locator("button.reject-ok").click()
            page.wait_for_selector(f'#findings-body tr.finding[data-rule="{key[0]}"][data-t="{key[1]:g}"][data-decision="rejected"]')
        else:
            row.locator("button.confirm").click()
            page.wait_for_selector(f'#findings-body tr.finding[data-rule="{key[0]}"][data-t="{key[1]:g}"][data-decision="confirmed"]')
    for rule in answers.added:
        page.locator('#transcript li.utt[data-start="4.5"]').click()  # where the customer complains
        page.evaluate("document.getElementById('audio').pause()")
        page.select_option("#add-rule", rule)
        page.fill("#add-note", ADDED_NOTE)
        page.click("#add-submit")
        page.wait_for_selector(f'#findings-body tr.finding[data-source="added"][data-rule="{rule}"]')
    page.click("#submit-calibration")
    page.wait_for_selector('#my-state[data-state="submitted"]')


def open_calibration(site: ServedSite, new_page: Any, reviewer: str, calibration_id: str, via_queue: bool) -> Any:
    page = new_page()
    if via_queue:  # from the reviewer's work queue, where the calibration is an item of its own
        page.goto(site.page("/qa/queue", reviewer))
        item = page.locator('#queue-body tr.queue-item[data-kind="calibration"]')
        item.wait_for()
        assert item.get_attribute("data-call-id") == CALL and "校准" in item.locator(".source").inner_text()
        item.locator("a.open-work").click()
    else:
        page.goto(site.page("/qa/calibrations", reviewer))
        page.locator(f'#my-calibrations-body tr.my-calibration[data-calibration-id="{calibration_id}"] a').click()
    page.wait_for_url(f"**/qa/calibrations/{calibration_id}")
    page.wait_for_selector("#findings-body tr.finding")
    page.wait_for_selector('#waveform[data-drawn="1"]')  # the call's recording, as on the review page
    assert page.locator("#transcript li.utt").count() == len(LINES)
    return page


def test_three_reviewers_calibrate_blind_and_the_supervisor_sees_the_right_agreement(site: ServedSite, new_page: Any) -> None:
    # The supervisor sends the call to three reviewers from the calibration page.
    supervisor = new_page()
    supervisor.goto(site.page("/qa/calibrations", "wang.li"))
    supervisor.wait_for_selector("#supervised:not([hidden])")
    supervisor.fill("#create-call", CALL)
    supervisor.fill("#create-reviewers", "qa.li, qa.zhou\nqa.chen")
    supervisor.fill("#create-note", NOTE)
    supervisor.click("#create-submit")
    made = supervisor.locator("#calibrations-body tr.calibration")
    made.wait_for()
    calibration_id = made.get_attribute("data-calibration-id")
    assert made.locator(".note").inner_text() == NOTE
    made.locator("a.open-result").click()
    supervisor.wait_for_selector("#result-waiting:not([hidden])")  # nobody has submitted: no result yet
    assert supervisor.locator("#participants-body tr.participant[data-state=not_started]").count() == 3

    # qa.li confirms all four and submits first: one submission is no result yet.
    li = open_calibration(site, new_page, "qa.li", calibration_id, via_queue=True)
    assert li.locator(".blind").is_visible()
    score_blind(li, ANSWERS["qa.li"])
    li.wait_for_selector("#result-waiting:not([hidden])")
    assert li.locator("#result").is_hidden()

    # qa.zhou sees none of qa.li's decisions: every automatic finding pending for it.
    zhou = open_calibration(site, new_page, "qa.zhou", calibration_id, via_queue=False)
    assert zhou.locator('#findings-body tr.finding[data-decision="pending"]').count() == len(AUTOMATIC)
    assert zhou.locator("#result").is_hidden()
    score_blind(zhou, ANSWERS["qa.zhou"])
    zhou.wait_for_selector("#result:not([hidden])")  # two have submitted, zhou among them: the result so far
    assert zhou.locator("#result").get_attribute("data-complete") == "0"

    # qa.chen, before submitting: only its own, pending decisions; not zhou's added finding, nor its reasons.
    chen = open_calibration(site, new_page, "qa.chen", calibration_id, via_queue=True)
    assert chen.locator('#findings-body tr.finding[data-decision="pending"]').count() == len(AUTOMATIC)
    assert chen.locator('#findings-body tr.finding[data-source="added"]').count() == 0
    assert chen.locator("#result").is_hidden() and chen.locator("#result-waiting").is_visible()
    assert REASON[HOLD_95] not in chen.content() and "complaint.empathy_first" not in chen.locator("#findings-body").inner_text()
    score_blind(chen, ANSWERS["qa.chen"])
    chen.wait_for_selector('#result[data-complete="1"]')

    # The supervisor's result page: every figure as worked out by hand from what the three entered.
    supervisor.reload()
    supervisor.wait_for_selector('#result[data-complete="1"]')
    rules, kappa, automatic_share = expected_figures(ANSWERS)
    shown = supervisor.locator("#result-rules-body tr.rule-row")
    assert sorted(shown.evaluate_all("rows => rows.map(r => r.dataset.rule)")) == sorted(rules)
    for rule, want in rules.items():
        row = supervisor.locator(f'#result-rules-body tr.rule-row[data-rule="{rule}"]')
        assert row.locator(".yes").inner_text() == str(want.yes), rule
        assert row.locator(".no").inner_text() == str(want.no), rule
        assert row.locator(".agreement").inner_text() == f"{100 * want.agreement:.1f}%", rule
        assert row.get_attribute("data-majority") == want.majority, rule
        agrees = row.locator(".automatic-agrees").inner_text()
        assert agrees == ("一致" if want.automatic_agrees else "不一致"), rule
        assert "." not in row.locator("td.rule").inner_text().splitlines()[0], rule  # named by the names table
    assert supervisor.locator("#kappa-value").get_attribute("data-method") == "fleiss"
    assert supervisor.locator("#kappa-value").inner_text() == f"{kappa:.3f}"
    assert supervisor.locator("#automatic-agreement").inner_text() == f"{100 * automatic_share:.1f}%"
    # Each automatic finding: how many confirmed it, how many rejected it.
    tallies = supervisor.locator("#result-findings-body tr.finding-row").evaluate_all(
        "rows => rows.map(r => [+r.querySelector('.confirmed').textContent, +r.querySelector('.rejected').textContent])")
    assert tallies == [[sum(key not in a.rejected for a in ANSWERS.values()), sum(key in a.rejected for a in ANSWERS.values())]
                       for key in AUTOMATIC]
    breached = supervisor.locator('#result-reviewers-body tr.reviewer-row[data-reviewer="qa.zhou"]').inner_text()
    assert "complaint.empathy_first" not in breached and len(breached.split("、")) == len(ANSWERS["qa.zhou"].breached())
    shot(supervisor, "calibration-result")

    for page in (supervisor, li, zhou, chen):
        assert page.locator("#content b, #content i").count() == 0  # what reviewers typed stayed text
        assert not page.js_errors, page.js_errors


# ---------------------------------------------------------------- refusals, in words


@pytest.fixture
def calibration_id(site: ServedSite) -> str:
    made = site.api("POST", "/v1/qa/calibrations", "wang.li", {"call_id": CALL, "reviewers": ["qa.li", "qa.zhou"]})
    return str(made["calibration_id"])


def test_a_reviewer_not_named_is_told_not_found_and_sees_nothing_of_the_call(site: ServedSite, new_page: Any,
                                                                             calibration_id: str) -> None:
    page = new_page()
    page.goto(site.page(f"/qa/calibrations/{calibration_id}", "qa.wu"))
    page.wait_for_selector('#notice[data-status="404"]')
    assert "未找到" in page.locator("#notice").inner_text() and page.locator("#content").is_hidden()
    assert LINES[1][3] not in page.content()
    page.goto(site.page(f"/qa/calibrations/{calibration_id}/result", None))  # a QA user on the supervisor's page
    page.wait_for_selector('#notice[data-status="403"]')
    assert not page.js_errors, page.js_errors


def test_an_agent_and_a_wrong_key_are_refused_in_words(site: ServedSite, new_page: Any, calibration_id: str) -> None:
    agent = new_page()
    agent.goto(site.page("/qa/calibrations", "A1042"))
    agent.wait_for_selector('#notice[data-status="403"]')
    assert "无权访问" in agent.locator("#notice").inner_text() and agent.locator("#signin").is_visible()
    agent.goto(site.page(f"/qa/calibrations/{calibration_id}", None))
    agent.wait_for_selector('#notice[data-status="403"]')

    stranger = new_page()
    stranger.goto(f"{site.url}/qa/calibrations/{calibration_id}/result?token=cw_not-a-key-of-this-deployment")
    stranger.wait_for_selector('#notice[data-status="403"]')
    assert stranger.locator("#content").is_hidden() and CALL not in stranger.locator("#notice").inner_text()
    assert stranger.locator("#signin").is_visible()  # to sign in with a key that works
    for page in (agent, stranger):
        assert not page.js_errors, page.js_errors
