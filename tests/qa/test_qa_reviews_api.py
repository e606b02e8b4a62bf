"""/v1/qa through the real app (service.app.create_app) on a real SQLite store and a real keys file: a reviewer
works a call's findings, the agent acknowledges and disputes, a supervisor of the agent's team rules, and
everyone else is refused as docs/security.md says (401 no key, 403 wrong role, 404 what one may not see)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.qa_app import ModelFreeRuntime, Principals, qa_client
from support.qa_app import QAClient as QA
from support.stand_in_state import install_stand_in
from support.stored_reports import AUTOMATIC_SCORE, PHONE, seed_call

from service.app import create_app
from service.settings import Settings
from service.persistence.call_store import CallStore

PRINCIPALS: Principals = {
    "qa-acme": ("qa", "acme", None),
    "qa-globex": ("qa", "globex", None),
    "lead-red": ("supervisor", "acme", ["red"]),
    "lead-blue": ("supervisor", "acme", ["blue"]),
    "lead-acme": ("supervisor", "acme", None),  # no teams: every acme agent
    "lead-globex": ("supervisor", "globex", None),
    "chief": ("supervisor", None, None),  # deployment-wide
    "a1": ("agent", "acme", "red"),
    "a2": ("agent", "acme", "blue"),
    "g1": ("agent", "globex", None),
    "pbx-acme": ("integrator", "acme", None),
}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Calls: acme's `c-a1` (agent a1, team red) and `c-a2` (a2, team blue); globex's own `c-a1` (agent g1),
    stored under a derived key since acme's has that id. Made once; each test works on a copy."""
    path = tmp_path_factory.mktemp("qa-seed") / "callwatch.db"
    store = CallStore(f"sqlite:///{path}")
    seed_call(store, "c-a1", "a1", "acme")
    seed_call(store, "c-a2", "a2", "acme")
    seed_call(store, "c-a1", "g1", "globex")
    store.db.engine.dispose()
    return path


@pytest.fixture
def qa(tmp_path: Path, seeded_database: Path) -> QA:
    shutil.copy(seeded_database, tmp_path / "callwatch.db")
    return qa_client(tmp_path, PRINCIPALS, tmp_path / "callwatch.db")


def _open(qa: QA, who: str, call_id: str = "c-a1", status: int = 201) -> dict[str, Any]:
    return qa.ok(qa.post(f"/v1/qa/calls/{call_id}/review", who), status)


def _by_rule(review: dict[str, Any]) -> dict[tuple[str, float], int]:
    return {(f["rule_id"], f["t"]): f["finding_id"] for f in review["findings"]}


def _decide(qa: QA, who: str, review: dict[str, Any], finding_id: int, decision: str, reason: str | None = None) -> Any:
    return qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/findings/{finding_id}/decision", who,
                         {"decision": decision, "reason": reason}))


def _reviewed(qa: QA, who: str = "qa-acme", call_id: str = "c-a1") -> dict[str, Any]:
    """c-a1 reviewed: one hold.apology rejected, the rest confirmed, complaint.empathy_first added, submitted.
    Reviewed score 100 − 3 − 5 − 4 − 8 = 80 (automatic 85)."""
    opened = qa.post(f"/v1/qa/calls/{call_id}/review", who)
    review = qa.ok(opened, 201 if opened.status_code == 201 else 200)  # opened now, or before by the test
    ids = _by_rule(review)
    for (rule_id, t), finding_id in ids.items():
        if (rule_id, t) == ("hold.apology", 95.0):
            _decide(qa, who, review, finding_id, "reject", "恢复通话时已致歉，识别有误")
        else:
            _decide(qa, who, review, finding_id, "confirm")
    qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/findings", who,
                  {"rule_id": "complaint.empathy_first", "t": 60.0, "note": "客户投诉时未先安抚情绪"}), 201)
    return qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/submit", who))


# ---------------------------------------------------------------- the workflow


