"""Trends through the real app on a real SQLite store: a few calls stored as live calls store them (emotion,
prompts, dismissals, reports), reviewed, disputed and ruled through the API, and every figure checked against
what was worked out by hand below. Who sees what (a team supervisor its teams, an agent its own rows) and every
refusal are tested, and the CSV writes no cell a spreadsheet would run.

Week of 2026-11-23, tenant acme:

| call | agent (team) | automatic findings (score) | review | mood | prompts |
|---|---|---|---|---|---|
| c1 | a1 (red) | hold.apology, promise.rash (92) | rash rejected, empathy added: 89 | | |
| c2 | a1 (red) | hold.apology ×2 (94) | none | turned negative, recovered | dead air cleared; hold dismissed |
| c3 | a1 (red), Sunday night | none (100) | none | turned negative | no_silence, neither |
| d1 | a2 (red) | promise.rash (95) | confirmed (95), overturned on dispute: 100 | | |
| e1 | b1 (blue) | closing (96) | none | | |
| x1 | =HYPERLINK(…) (none) | none (100) | none | | |

a1: 3 calls, average (89 + 94 + 100) / 3 = 94.33, mixed (1 reviewed, 2 automatic); findings hold.apology 1 + 2,
empathy 1 (the rejected rash not counted): top hold.apology×3, complaint.empathy_first×1; hit rates hold 2/3,
empathy 1/3; turned negative 2, recovered 1; prompts shown 3, heeded 1, dismissed 1.
Team red: 4 calls, (89 + 94 + 100 + 100) / 4 = 95.75, mixed (2 and 2); hold 2/4, empathy 1/4.
Week of 2026-11-30: c4 of a1, listen.dead_air (97). Globex's g1 call, the same week: nobody at acme sees it.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.qa_app import Principals, QAClient, qa_client
from support.qa_calls import ShownPrompt, finding, mood, store_call

from service.persistence.call_store import CallStore

INJECTED_AGENT = '=HYPERLINK("http://evil.example/","x")'
PRINCIPALS: Principals = {
    "lead-acme": ("supervisor", "acme", None),
    "lead-red": ("supervisor", "acme", ["red"]),
    "lead-globex": ("supervisor", "globex", None),
    "qa-acme": ("qa", "acme", None),
    "a1": ("agent", "acme", "red"),
    "a2": ("agent", "acme", "red"),
    "b1": ("agent", "acme", "blue"),
    "g1": ("agent", "globex", "red"),
    "pbx-acme": ("integrator", "acme", None),
}
WEEK1, WEEK2 = "2026-11-23", "2026-11-30"
RANGE = {"date_from": "2026-11-23", "date_to": "2026-12-06"}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trends-seed") / "callwatch.db"
    store = CallStore(f"sqlite:///{path}")
    store_call(store, "c1", "a1", "acme",
               findings=[finding("hold.apology", "warn", 40.0), finding("promise.rash", "breach", 120.0)])
    store_call(store, "c2", "a1", "acme",
               findings=[finding("hold.apology", "warn", 40.0), finding("hold.apology", "warn", 95.0)],
               moods=[mood("neutral", 0.0), mood("angry", -0.5, "negative"), mood("satisfied", 0.1, "recovered")],
               prompts=[ShownPrompt("listen.dead_air", 12.0, cleared=True), ShownPrompt("hold.apology", 40.0, dismissed=True)])
    store_call(store, "c3", "a1", "acme", started_at="2026-11-29T23:30:00+08:00",
               moods=[mood("upset", -0.4, "negative"), mood("upset", -0.3)],
               prompts=[ShownPrompt("listen.no_silence", 30.0)])
    store_call(store, "d1", "a2", "acme", findings=[finding("promise.rash", "breach", 120.0)])
    store_call(store, "e1", "b1", "acme", findings=[finding("closing.caller_hangs_up_first", "warn", 180.0)])
    store_call(store, "x1", INJECTED_AGENT, "acme")
    store_call(store, "c4", "a1", "acme", started_at="2026-11-30T08:00:00+08:00",
               findings=[finding("listen.dead_air", "warn", 50.0)])
    store_call(store, "g1-call", "g1", "globex", findings=[finding("promise.rash", "breach", 10.0)])
    store.db.engine.dispose()
    return path


def _review(qa: QAClient, call_id: str, reject: dict[str, str], add: list[str]) -> dict[str, Any]:
    review = qa.ok(qa.post(f"/v1/qa/calls/{call_id}/review", "qa-acme"), 201)
    for f in review["findings"]:
        decision = {"decision": "reject", "reason": reject[f["rule_id"]]} if f["rule_id"] in reject else {"decision": "confirm"}
        qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/findings/{f['finding_id']}/decision", "qa-acme", decision))
    for rule_id in add:
        qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/findings", "qa-acme",
                      {"rule_id": rule_id, "t": 60.0, "note": "客户投诉时未先安抚"}), 201)
    return qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/submit", "qa-acme"))


@pytest.fixture(scope="module")
def qa(tmp_path_factory: pytest.TempPathFactory, seeded_database: Path) -> QAClient:
    """The calls reviewed once for the whole module: the trends only read."""
    tmp = tmp_path_factory.mktemp("trends")
    shutil.copy(seeded_database, tmp / "callwatch.db")
    client = qa_client(tmp, PRINCIPALS, tmp / "callwatch.db")
    assert _review(client, "c1", {"promise.rash": "承诺合理"}, ["complaint.empathy_first"])["reviewed_score"] == 89.0
    d1 = _review(client, "d1", {}, [])
    assert d1["reviewed_score"] == 95.0
    dispute = client.ok(client.post(f"/v1/qa/my-reviews/{d1['review_id']}/disputes", "a2",
                                    {"finding_id": d1["findings"][0]["finding_id"], "comment": "客户要求的"}), 201)
    ruled = client.ok(client.post(f"/v1/qa/disputes/{dispute['dispute_id']}/ruling", "lead-acme",
                                  {"outcome": "overturn", "reason": "录音证实"}))
    assert ruled["ruling"]["score_after"] == 100.0
    return client


def _rows(trends: dict[str, Any], level: str) -> dict[tuple[str, str], dict[str, Any]]:
    key = "agent_id" if level == "agents" else "team"
    return {(r[key], r["week"]): r for r in trends[level]}


def test_the_figures_per_agent_team_and_week_are_the_hand_worked_ones(qa: QAClient) -> None:
    trends = qa.ok(qa.get("/v1/qa/trends", "lead-acme", **RANGE))
    assert trends["weeks"] == [WEEK1, WEEK2] and (trends["date_from"], trends["date_to"]) == ("2026-11-23", "2026-12-06")
    agents = _rows(trends, "agents")
    assert set(agents) == {("a1", WEEK1), ("a2", WEEK1), ("b1", WEEK1), (INJECTED_AGENT, WEEK1), ("a1", WEEK2)}
    a1 = agents[("a1", WEEK1)]
    assert a1 == {
        "level": "agent", "week": WEEK1, "tenant": "acme", "team": "red", "agent_id": "a1", "calls": 3,
        "average_score": 94.33, "score_source": "mixed", "reviewed_calls": 1, "automatic_calls": 2,
        "top_breaches": [{"rule_id": "hold.apology", "findings": 3}, {"rule_id": "complaint.empathy_first", "findings": 1}],
        "rule_hit_rates": {"complaint.empathy_first": 0.3333, "hold.apology": 0.6667},
        "turned_negative": 2, "recovered": 1, "prompts_shown": 3, "prompts_heeded": 1, "prompts_dismissed": 1}
    a2 = agents[("a2", WEEK1)]  # the overturned finding is gone from the reviewed score and the findings
    assert (a2["average_score"], a2["score_source"], a2["top_breaches"], a2["rule_hit_rates"]) == (100.0, "reviewed", [], {})
    b1 = agents[("b1", WEEK1)]
    assert (b1["team"], b1["average_score"], b1["score_source"], b1["rule_hit_rates"]) == (
        "blue", 96.0, "automatic", {"closing.caller_hangs_up_first": 1.0})
    assert agents[(INJECTED_AGENT, WEEK1)]["team"] is None
    assert agents[("a1", WEEK2)]["average_score"] == 97.0

    teams = _rows(trends, "teams")
    assert set(teams) == {("red", WEEK1), ("blue", WEEK1), ("red", WEEK2)}  # the agent in no team is in no team row
    red = teams[("red", WEEK1)]
    assert (red["level"], red["agent_id"], red["calls"], red["average_score"], red["score_source"], red["reviewed_calls"],
            red["automatic_calls"]) == ("team", None, 4, 95.75, "mixed", 2, 2)
    assert red["rule_hit_rates"] == {"complaint.empathy_first": 0.25, "hold.apology": 0.5}
    assert (red["turned_negative"], red["recovered"], red["prompts_shown"], red["prompts_heeded"]) == (2, 1, 3, 1)


def test_filters_by_date_team_and_agent(qa: QAClient) -> None:
    week1 = qa.ok(qa.get("/v1/qa/trends", "lead-acme", date_from="2026-11-23", date_to="2026-11-29"))
    assert week1["weeks"] == [WEEK1] and {r["week"] for r in week1["agents"]} == {WEEK1}
    assert _rows(week1, "agents")[("a1", WEEK1)]["calls"] == 3  # Sunday night on the call's own clock
    saturday = qa.ok(qa.get("/v1/qa/trends", "lead-acme", date_from="2026-11-23", date_to="2026-11-28"))
    assert _rows(saturday, "agents")[("a1", WEEK1)]["calls"] == 2
    blue = qa.ok(qa.get("/v1/qa/trends", "lead-acme", team="blue", **RANGE))
    assert [r["agent_id"] for r in blue["agents"]] == ["b1"] and [r["team"] for r in blue["teams"]] == ["blue"]
    one = qa.ok(qa.get("/v1/qa/trends", "qa-acme", agent_id="a2", **RANGE))
    assert [(r["agent_id"], r["week"]) for r in one["agents"]] == [("a2", WEEK1)]
    assert [(r["team"], r["calls"]) for r in one["teams"]] == [("red", 1)]


def test_a_team_supervisor_sees_its_teams_and_an_agent_only_itself(qa: QAClient) -> None:
    red = qa.ok(qa.get("/v1/qa/trends", "lead-red", **RANGE))
    assert {r["agent_id"] for r in red["agents"]} == {"a1", "a2"} and {r["team"] for r in red["teams"]} == {"red"}
    assert _rows(red, "teams")[("red", WEEK1)] == _rows(qa.ok(qa.get("/v1/qa/trends", "lead-acme", **RANGE)), "teams")[("red", WEEK1)]
    for params in ({"team": "blue"}, {"agent_id": "b1"}):
        assert qa.get("/v1/qa/trends", "lead-red", **RANGE, **params).status_code == 404, params

    mine = qa.ok(qa.get("/v1/qa/trends", "a1", **RANGE))
    assert {(r["agent_id"], r["week"]) for r in mine["agents"]} == {("a1", WEEK1), ("a1", WEEK2)} and mine["teams"] == []
    assert _rows(mine, "agents")[("a1", WEEK1)]["average_score"] == 94.33
    for params in ({"agent_id": "a2"}, {"team": "red"}):
        assert qa.get("/v1/qa/trends", "a1", **RANGE, **params).status_code == 404, params
    assert qa.ok(qa.get("/v1/qa/trends", "a1", agent_id="a1", **RANGE))["agents"] == mine["agents"]

    globex = qa.ok(qa.get("/v1/qa/trends", "lead-globex", **RANGE))
    assert [r["agent_id"] for r in globex["agents"]] == ["g1"] and globex["agents"][0]["tenant"] == "globex"
    assert "g1" not in {r["agent_id"] for r in qa.ok(qa.get("/v1/qa/trends", "lead-acme", **RANGE))["agents"]}


def test_refusals(qa: QAClient) -> None:
    for path in ("/v1/qa/trends", "/v1/qa/trends.csv"):
        assert qa.get(path, None).status_code == 401
        assert qa.get(path, "pbx-acme").status_code == 403
        r = qa.get(path, "lead-acme", date_from="2026-12-01", date_to="2026-11-01")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "date_from"]
        assert qa.get(path, "lead-acme", date_from="2020-01-01", date_to="2026-01-01").status_code == 422


def test_the_csv_holds_the_same_rows_and_no_cell_is_a_formula(qa: QAClient) -> None:
    r = qa.get("/v1/qa/trends.csv", "lead-acme", **RANGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 5 + 3
    a1 = next(x for x in rows if (x["level"], x["agent_id"], x["week"]) == ("agent", "a1", WEEK1))
    assert (a1["calls"], a1["average_score"], a1["score_source"], a1["top_breaches"]) == (
        "3", "94.33", "mixed", "hold.apology×3; complaint.empathy_first×1")
    assert (a1["hold.apology"], a1["complaint.empathy_first"], a1["promise.rash"]) == ("0.6667", "0.3333", "0.0")
    injected = next(x for x in rows if x["agent_id"].startswith("'"))
    assert injected["agent_id"] == "'" + INJECTED_AGENT
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values() if cell)
    mine = qa.get("/v1/qa/trends.csv", "a1", **RANGE).text
    assert "a2" not in mine and not any(line.startswith("team,") for line in mine.splitlines()[1:])
    assert sum(line.startswith("agent,") for line in mine.splitlines()) == 2


def test_agent_rows_come_a_page_at_a_time_and_team_rows_whole(qa: QAClient) -> None:
    whole = qa.ok(qa.get("/v1/qa/trends", "qa-acme", **RANGE))
    assert whole["total_agents"] == len(whole["agents"]) == 5 and (whole["offset"], whole["limit"]) == (0, 500)
    pages = [qa.ok(qa.get("/v1/qa/trends", "qa-acme", **RANGE, offset=start, limit=2)) for start in (0, 2, 4)]
    assert [len(p["agents"]) for p in pages] == [2, 2, 1] and {p["total_agents"] for p in pages} == {5}
    assert [r for p in pages for r in p["agents"]] == whole["agents"]
    assert all(p["teams"] == whole["teams"] for p in pages)
    past = qa.ok(qa.get("/v1/qa/trends", "qa-acme", **RANGE, offset=9))
    assert past["agents"] == [] and past["total_agents"] == 5
    for bad in ({"limit": 0}, {"limit": 5001}, {"offset": -1}):
        assert qa.get("/v1/qa/trends", "qa-acme", **RANGE, **bad).status_code == 422
    csv_rows = qa.get("/v1/qa/trends.csv", "qa-acme", **RANGE, limit=1).text.strip().splitlines()[1:]
    assert len(csv_rows) == 5 + len(whole["teams"])  # the CSV is never paged
