"""Trends' facts (revision 0010) stay right after every kind of write that changes a figure, on SQLite and
PostgreSQL: a review submitted (its score and the findings it confirmed replace the automatic ones), a dispute
overturned (the finding gone, the score the ruling left), the report re-judged after the second pass, a prompt
dismissed after the call was listed. Each is read back through what the trends API sums (`agent_weeks`); the
expected figures are the stored scores and the decisions made here, not the trends code's."""

from __future__ import annotations

from datetime import date
from typing import Any

from support.qa_calls import ShownPrompt, finding, store_call

from rules.config import load_rules_config
from service.access.keys import Principal
from service.persistence import qa_reviews
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore
from service.persistence.qa_trends import agent_weeks
from service.qa.scoring import reviewed_scorer
from service.qa.trends import Tally

REVIEWER, AGENT, LEAD = Principal("qa", "qa-1", "acme"), Principal("agent", "A1", "acme"), Principal("supervisor", "lead", "acme")
WEEK = (date(2026, 11, 23), date(2026, 11, 29))
SCORE = reviewed_scorer(load_rules_config())


def _week(store: CallStore, agent_id: str) -> Tally:
    [found] = [w for w in agent_weeks(store, tenant="acme", date_from=WEEK[0], date_to=WEEK[1], agent_ids=None)
               if w.agent_id == agent_id]
    return found.tally


def _figures(t: Tally) -> tuple[Any, ...]:
    return t.calls, t.scored, t.score_sum, t.reviewed, dict(+t.findings), dict(+t.hits)


def test_a_submitted_review_and_an_overturned_ruling_move_the_facts(database_url: str) -> None:
    store = CallStore(database_url)
    key = store_call(store, "rash", "A1", "acme", findings=[finding("promise.rash", "breach", 12.0),
                                                             finding("hold.apology", "warn", 40.0)])
    automatic = store.get_call("rash").score
    assert automatic is not None and automatic < 100
    assert _figures(_week(store, "A1")) == (1, 1, automatic, 0, {"promise.rash": 1, "hold.apology": 1},
                                            {"promise.rash": 1, "hold.apology": 1})

    review_id, _ = qa_reviews.open_review(store, key, "acme", "A1", automatic, store.get_call("rash").report["findings"],
                                          REVIEWER)
    review = qa_reviews.get_review(store, review_id)
    assert review is not None
    ids = {f.rule_id: f.finding_id for f in review.findings}
    qa_reviews.decide(store, review_id, ids["promise.rash"], "confirmed", None, REVIEWER)
    qa_reviews.decide(store, review_id, ids["hold.apology"], "rejected", "没有等待", REVIEWER)
    assert _week(store, "A1").reviewed == 0  # an open review changes nothing yet
    reviewed = qa_reviews.submit(store, review_id, REVIEWER, SCORE)
    assert reviewed is not None and automatic < reviewed < 100
    assert _figures(_week(store, "A1")) == (1, 1, reviewed, 1, {"promise.rash": 1}, {"promise.rash": 1})

    dispute = qa_reviews.raise_dispute(store, review_id, ids["promise.rash"], "我没有承诺", AGENT)
    after = qa_reviews.rule_dispute(store, dispute, "overturned", "录音里没有承诺", LEAD, SCORE)
    assert after == 100.0
    assert _figures(_week(store, "A1")) == (1, 1, 100.0, 1, {}, {})
    store.close()


def test_a_report_judged_again_and_a_prompt_dismissed_after_listing_move_the_facts(database_url: str) -> None:
    store = CallStore(database_url)
    key = store_call(store, "live", "A2", "acme", prompts=[ShownPrompt("listen.dead_air", 30.0)])
    before = _week(store, "A2")  # listed now
    assert _figures(before) == (1, 1, 100.0, 0, {}, {})
    assert (before.prompts_shown, before.prompts_heeded, before.prompts_dismissed) == (1, 0, 0)

    # The second pass heard more: the report judged again names a finding and that the prompt was heeded.
    report = dict(store.get_call("live").report)
    report.update(score=95.0, findings=[finding("listen.dead_air", "warn", 30.0)],
                  prompts=[{**report["prompts"][0], "cleared_at": 36.0}])
    CallList(store.db).replace_report(key, report, store.list_utterances(key), rules_name=None, index_unlisted=False)
    again = _week(store, "A2")
    assert _figures(again) == (1, 1, 95.0, 0, {"listen.dead_air": 1}, {"listen.dead_air": 1})
    assert (again.prompts_shown, again.prompts_heeded, again.prompts_dismissed) == (1, 1, 0)

    assert store.dismiss_prompt(key, report["prompts"][0]["rule_id"] + "@30.00", "A2")
    assert _week(store, "A2").prompts_dismissed == 1
    store.close()