def test_a_reviewer_rejects_one_adds_one_and_the_score_and_history_follow(qa: QA) -> None:
    opened = _open(qa, "qa-acme")
    assert opened["call_id"] == "c-a1" and opened["agent_id"] == "a1" and opened["state"] == "open"
    assert opened["automatic_score"] == AUTOMATIC_SCORE and opened["reviewed_score"] is None
    assert [f["decision"] for f in opened["findings"]] == ["pending"] * 4
    assert _open(qa, "lead-red", status=200)["review_id"] == opened["review_id"]  # one review a call

    submitted = _reviewed(qa)
    assert submitted["state"] == "submitted" and submitted["submitted_by"] == "qa-acme"
    assert (submitted["automatic_score"], submitted["reviewed_score"]) == (AUTOMATIC_SCORE, 80.0)
    added = [f for f in submitted["findings"] if f["source"] == "added"]
    assert added == [{**added[0], "rule_id": "complaint.empathy_first", "severity": "breach", "t": 60.0,
                      "note": "客户投诉时未先安抚情绪", "decision": "confirmed", "counted": True}]
    rejected = [f for f in submitted["findings"] if f["decision"] == "rejected"]
    assert [(f["rule_id"], f["t"], f["reason"], f["counted"]) for f in rejected] == [
        ("hold.apology", 95.0, "恢复通话时已致歉，识别有误", False)]

    history = qa.ok(qa.get(f"/v1/qa/reviews/{submitted['review_id']}/history", "qa-acme"))["entries"]
    # The findings in call-time order: hold.apology 40 s, 95 s, promise.rash, closing.
    assert [e["action"] for e in history] == ["opened", "confirmed", "rejected", "confirmed", "confirmed", "added",
                                              "submitted"]
    assert {e["actor"] for e in history} == {"qa-acme"} and {e["actor_role"] for e in history} == {"qa"}
    why = {e["action"]: e for e in history}
    assert why["rejected"]["reason"] == "恢复通话时已致歉，识别有误"
    assert why["rejected"]["detail"] == {"rule_id": "hold.apology", "from": "pending", "to": "rejected"}
    assert why["added"]["reason"] == "客户投诉时未先安抚情绪" and why["added"]["detail"]["rule_id"] == "complaint.empathy_first"
    assert why["submitted"]["detail"] == {"automatic_score": AUTOMATIC_SCORE, "reviewed_score": 80.0}
    assert all(e["at"].endswith("Z") or e["at"].endswith("+00:00") for e in history)


def test_the_agent_disputes_a_supervisor_of_their_team_overturns_and_the_agent_sees_it(qa: QA) -> None:
    review = _reviewed(qa)
    review_id = review["review_id"]
    mine = qa.ok(qa.get("/v1/qa/my-reviews", "a1"))["reviews"]
    assert [r["review_id"] for r in mine] == [review_id] and mine[0]["call_id"] == "c-a1"
    assert qa.ok(qa.get("/v1/qa/my-reviews", "a2"))["reviews"] == []

    acked = qa.ok(qa.post(f"/v1/qa/my-reviews/{review_id}/acknowledge", "a1"))
    assert acked["acknowledged_at"] is not None
    assert qa.ok(qa.post(f"/v1/qa/my-reviews/{review_id}/acknowledge", "a1"))["acknowledged_at"] == acked["acknowledged_at"]

    closing = _by_rule(review)[("closing.caller_hangs_up_first", 180.0)]
    dispute = qa.ok(qa.post(f"/v1/qa/my-reviews/{review_id}/disputes", "a1",
                            {"finding_id": closing, "comment": "客户先说了再见才挂断"}), 201)
    assert dispute["state"] == "open" and dispute["ruling"] is None and dispute["rule_id"] == "closing.caller_hangs_up_first"
    assert qa.ok(qa.get(f"/v1/qa/reviews/{review_id}", "qa-acme"))["open_disputes"] == 1

    queue = qa.ok(qa.get("/v1/qa/disputes", "lead-red"))["disputes"]
    assert [d["dispute_id"] for d in queue] == [dispute["dispute_id"]]
    ruled = qa.ok(qa.post(f"/v1/qa/disputes/{dispute['dispute_id']}/ruling", "lead-red",
                          {"outcome": "overturn", "reason": "录音证实客户先道别，撤销该项"}))
    assert ruled["state"] == "overturned"
    assert ruled["ruling"] | {"ruled_at": None} == {
        "outcome": "overturned", "reason": "录音证实客户先道别，撤销该项", "ruled_by": "lead-red", "ruled_at": None,
        "score_before": 80.0, "score_after": 84.0}
    assert qa.ok(qa.get("/v1/qa/disputes", "lead-red"))["disputes"] == []
    assert [d["state"] for d in qa.ok(qa.get("/v1/qa/disputes", "lead-red", state="ruled"))["disputes"]] == ["overturned"]

    seen = qa.ok(qa.get(f"/v1/qa/my-reviews/{review_id}", "a1"))
    assert seen["reviewed_score"] == 84.0 and seen["automatic_score"] == AUTOMATIC_SCORE
    assert [(d["state"], d["ruling"]["reason"]) for d in seen["disputes"]] == [("overturned", "录音证实客户先道别，撤销该项")]
    assert {f["finding_id"]: f["counted"] for f in seen["findings"]}[closing] is False
    history = qa.ok(qa.get(f"/v1/qa/reviews/{review_id}/history", "lead-acme"))["entries"]
    assert [(e["action"], e["actor"]) for e in history[-3:]] == [
        ("acknowledged", "a1"), ("disputed", "a1"), ("overturned", "lead-red")]
    assert history[-2]["reason"] == "客户先说了再见才挂断"


