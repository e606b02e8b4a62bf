"""The statements of plans, calibration and trends on SQLite and PostgreSQL alike (the API tests run on SQLite):
a plan's run and rerun, a calibration scored by two reviewers with its result, and a week's trend records."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from support.qa_calls import ShownPrompt, finding, mood, store_call

from rules.config import load_rules_config
from service.access.keys import Principal
from service.access.teams import TeamBook
from service.persistence import qa_calibrations, qa_plans
from service.qa.calibration_result import agreement
from service.qa.errors import Conflict
from service.qa.plan_models import PlanIn
from service.qa.scoring import reviewed_scorer
from service.qa.trends import trend_rows
from service.persistence.qa_trends import agent_weeks
from service.persistence.call_store import CallStore

LEAD = Principal("supervisor", "lead", "acme")
TEAMS = TeamBook({("acme", "A1"): "red", ("acme", "A2"): "red"})


def _seed(store: CallStore) -> list[str]:
    keys = [store_call(store, f"c{i}", "A1", "acme") for i in range(20)]
    keys.append(store_call(store, "rash", "A1", "acme", findings=[finding("promise.rash", "breach", 12.0),
                                                                  finding("hold.apology", "warn", 40.0)],
                           moods=[mood("angry", -0.5, "negative"), mood("neutral", 0.0, "recovered")],
                           prompts=[ShownPrompt("hold.apology", 40.0, cleared=True, dismissed=True)]))
    keys.append(store_call(store, "other", "A2", "acme", started_at="2026-11-25T09:00:00+08:00"))
    return keys


def test_a_plan_runs_once_per_week_on_both_databases(database_url: str) -> None:
    store = CallStore(database_url)
    _seed(store)
    plan_id = qa_plans.create_plan(store, "acme", PlanIn(name="p", share=0.05, reviewers=["qa-1", "qa-2"],
                                                                 teams=["red"]), LEAD)
    first = qa_plans.run_plan(store, plan_id, date(2026, 11, 23), LEAD, TEAMS)
    sampled = Counter(p.agent_id for p in first.picks if "sample" in {r.code for r in p.reasons})
    assert first.calls_seen == 22 and sampled == {"A1": 2, "A2": 1}  # ⌈5 % of 21⌉, ⌈5 % of 1⌉
    assert "rash" in {p.call_id for p in first.picks} and first.picked == len(first.picks)
    again = qa_plans.run_plan(store, plan_id, date(2026, 11, 23), LEAD, TEAMS)
    assert again.picked == 0 and again.week_picks == first.week_picks
    assert sorted(q.pick.reviewer for q in qa_plans.picks_for(store, "qa-1", "acme")) == ["qa-1"] * first.week_picks["qa-1"]


def test_a_calibration_is_scored_blind_and_its_result_read_on_both_databases(database_url: str) -> None:
    store = CallStore(database_url)
    _seed(store)
    record = store.get_call("rash")
    cid = qa_calibrations.create(store, call_key="rash", call_tenant="acme", agent_id="A1", scope_tenant="acme",
                                        automatic_score=record.score, findings=record.report["findings"],
                                        reviewers=["qa-1", "qa-2"], note=None, actor=LEAD)
    score = reviewed_scorer(load_rules_config())
    for who, rash in (("qa-1", "confirmed"), ("qa-2", "rejected")):
        mine = qa_calibrations.my_calibration(store, cid, who)
        for f in mine.findings:
            decision = rash if f.rule_id == "promise.rash" else "confirmed"
            qa_calibrations.decide(store, cid, who, f.finding_id, decision, "听录音" if decision == "rejected" else None)
    added = qa_calibrations.add_finding(store, cid, "qa-2", "complaint.empathy_first", "breach", 30.0, "未先共情")
    assert added not in {f.finding_id for f in qa_calibrations.my_calibration(store, cid, "qa-1").findings}
    for who in ("qa-1", "qa-2"):
        qa_calibrations.submit(store, cid, who, score)
    with pytest.raises(Conflict):
        first_finding = qa_calibrations.my_calibration(store, cid, "qa-1").findings[0].finding_id
        qa_calibrations.decide(store, cid, "qa-1", first_finding, "confirmed", None)
    inputs = qa_calibrations.result_inputs(store, cid)
    assert [(s.reviewer, sc) for s, _, sc in inputs.submitted] == [("qa-1", 100 - 5 - 3), ("qa-2", 100 - 3 - 8)]
    found = agreement(inputs.automatic, [s for s, _, _ in inputs.submitted])
    assert [(r.rule_id, r.yes) for r in found.rules] == [("complaint.empathy_first", 1), ("hold.apology", 2),
                                                          ("promise.rash", 1)]
    assert found.kappa is not None and found.kappa.method == "cohen"
    owner = qa_calibrations.owner(store, cid)
    assert owner is not None and owner.reviewers == {"qa-1": "submitted", "qa-2": "submitted"}


def test_trend_records_on_both_databases(database_url: str) -> None:
    store = CallStore(database_url)
    _seed(store)
    weeks = agent_weeks(store, tenant="acme", date_from=date(2026, 11, 23), date_to=date(2026, 11, 29), agent_ids=None)
    rows = {r.agent_id: r for r in trend_rows(weeks, team_of=TEAMS.team_of, keep=lambda *_: True).agents}
    a1 = rows["A1"]
    assert (a1.calls, a1.team, a1.turned_negative, a1.recovered) == (21, "red", 1, 1)
    assert (a1.prompts_shown, a1.prompts_heeded, a1.prompts_dismissed) == (1, 1, 1)
    assert a1.rule_hit_rates == {"hold.apology": round(1 / 21, 4), "promise.rash": round(1 / 21, 4)}
    assert a1.average_score == round((20 * 100 + 92) / 21, 2) and rows["A2"].calls == 1
