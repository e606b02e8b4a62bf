"""Sampling plans and the work queue through the real app on a real SQLite store and keys file: a supervisor's
plan picks its share of each agent's week and every call meeting a condition, once, balanced across its
reviewers, from the API and from `callwatch qa-sample`; each reviewer's queue holds its own picks with their
review's state; and everyone else is refused (401 no key, 403 wrong role, 404 another tenant's or team's plan,
422 a reviewer who could not open the calls)."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from support.qa_app import Principals, QAClient, qa_client
from support.qa_calls import finding, mood, store_call
from typer.testing import CliRunner

from service.qa.weeks import last_whole_week
from service.persistence.call_store import CallStore

PRINCIPALS: Principals = {
    "lead-acme": ("supervisor", "acme", None),
    "lead-red": ("supervisor", "acme", ["red"]),
    "lead-blue": ("supervisor", "acme", ["blue"]),
    "lead-globex": ("supervisor", "globex", None),
    "chief": ("supervisor", None, None),
    "qa-1": ("qa", "acme", None),
    "qa-2": ("qa", "acme", None),
    "qa-3": ("qa", "acme", None),
    "qa-globex": ("qa", "globex", None),
    "a1": ("agent", "acme", "red"),
    "a2": ("agent", "acme", "blue"),
    "g1": ("agent", "globex", None),
}
WEEK1, WEEK2 = "2026-11-23", "2026-11-30"
TUESDAY = "2026-11-24T10:00:00+08:00"
# The calls of a1's first week that a condition picks, and why.
CONDITIONS = {"a1-w1-05": ["severe_finding"], "a1-w1-06": ["low_score"], "a1-w1-07": ["negative_end"],
              "a1-w1-09": ["negative_end"]}
PLAN = {"name": "每周抽检 5%", "share": 0.05, "score_below": 95, "severities": ["breach"], "negative_end": True,
        "reviewers": ["qa-1", "qa-2", "qa-3"]}


def _seed_week1_a1(store: CallStore, first: int, count: int) -> None:
    for i in range(first, first + count):
        special: dict[str, Any] = {}
        if i == 5:
            special = {"findings": [finding("promise.rash", "breach", 120.0)]}  # score 95: severe, not low
        elif i == 6:
            special = {"findings": [finding("hold.apology", "warn", 40.0), finding("hold.apology", "warn", 95.0)]}  # 94
        elif i == 7:
            special = {"moods": [mood("neutral", 0.0), mood("angry", -0.5, "negative"), mood("upset", -0.4)]}
        elif i == 8:  # turned negative and recovered: not picked for how it ended
            special = {"moods": [mood("angry", -0.5, "negative"), mood("satisfied", 0.1, "recovered")]}
        elif i == 9:
            special = {"moods": [mood("neutral", 0.0), mood("angry", -0.2)]}
        # The last call of the week on Sunday night, its own clock: still week 1.
        started = "2026-11-29T23:30:00+08:00" if i == 39 else TUESDAY
        store_call(store, f"a1-w1-{i:02d}", "a1", "acme", started_at=started, **special)


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans-seed") / "callwatch.db"
    store = CallStore(f"sqlite:///{path}")
    _seed_week1_a1(store, 0, 40)
    for i in range(10):
        store_call(store, f"a2-w1-{i:02d}", "a2", "acme")
    for i in range(5):
        store_call(store, f"a1-w2-{i:02d}", "a1", "acme", started_at="2026-11-30T00:10:00+08:00")
    for i in range(10):  # another tenant's week, with a breach: never acme's plan's
        store_call(store, f"g1-w1-{i:02d}", "g1", "globex",
                   findings=[finding("promise.rash", "breach", 10.0)] if i == 0 else [])
    store.db.engine.dispose()
    return path


@pytest.fixture
def qa(tmp_path: Path, seeded_database: Path) -> QAClient:
    shutil.copy(seeded_database, tmp_path / "callwatch.db")
    return qa_client(tmp_path, PRINCIPALS, tmp_path / "callwatch.db")


def _rank(seed: str, key: str) -> float:
    # docs/qa.md: SHA-256 over "seed NUL call key", its first 8 bytes as a fraction of 2^64.
    return int.from_bytes(hashlib.sha256(f"{seed}\0{key}".encode()).digest()[:8], "big") / 2**64


def _lowest(seed: str, keys: list[str], k: int) -> set[str]:
    return set(sorted(keys, key=lambda key: _rank(seed, key))[:k])


def _plan(qa: QAClient, who: str = "lead-acme", **changes: Any) -> dict[str, Any]:
    return qa.ok(qa.post("/v1/qa/plans", who, {**PLAN, **changes}), 201)


def _run(qa: QAClient, plan: dict[str, Any], week: str = WEEK1, who: str = "lead-acme") -> dict[str, Any]:
    return qa.ok(qa.post(f"/v1/qa/plans/{plan['plan_id']}/runs", who, {"week": week}), 201)


# ---------------------------------------------------------------- what a run picks


def test_a_run_picks_the_share_of_each_agent_and_every_call_meeting_a_condition(qa: QAClient) -> None:
    plan = _plan(qa)
    assert plan["tenant"] == "acme" and plan["teams"] is None and plan["seed"] == plan["plan_id"]
    run = _run(qa, plan, "2026-11-26")  # any day of the week: its Monday
    assert run["week"] == WEEK1 and run["calls_seen"] == 50 and run["ran_by"] == "lead-acme"

    a1 = [f"a1-w1-{i:02d}" for i in range(40)]
    a2 = [f"a2-w1-{i:02d}" for i in range(10)]
    sampled = _lowest(plan["seed"], a1, 2) | _lowest(plan["seed"], a2, 1)  # ⌈5 % × 40⌉, ⌈5 % × 10⌉
    picks = {p["call_id"]: p for p in run["picks"]}
    assert set(picks) == sampled | set(CONDITIONS) and run["picked"] == len(picks)
    assert {p["agent_id"] for p in picks.values()} <= {"a1", "a2"}  # never globex's g1
    for call_id, pick in picks.items():
        codes = [r["code"] for r in pick["reasons"]]
        assert codes == (["sample"] if call_id in sampled else []) + CONDITIONS.get(call_id, []), call_id
        assert pick["week"] == WEEK1 and pick["review_state"] == "not_started" and pick["review_id"] is None
    assert picks["a1-w1-05"]["reasons"][-1]["detail"] == "promise.rash (breach) at 120 s"
    assert picks["a1-w1-06"]["reasons"][-1]["detail"] == "automatic score 94 is under 95"
    assert picks["a1-w1-07"]["reasons"][-1]["detail"] == "the customer turned negative and did not recover"
    assert picks["a1-w1-09"]["reasons"][-1]["detail"] == "the customer's last words were angry"
    sample_detail = next(r["detail"] for p in picks.values() for r in p["reasons"] if r["code"] == "sample"
                         and p["agent_id"] == "a1")
    assert sample_detail == "drawn for the 5 % sample: 2 of the agent's 40 calls this week"

    per_reviewer = Counter(p["reviewer"] for p in picks.values())
    assert set(per_reviewer) == {"qa-1", "qa-2", "qa-3"} and max(per_reviewer.values()) - min(per_reviewer.values()) <= 1
    assert run["week_picks"] == dict(per_reviewer)


def test_running_again_picks_nothing_new_and_a_fuller_week_is_topped_up(qa: QAClient) -> None:
    plan = _plan(qa)
    first = _run(qa, plan)
    again = _run(qa, plan)
    assert again["picked"] == 0 and again["picks"] == [] and again["week_picks"] == first["week_picks"]
    listed = qa.ok(qa.get(f"/v1/qa/plans/{plan['plan_id']}/picks", "lead-acme", week=WEEK1))["picks"]
    assert sorted(p["call_id"] for p in listed) == sorted(p["call_id"] for p in first["picks"])

    _seed_week1_a1(qa.store, 40, 20)  # 60 of a1's calls now, the 20 new ones meeting no condition
    topped = _run(qa, plan)
    new = {p["call_id"]: [r["code"] for r in p["reasons"]] for p in topped["picks"]}
    sample_new = [c for c, codes in new.items() if "sample" in codes]
    assert len(sample_new) == 1 and sample_new[0].startswith("a1-w1-")  # ⌈5 % × 60⌉ = 3: one more
    assert topped["calls_seen"] == 70
    counts = topped["week_picks"].values()
    assert max(counts) - min(counts) <= 1 and sum(counts) == len(listed) + len(new)


def test_the_same_seed_draws_the_same_sample_and_the_week_boundary_follows_the_calls_clock(qa: QAClient) -> None:
    one = _plan(qa, seed="week-seed", severities=[], score_below=None, negative_end=False)
    two = _plan(qa, seed="week-seed", severities=[], score_below=None, negative_end=False)
    picked = [sorted(p["call_id"] for p in _run(qa, plan)["picks"]) for plan in (one, two)]
    assert picked[0] == picked[1] and len(picked[0]) == 3
    week2 = _run(qa, one, WEEK2)
    assert week2["calls_seen"] == 5 and [p["call_id"][:6] for p in week2["picks"]] == ["a1-w2-"]


def test_the_command_runs_a_plan_as_the_endpoint_does(qa: QAClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    plan = _plan(qa)
    monkeypatch.setenv("CALLWATCH_KEYS_FILE", str(tmp_path / "keys.yaml"))
    url = f"sqlite:///{tmp_path / 'callwatch.db'}"
    done = CliRunner().invoke(app, ["qa-sample", plan["plan_id"], "--week", "2026-12-03", "--url", url])
    assert done.exit_code == 0, done.output
    assert f"plan {plan['plan_id']}, week of {WEEK2}: 5 call(s) in scope, 1 picked now" in done.output
    assert "agent a1\t-> qa-1\tsample: drawn for the 5 % sample: 1 of the agent's 5 calls this week" in done.output
    assert _run(qa, plan, WEEK2)["picked"] == 0  # the command's run counts
    missing = CliRunner().invoke(app, ["qa-sample", "no-such-plan", "--url", url])
    assert missing.exit_code == 1 and "no plan 'no-such-plan'" in missing.output
    bad = CliRunner().invoke(app, ["qa-sample", plan["plan_id"], "--week", "Monday", "--url", url])
    assert bad.exit_code == 2


def test_without_a_week_a_run_samples_the_last_whole_week(qa: QAClient) -> None:
    plan = _plan(qa)
    run = qa.ok(qa.post(f"/v1/qa/plans/{plan['plan_id']}/runs", "lead-acme"), 201)
    assert run["week"] == last_whole_week(datetime.now(timezone.utc).date()).isoformat()


def test_a_team_supervisors_plan_covers_its_teams(qa: QAClient) -> None:
    plan = _plan(qa, "lead-red")
    assert plan["teams"] == ["red"]
    run = _run(qa, plan, who="lead-red")
    assert run["calls_seen"] == 40 and {p["agent_id"] for p in run["picks"]} == {"a1"}
    assert qa.get(f"/v1/qa/plans/{plan['plan_id']}", "lead-blue").status_code == 404
    assert qa.ok(qa.get(f"/v1/qa/plans/{plan['plan_id']}", "lead-acme"))["plan_id"] == plan["plan_id"]


def test_a_plan_can_be_changed_and_keeps_what_it_picked(qa: QAClient) -> None:
    plan = _plan(qa)
    first = _run(qa, plan)
    changed = qa.ok(qa.put(f"/v1/qa/plans/{plan['plan_id']}", "lead-acme", {**PLAN, "reviewers": ["qa-2"], "share": 0.1}))
    assert changed["reviewers"] == ["qa-2"] and changed["share"] == 0.1 and changed["seed"] == plan["seed"]
    more = _run(qa, plan)
    assert {p["reviewer"] for p in more["picks"]} == {"qa-2"} and len(more["picks"]) == 2 + 0  # ⌈10 % × 40⌉ − 2; a2: 1 − 1
    kept = {p["call_id"]: p["reviewer"] for p in first["picks"]}
    listed = qa.ok(qa.get(f"/v1/qa/plans/{plan['plan_id']}/picks", "lead-acme"))["picks"]
    assert {p["call_id"]: p["reviewer"] for p in listed if p["call_id"] in kept} == kept


# ---------------------------------------------------------------- the queue


def test_each_reviewer_sees_its_own_picks_with_their_reviews_state(qa: QAClient) -> None:
    plan = _plan(qa)
    picks = _run(qa, plan)["picks"]
    mine = {p["call_id"] for p in picks if p["reviewer"] == "qa-1"}
    queue = qa.ok(qa.get("/v1/qa/queue", "qa-1"))
    assert queue["reviewer"] == "qa-1" and {i["call_id"] for i in queue["items"]} == mine
    item = queue["items"][0]
    assert item["kind"] == "sample" and item["plan_id"] == plan["plan_id"] and item["plan_name"] == PLAN["name"]
    assert item["state"] == "not_started" and item["week"] == WEEK1 and item["reasons"]
    assert {i["call_id"] for i in qa.ok(qa.get("/v1/qa/queue", "qa-2"))["items"]}.isdisjoint(mine)

    opened = qa.ok(qa.post(f"/v1/qa/calls/{item['call_id']}/review", "qa-1"), 201)
    states = {i["call_id"]: (i["state"], i["review_id"]) for i in qa.ok(qa.get("/v1/qa/queue", "qa-1"))["items"]}
    assert states[item["call_id"]] == ("in_progress", opened["review_id"])
    for f in opened["findings"]:
        qa.ok(qa.post(f"/v1/qa/reviews/{opened['review_id']}/findings/{f['finding_id']}/decision", "qa-1",
                      {"decision": "confirm"}))
    qa.ok(qa.post(f"/v1/qa/reviews/{opened['review_id']}/submit", "qa-1"))
    done = qa.ok(qa.get("/v1/qa/queue", "qa-1", state="submitted"))["items"]
    assert [i["call_id"] for i in done] == [item["call_id"]]
    assert item["call_id"] not in {i["call_id"] for i in qa.ok(qa.get("/v1/qa/queue", "qa-1", state="not_started"))["items"]}


def test_a_queue_holds_only_the_reviewers_own_tenants_work(qa: QAClient) -> None:
    _run(qa, _plan(qa))
    for name in ("qa-globex", "lead-acme", "chief", "lead-globex"):
        assert qa.ok(qa.get("/v1/qa/queue", name))["items"] == [], name
    assert qa.get("/v1/qa/queue", None).status_code == 401
    assert qa.get("/v1/qa/queue", "a1").status_code == 403


# ---------------------------------------------------------------- refusals


def test_plans_are_a_supervisors_and_another_tenants_or_teams_plan_is_not_found(qa: QAClient) -> None:
    plan = _plan(qa)
    path = f"/v1/qa/plans/{plan['plan_id']}"
    for method, url, body in (("post", "/v1/qa/plans", PLAN), ("get", "/v1/qa/plans", None), ("get", path, None),
                              ("put", path, PLAN), ("post", f"{path}/runs", {"week": WEEK1}), ("get", f"{path}/picks", None)):
        call = getattr(qa.http, method)
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        assert call(url, **kwargs).status_code == 401, url
        for name in ("qa-1", "a1"):
            assert call(url, headers=qa.as_(name), **kwargs).status_code == 403, (name, url)
        if url != "/v1/qa/plans":
            for name in ("lead-globex", "lead-red"):  # another tenant's; a plan over teams it does not lead
                assert call(url, headers=qa.as_(name), **kwargs).status_code == 404, (name, url)
    assert qa.ok(qa.get("/v1/qa/plans", "lead-globex"))["plans"] == []
    assert [p["plan_id"] for p in qa.ok(qa.get("/v1/qa/plans", "chief"))["plans"]] == [plan["plan_id"]]
    assert qa.ok(qa.get(path, "chief"))["tenant"] == "acme"


@pytest.mark.parametrize("who, changes, where, says", [
    ("lead-acme", {"reviewers": ["qa-1", "qa-globex"]}, ["body", "reviewers", 1], "no reviewer's key"),
    ("lead-acme", {"reviewers": ["nobody"]}, ["body", "reviewers", 0], "no reviewer's key"),
    ("lead-acme", {"reviewers": ["lead-blue"]}, ["body", "reviewers", 0], "leads only blue"),
    ("lead-red", {"teams": ["blue"]}, ["body", "teams"], "you lead only red"),
    ("lead-acme", {"share": 1.5}, ["body", "share"], "less than or equal to 1"),
    ("lead-acme", {"reviewers": ["qa-1", "qa-1"]}, ["body", "reviewers"], "each may be named once"),
])
def test_a_plan_its_reviewers_could_not_work_is_refused(qa: QAClient, who: str, changes: dict[str, Any],
                                                         where: list[Any], says: str) -> None:
    r = qa.post("/v1/qa/plans", who, {**PLAN, **changes})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == where and says in error["msg"]


def test_a_plan_over_the_red_team_may_have_its_supervisor_review(qa: QAClient) -> None:
    plan = _plan(qa, "lead-acme", teams=["red"], reviewers=["lead-red", "qa-1"])
    picks = _run(qa, plan)["picks"]
    theirs = {p["call_id"] for p in picks if p["reviewer"] == "lead-red"}
    assert theirs and {i["call_id"] for i in qa.ok(qa.get("/v1/qa/queue", "lead-red"))["items"]} == theirs