def test_an_upheld_dispute_keeps_the_score_and_a_ruling_is_final(qa: QA) -> None:
    review = _reviewed(qa)
    added = _by_rule(review)[("complaint.empathy_first", 60.0)]
    dispute = qa.ok(qa.post(f"/v1/qa/my-reviews/{review['review_id']}/disputes", "a1",
                            {"finding_id": added, "comment": "我先道歉了"}), 201)
    path = f"/v1/qa/disputes/{dispute['dispute_id']}/ruling"
    ruled = qa.ok(qa.post(path, "lead-acme", {"outcome": "uphold", "reason": "道歉不等于共情"}))  # a lead without teams
    assert ruled["state"] == "upheld" and ruled["ruling"]["score_after"] == 80.0
    assert qa.post(path, "lead-red", {"outcome": "overturn", "reason": "再议"}).status_code == 409
    assert qa.ok(qa.get(f"/v1/qa/my-reviews/{review['review_id']}", "a1"))["reviewed_score"] == 80.0
    again = qa.post(f"/v1/qa/my-reviews/{review['review_id']}/disputes", "a1", {"finding_id": added, "comment": "再申诉"})
    assert again.status_code == 409 and "already disputed" in again.text


def test_steps_out_of_turn_are_409_and_bad_requests_422(qa: QA) -> None:
    review = _open(qa, "qa-acme")
    base = f"/v1/qa/reviews/{review['review_id']}"
    finding = review["findings"][0]["finding_id"]
    pending = qa.post(f"{base}/submit", "qa-acme")
    assert pending.status_code == 409 and "pending" in pending.text
    assert qa.post(f"{base}/findings/{finding}/decision", "qa-acme", {"decision": "reject"}).status_code == 422
    assert qa.post(f"{base}/findings/{finding}/decision", "qa-acme", {"decision": "reject", "reason": "  "}).status_code == 422
    assert qa.post(f"{base}/findings/999999/decision", "qa-acme", {"decision": "confirm"}).status_code == 404
    unknown = qa.post(f"{base}/findings", "qa-acme", {"rule_id": "made.up", "t": 1.0, "note": "x"})
    assert unknown.status_code == 422 and "made.up" in unknown.text
    late = qa.post(f"{base}/findings", "qa-acme", {"rule_id": "hold.apology", "t": 500.0, "note": "x"})
    assert late.status_code == 422 and "past the end of the call" in late.text
    assert qa.post(f"/v1/qa/my-reviews/{review['review_id']}/acknowledge", "a1").status_code == 404  # a draft
    for (_, _), finding_id in _by_rule(review).items():
        _decide(qa, "qa-acme", review, finding_id, "confirm")
    assert qa.ok(qa.post(f"{base}/submit", "qa-acme"))["reviewed_score"] == AUTOMATIC_SCORE  # all confirmed
    assert qa.post(f"{base}/submit", "qa-acme").status_code == 409
    assert qa.post(f"{base}/findings/{finding}/decision", "qa-acme", {"decision": "confirm"}).status_code == 409
    rejected_later = qa.post(f"/v1/qa/my-reviews/{review['review_id']}/disputes", "a1",
                             {"finding_id": finding, "comment": ""})
    assert rejected_later.status_code == 422


def test_a_call_without_a_report_cannot_be_reviewed_yet(qa: QA) -> None:
    qa.store.create_call("live-1", "a1", "inbound", None, None, {}, "acme")
    refused = qa.post("/v1/qa/calls/live-1/review", "qa-acme")
    assert refused.status_code == 409 and "report" in refused.text


# ---------------------------------------------------------------- refusals


def test_without_a_key_401_and_with_an_unknown_one_403_everywhere(qa: QA) -> None:
    review = _open(qa, "qa-acme")
    paths = [("POST", "/v1/qa/calls/c-a1/review"), ("GET", "/v1/qa/reviews"),
             ("GET", f"/v1/qa/reviews/{review['review_id']}"), ("GET", "/v1/qa/my-reviews"),
             ("POST", f"/v1/qa/my-reviews/{review['review_id']}/acknowledge"), ("GET", "/v1/qa/disputes")]
    for method, path in paths:
        assert qa.http.request(method, path).status_code == 401, path
        assert qa.http.request(method, path, headers={"Authorization": "Bearer cw_nope"}).status_code == 403, path


def test_each_role_is_refused_where_it_does_not_belong(qa: QA) -> None:
    review = _reviewed(qa)
    review_id = review["review_id"]
    closing = _by_rule(review)[("closing.caller_hangs_up_first", 180.0)]
    dispute = qa.ok(qa.post(f"/v1/qa/my-reviews/{review_id}/disputes", "a1", {"finding_id": closing, "comment": "不对"}), 201)
    ruling = f"/v1/qa/disputes/{dispute['dispute_id']}/ruling"
    body = {"outcome": "overturn", "reason": "理由"}
    # Agents and integrators are no reviewers; reviewers are no agents; QA users do not rule.
    for who in ("a1", "pbx-acme"):
        assert qa.post("/v1/qa/calls/c-a1/review", who).status_code == 403, who
        assert qa.get(f"/v1/qa/reviews/{review_id}", who).status_code == 403, who
    for who in ("qa-acme", "lead-red", "chief", "pbx-acme"):
        assert qa.get("/v1/qa/my-reviews", who).status_code == 403, who
        assert qa.post(f"/v1/qa/my-reviews/{review_id}/acknowledge", who).status_code == 403, who
    for who in ("qa-acme", "a1", "pbx-acme"):
        assert qa.post(ruling, who, body).status_code == 403, who
        assert qa.get("/v1/qa/disputes", who).status_code == 403, who
    # Another agent of the tenant, and another tenant's agent: not theirs, as if there were none.
    for who in ("a2", "g1"):
        assert qa.get(f"/v1/qa/my-reviews/{review_id}", who).status_code == 404, who
        assert qa.post(f"/v1/qa/my-reviews/{review_id}/acknowledge", who).status_code == 404, who
        assert qa.post(f"/v1/qa/my-reviews/{review_id}/disputes", who, {"finding_id": closing, "comment": "x"}).status_code == 404
    # Another team's supervisor and another tenant's: neither sees the review or the dispute, nor rules.
    for who in ("lead-blue", "lead-globex"):
        assert qa.get(f"/v1/qa/reviews/{review_id}", who).status_code == 404, who
        assert qa.get(f"/v1/qa/reviews/{review_id}/history", who).status_code == 404, who
        assert qa.get(f"/v1/qa/disputes/{dispute['dispute_id']}", who).status_code == 404, who
        assert qa.post(ruling, who, body).status_code == 404, who
        assert qa.ok(qa.get("/v1/qa/disputes", who, state="all"))["disputes"] == [], who
        assert review_id not in {r["review_id"] for r in qa.ok(qa.get("/v1/qa/reviews", who))["reviews"]}, who
    assert qa.post(f"/v1/qa/reviews/{review_id}/submit", "qa-globex").status_code == 404
    # Nothing of the refused tries reached the review.
    assert qa.ok(qa.get(f"/v1/qa/disputes/{dispute['dispute_id']}", "lead-red"))["state"] == "open"


def test_a_team_supervisor_reviews_only_its_teams_agents(qa: QA) -> None:
    assert qa.post("/v1/qa/calls/c-a1/review", "lead-blue").status_code == 404  # a1 is red
    blue = _open(qa, "lead-blue", "c-a2")
    red = _open(qa, "lead-red", "c-a1")
    listed = {name: {r["review_id"] for r in qa.ok(qa.get("/v1/qa/reviews", name))["reviews"]}
              for name in ("lead-red", "lead-blue", "lead-acme", "qa-acme", "chief", "qa-globex")}
    assert listed["lead-red"] == {red["review_id"]} and listed["lead-blue"] == {blue["review_id"]}
    assert listed["lead-acme"] == listed["qa-acme"] == listed["chief"] == {red["review_id"], blue["review_id"]}
    assert listed["qa-globex"] == set()
    assert qa.ok(qa.get("/v1/qa/reviews", "lead-red", agent_id="a2"))["reviews"] == []
    assert qa.get(f"/v1/qa/reviews/{blue['review_id']}", "lead-red").status_code == 404


def test_moving_an_agent_to_another_team_moves_their_reviews_at_once(qa: QA) -> None:
    review = _open(qa, "lead-red", "c-a1")
    path = qa.settings.keys_file
    assert path is not None
    text = path.read_text(encoding="utf-8")
    assert "name: a1\n  tenant: acme\n  team: red" in text
    path.write_text(text.replace("name: a1\n  tenant: acme\n  team: red", "name: a1\n  tenant: acme\n  team: blue"),
                    encoding="utf-8")
    import os
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert qa.get(f"/v1/qa/reviews/{review['review_id']}", "lead-red").status_code == 404
    assert qa.get(f"/v1/qa/reviews/{review['review_id']}", "lead-blue").status_code == 200


def test_call_ids_are_per_tenant_and_another_tenants_call_is_404(qa: QA) -> None:
    acme = _open(qa, "qa-acme", "c-a1")
    globex = _open(qa, "qa-globex", "c-a1")  # globex's own c-a1
    assert acme["review_id"] != globex["review_id"]
    assert (acme["agent_id"], globex["agent_id"]) == ("a1", "g1")
    assert acme["call_id"] == globex["call_id"] == "c-a1"  # each tenant sees the id its phone system sent
    assert qa.post("/v1/qa/calls/c-a2/review", "qa-globex").status_code == 404  # acme's only
    assert qa.get(f"/v1/qa/reviews/{acme['review_id']}", "qa-globex").status_code == 404
    # A deployment-wide key tells them apart by row key.
    keys = {r["call_id"] for r in qa.ok(qa.get("/v1/qa/reviews", "chief"))["reviews"]}
    assert "c-a1" in keys and any(k.startswith("c-a1~") for k in keys)
    assert [r["review_id"] for r in qa.ok(qa.get("/v1/qa/reviews", "qa-globex", call_id="c-a1"))["reviews"]] == [
        globex["review_id"]]


def test_personal_numbers_in_findings_and_reasons_are_masked_when_asked(qa: QA) -> None:
    qa.settings.mask_pii = True
    review = _open(qa, "qa-acme")
    finding = _by_rule(review)[("hold.apology", 95.0)]
    decided = _decide(qa, "qa-acme", review, finding, "reject", f"客户号码{PHONE}已核实")
    assert PHONE not in str(decided) and PHONE[-4:] in str(decided)
    history = qa.ok(qa.get(f"/v1/qa/reviews/{review['review_id']}/history", "qa-acme"))
    assert PHONE not in str(history)
    qa.settings.mask_pii = False
    assert PHONE in str(qa.ok(qa.get(f"/v1/qa/reviews/{review['review_id']}", "qa-acme")))


def test_without_any_keys_this_machine_reviews_but_agent_routes_want_a_key(tmp_path: Path) -> None:
    store = CallStore(f"sqlite:///{tmp_path / 'callwatch.db'}")
    seed_call(store, "c1", "a1", None)
    app = install_stand_in(create_app(), ModelFreeRuntime(Settings(data_dir=tmp_path), store))
    local = TestClient(app)
    opened = local.post("/v1/qa/calls/c1/review")
    assert opened.status_code == 201 and opened.json()["opened_by"] == "this machine"
    assert local.get("/v1/qa/disputes").status_code == 200
    assert local.get("/v1/qa/my-reviews").status_code == 401
    assert TestClient(app, client=("10.1.2.3", 50000)).post("/v1/qa/calls/c1/review").status_code == 403


def test_every_route_and_model_is_in_the_openapi_description() -> None:
    spec = create_app().openapi()
    paths = {p: set(ops) for p, ops in spec["paths"].items() if p.startswith("/v1/qa/")}
    assert paths == {
        "/v1/qa/calls/{call_id}/review": {"post"}, "/v1/qa/reviews": {"get"}, "/v1/qa/reviews/{review_id}": {"get"},
        "/v1/qa/reviews/{review_id}/history": {"get"}, "/v1/qa/reviews/{review_id}/findings": {"post"},
        "/v1/qa/reviews/{review_id}/findings/{finding_id}/decision": {"post"},
        "/v1/qa/reviews/{review_id}/submit": {"post"}, "/v1/qa/my-reviews": {"get"},
        "/v1/qa/my-reviews/{review_id}": {"get"}, "/v1/qa/my-reviews/{review_id}/acknowledge": {"post"},
        "/v1/qa/my-reviews/{review_id}/disputes": {"post"}, "/v1/qa/disputes": {"get"},
        "/v1/qa/disputes/{dispute_id}": {"get"}, "/v1/qa/disputes/{dispute_id}/ruling": {"post"},
        # What the agent's page reads beside its review (service/qa/page_api.py).
        "/v1/qa/my-reviews/{review_id}/transcript": {"get"},
        # Sampling plans, the work queue, calibration, trends (tests/qa/test_qa_plans_api.py and beside it).
        "/v1/qa/plans": {"get", "post"}, "/v1/qa/plans/{plan_id}": {"get", "put"},
        "/v1/qa/plans/{plan_id}/runs": {"post"}, "/v1/qa/plans/{plan_id}/picks": {"get"}, "/v1/qa/queue": {"get"},
        "/v1/qa/calibrations": {"get", "post"}, "/v1/qa/calibrations/{calibration_id}": {"get"},
        "/v1/qa/calibrations/{calibration_id}/result": {"get"}, "/v1/qa/my-calibrations": {"get"},
        "/v1/qa/my-calibrations/{calibration_id}": {"get"},
        "/v1/qa/my-calibrations/{calibration_id}/findings/{finding_id}/decision": {"post"},
        "/v1/qa/my-calibrations/{calibration_id}/findings": {"post"},
        "/v1/qa/my-calibrations/{calibration_id}/submit": {"post"},
        "/v1/qa/my-calibrations/{calibration_id}/result": {"get"}, "/v1/qa/trends": {"get"},
        "/v1/qa/trends.csv": {"get"}}
    schemas = spec["components"]["schemas"]
    assert {"ReviewOut", "ReviewList", "DisputeOut", "DisputeList", "History", "DecisionIn", "AddedFindingIn",
            "DisputeIn", "RulingIn", "PlanIn", "PlanOut", "RunOut", "PickList", "Queue", "CalibrationIn",
            "CalibrationOut", "MyCalibration", "CalibrationResult", "Trends"} <= set(schemas)
    assert "text/csv" in spec["paths"]["/v1/qa/trends.csv"]["get"]["responses"]["200"]["content"]
    decision = spec["paths"]["/v1/qa/reviews/{review_id}/findings/{finding_id}/decision"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(decision["responses"])
