"""Calibration through the real app on a real SQLite store and keys file: a supervisor sends one call to three
reviewers, each scores it blind, and the result's figures are those worked by hand in test_calibration_result.py
(Cohen 0.2857 once two have submitted, Fleiss 0.1667 once all three have). Blindness and every refusal are
tested: a reviewer sees no one else's work and no result before it submits; another tenant's, another team's,
an outsider's requests are 404; roles not admitted 403; no key 401. The call's normal review stays its own."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from support.qa_app import Principals, QAClient, qa_client
from support.qa_calls import finding, store_call

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
    "qa-4": ("qa", "acme", None),
    "qa-globex": ("qa", "globex", None),
    "a1": ("agent", "acme", "red"),
    "g1": ("agent", "globex", None),
}
FINDINGS = [finding("hold.apology", "warn", 40.0), finding("hold.apology", "warn", 95.0),
            finding("promise.rash", "breach", 120.0), finding("listen.dead_air", "warn", 150.0),
            finding("closing.caller_hangs_up_first", "warn", 180.0)]
# What each reviewer decides, by (rule, t) of the automatic findings, and what it adds (test_calibration_result.py).
C, R = "confirm", "reject"
SCORINGS: dict[str, tuple[dict[tuple[str, float], str], list[str]]] = {
    "qa-1": ({("hold.apology", 40.0): C, ("hold.apology", 95.0): R, ("promise.rash", 120.0): C,
              ("closing.caller_hangs_up_first", 180.0): C, ("listen.dead_air", 150.0): R}, ["complaint.empathy_first"]),
    "qa-2": ({("hold.apology", 40.0): C, ("hold.apology", 95.0): C, ("promise.rash", 120.0): R,
              ("closing.caller_hangs_up_first", 180.0): C, ("listen.dead_air", 150.0): R}, []),
    "qa-3": ({("hold.apology", 40.0): R, ("hold.apology", 95.0): R, ("promise.rash", 120.0): C,
              ("closing.caller_hangs_up_first", 180.0): C, ("listen.dead_air", 150.0): R}, ["complaint.empathy_first"]),
}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration-seed") / "callwatch.db"
    store = CallStore(f"sqlite:///{path}")
    store_call(store, "cal-1", "a1", "acme", findings=FINDINGS)
    store_call(store, "cal-g", "g1", "globex", findings=FINDINGS)
    key = store.create_call("cal-live", "a1", "inbound", None, None, {}, "acme")  # no report yet
    assert key == "cal-live"
    store.db.engine.dispose()
    return path


@pytest.fixture
def qa(tmp_path: Path, seeded_database: Path) -> QAClient:
    shutil.copy(seeded_database, tmp_path / "callwatch.db")
    return qa_client(tmp_path, PRINCIPALS, tmp_path / "callwatch.db")


def _calibration(qa: QAClient, reviewers: list[str] | None = None, who: str = "lead-acme") -> dict[str, Any]:
    return qa.ok(qa.post("/v1/qa/calibrations", who, {"call_id": "cal-1", "reviewers": reviewers or ["qa-1", "qa-2", "qa-3"],
                                                      "note": "投诉处理的共情判定"}), 201)


def _path(calibration: dict[str, Any], rest: str = "") -> str:
    return f"/v1/qa/my-calibrations/{calibration['calibration_id']}{rest}"


def _score(qa: QAClient, calibration: dict[str, Any], who: str, submit: bool = True) -> dict[str, Any]:
    decisions, added = SCORINGS[who]
    mine = qa.ok(qa.get(_path(calibration), who))
    for f in mine["findings"]:
        if f["source"] == "automatic":
            decision = decisions[(f["rule_id"], f["t"])]
            qa.ok(qa.post(_path(calibration, f"/findings/{f['finding_id']}/decision"), who,
                          {"decision": decision, "reason": "听录音判断" if decision == R else None}))
    for rule_id in added:
        qa.ok(qa.post(_path(calibration, "/findings"), who, {"rule_id": rule_id, "t": 60.0, "note": "客户投诉时未先安抚"}), 201)
    return qa.ok(qa.post(_path(calibration, "/submit"), who)) if submit else qa.ok(qa.get(_path(calibration), who))


def test_three_reviewers_score_blind_and_the_result_is_the_hand_worked_one(qa: QAClient) -> None:
    calibration = _calibration(qa)
    assert calibration["call_id"] == "cal-1" and calibration["agent_id"] == "a1" and calibration["created_by"] == "lead-acme"
    assert [(r["reviewer"], r["state"]) for r in calibration["reviewers"]] == [
        ("qa-1", "not_started"), ("qa-2", "not_started"), ("qa-3", "not_started")]

    first = _score(qa, calibration, "qa-1")
    assert first["state"] == "submitted" and first["score"] == 100 - 3 - 5 - 4 - 8  # hold, rash, closing, empathy
    assert qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}/result", "lead-acme").status_code == 409

    _score(qa, calibration, "qa-2")
    two = qa.ok(qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}/result", "lead-acme"))
    assert two["complete"] is False and two["pending"] == ["qa-3"]
    assert two["kappa"]["method"] == "cohen" and two["kappa"]["value"] == pytest.approx(0.2857, abs=1e-4)

    _score(qa, calibration, "qa-3")
    result = qa.ok(qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}/result", "lead-acme"))
    assert result["complete"] is True and result["pending"] == []
    assert result["kappa"] == {"method": "fleiss", "value": pytest.approx(0.1667, abs=1e-4), "subjects": 5, "raters": 3}
    assert [(r["rule_id"], r["yes"], r["no"], r["majority"], r["automatic"], r["automatic_agrees"]) for r in result["rules"]] == [
        ("closing.caller_hangs_up_first", 3, 0, "yes", True, True),
        ("complaint.empathy_first", 2, 1, "yes", False, False),
        ("hold.apology", 2, 1, "yes", True, True),
        ("listen.dead_air", 0, 3, "no", True, False),
        ("promise.rash", 2, 1, "yes", True, True)]
    assert [r["agreement"] for r in result["rules"]] == [1.0, 0.3333, 0.3333, 1.0, 0.3333]
    assert result["automatic_agreement"] == 0.6 and result["automatic_score"] == 100 - 6 - 5 - 3 - 4
    # qa-1: hold 3, rash 5, closing 4, empathy 8; qa-2: hold 2 × 3, closing 4; qa-3: rash 5, closing 4, empathy 8.
    assert [(r["reviewer"], r["score"]) for r in result["reviewers"]] == [("qa-1", 80.0), ("qa-2", 90.0), ("qa-3", 83.0)]
    assert [(f["rule_id"], f["confirmed"], f["rejected"]) for f in result["findings"]] == [
        ("hold.apology", 2, 1), ("hold.apology", 1, 2), ("promise.rash", 2, 1), ("listen.dead_air", 0, 3),
        ("closing.caller_hangs_up_first", 3, 0)]
    # Each reviewer, once submitted, sees the same result.
    assert qa.ok(qa.get(_path(calibration, "/result"), "qa-2")) == result


def test_a_reviewer_sees_neither_the_others_work_nor_the_result_before_it_submits(qa: QAClient) -> None:
    calibration = _calibration(qa)
    _score(qa, calibration, "qa-1")
    _score(qa, calibration, "qa-2")
    third = _score(qa, calibration, "qa-3", submit=False)
    # Its own view: the five automatic findings and its own added one, its own decisions only.
    assert [f["source"] for f in third["findings"]].count("added") == 1 and len(third["findings"]) == 6
    r = qa.get(_path(calibration, "/result"), "qa-3")
    assert r.status_code == 409 and "blind" in r.json()["detail"]
    # Another reviewer's added finding is not there for it: deciding on it is a 404.
    first = qa.ok(qa.get(_path(calibration), "qa-1"))
    theirs = next(f["finding_id"] for f in first["findings"] if f["source"] == "added")
    assert theirs not in {f["finding_id"] for f in third["findings"]}
    assert qa.post(_path(calibration, f"/findings/{theirs}/decision"), "qa-3", {"decision": "confirm"}).status_code == 404
    # What the others decided does not show through its own decisions either.
    hold_95 = next(f for f in third["findings"] if (f["rule_id"], f["t"]) == ("hold.apology", 95.0))
    assert (hold_95["decision"], hold_95["reason"]) == ("rejected", "听录音判断")
    assert qa.ok(qa.get(_path(calibration), "qa-2"))["findings"][1]["decision"] == "confirmed"  # qa-2's own


def test_a_supervisor_taking_part_is_as_blind_as_any_reviewer(qa: QAClient) -> None:
    calibration = _calibration(qa, ["qa-1", "qa-2", "lead-acme"])
    _score(qa, calibration, "qa-1")
    _score(qa, calibration, "qa-2")
    r = qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}/result", "lead-acme")
    assert r.status_code == 409 and "blind" in r.json()["detail"]
    assert qa.ok(qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}/result", "chief"))["kappa"]["method"] == "cohen"


def test_submitted_work_is_final_and_every_automatic_finding_must_be_decided(qa: QAClient) -> None:
    calibration = _calibration(qa)
    r = qa.post(_path(calibration, "/submit"), "qa-1")
    assert r.status_code == 409 and "pending: [" in r.json()["detail"]
    mine = _score(qa, calibration, "qa-1")
    some = mine["findings"][0]["finding_id"]
    assert qa.post(_path(calibration, f"/findings/{some}/decision"), "qa-1", {"decision": "confirm"}).status_code == 409
    assert qa.post(_path(calibration, "/findings"), "qa-1",
                   {"rule_id": "hold.apology", "t": 1.0, "note": "再加一条"}).status_code == 409
    assert qa.post(_path(calibration, "/findings"), "qa-2",
                   {"rule_id": "hold.apology", "t": 999.0, "note": "通话结束之后"}).status_code == 422


def test_the_calls_normal_review_is_separate_from_calibration(qa: QAClient) -> None:
    calibration = _calibration(qa)
    _score(qa, calibration, "qa-1")
    review = qa.ok(qa.post("/v1/qa/calls/cal-1/review", "qa-1"), 201)
    assert [f["decision"] for f in review["findings"]] == ["pending"] * 5 and review["reviewed_score"] is None
    first = review["findings"][0]["finding_id"]
    qa.ok(qa.post(f"/v1/qa/reviews/{review['review_id']}/findings/{first}/decision", "qa-2",
                  {"decision": "reject", "reason": "正常复核"}))
    mine = qa.ok(qa.get(_path(calibration), "qa-2"))
    assert {f["decision"] for f in mine["findings"]} == {"pending"}  # the review's decision is not qa-2's calibration's
    assert len(qa.ok(qa.get("/v1/qa/reviews", "qa-1", call_id="cal-1"))["reviews"]) == 1


def test_calibrations_are_in_the_reviewers_queue_and_list(qa: QAClient) -> None:
    calibration = _calibration(qa)
    items = [i for i in qa.ok(qa.get("/v1/qa/queue", "qa-1"))["items"] if i["kind"] == "calibration"]
    assert [(i["calibration_id"], i["state"], i["call_id"]) for i in items] == [
        (calibration["calibration_id"], "not_started", "cal-1")]
    assert items[0]["reasons"] == [{"code": "calibration", "detail": "lead-acme asked for a blind calibration"}]
    first = qa.ok(qa.get(_path(calibration), "qa-1"))["findings"][0]["finding_id"]
    qa.ok(qa.post(_path(calibration, f"/findings/{first}/decision"), "qa-1", {"decision": "confirm"}))
    assert [i["state"] for i in qa.ok(qa.get("/v1/qa/queue", "qa-1"))["items"]] == ["in_progress"]
    listed = qa.ok(qa.get("/v1/qa/my-calibrations", "qa-1"))["calibrations"]
    assert [(c["calibration_id"], c["state"]) for c in listed] == [(calibration["calibration_id"], "in_progress")]
    assert qa.ok(qa.get("/v1/qa/my-calibrations", "qa-4"))["calibrations"] == []
    assert qa.ok(qa.get("/v1/qa/queue", "qa-4"))["items"] == []
    shown = qa.ok(qa.get(f"/v1/qa/calibrations/{calibration['calibration_id']}", "lead-acme"))
    assert [(r["reviewer"], r["state"]) for r in shown["reviewers"]] == [
        ("qa-1", "in_progress"), ("qa-2", "not_started"), ("qa-3", "not_started")]
    assert [c["calibration_id"] for c in qa.ok(qa.get("/v1/qa/calibrations", "lead-red"))["calibrations"]] == [
        calibration["calibration_id"]]
    assert qa.ok(qa.get("/v1/qa/calibrations", "lead-blue"))["calibrations"] == []
    assert qa.ok(qa.get("/v1/qa/calibrations", "lead-globex"))["calibrations"] == []


# ---------------------------------------------------------------- refusals


def test_who_may_not_see_a_calibration_gets_a_404_and_a_role_not_admitted_a_403(qa: QAClient) -> None:
    calibration = _calibration(qa)
    cid = calibration["calibration_id"]
    supervisor_paths = [f"/v1/qa/calibrations/{cid}", f"/v1/qa/calibrations/{cid}/result"]
    reviewer_paths = [f"/v1/qa/my-calibrations/{cid}", f"/v1/qa/my-calibrations/{cid}/result"]
    for path in [*supervisor_paths, *reviewer_paths, "/v1/qa/calibrations", "/v1/qa/my-calibrations"]:
        assert qa.get(path, None).status_code == 401, path
        assert qa.get(path, "a1").status_code == 403, path
    for path in supervisor_paths:
        assert qa.get(path, "qa-1").status_code == 403, path  # a reviewer's are under /my-calibrations
        for name in ("lead-globex", "lead-blue"):  # another tenant's; another team's
            assert qa.get(path, name).status_code == 404, (name, path)
    for path in reviewer_paths:
        for name in ("qa-4", "qa-globex", "lead-acme"):  # not among its reviewers
            assert qa.get(path, name).status_code == 404, (name, path)
    for rest, body in (("/findings/1/decision", {"decision": "confirm"}),
                       ("/findings", {"rule_id": "hold.apology", "t": 1.0, "note": "x"}), ("/submit", None)):
        assert qa.post(_path(calibration, rest), "qa-4", body).status_code == 404
        assert qa.post(_path(calibration, rest), "a1", body).status_code == 403
    assert qa.post("/v1/qa/calibrations", "qa-1", {"call_id": "cal-1", "reviewers": ["qa-1", "qa-2"]}).status_code == 403


@pytest.mark.parametrize("who, body, status, says", [
    ("lead-acme", {"call_id": "cal-g", "reviewers": ["qa-1", "qa-2"]}, 404, "no such call"),  # globex's call
    ("lead-blue", {"call_id": "cal-1", "reviewers": ["qa-1", "qa-2"]}, 404, "no such call"),  # a red agent's call
    ("lead-acme", {"call_id": "cal-live", "reviewers": ["qa-1", "qa-2"]}, 409, "no report yet"),
    ("lead-acme", {"call_id": "cal-1", "reviewers": ["qa-1", "qa-globex"]}, 422, "no reviewer's key"),
    ("lead-acme", {"call_id": "cal-1", "reviewers": ["qa-1", "lead-blue"]}, 422, "may not see this call"),
    ("lead-acme", {"call_id": "cal-1", "reviewers": ["qa-1"]}, 422, "at least 2"),
    ("lead-acme", {"call_id": "cal-1", "reviewers": ["qa-1", "qa-1"]}, 422, "named once"),
])
def test_a_calibration_that_cannot_be_made_is_refused(qa: QAClient, who: str, body: dict[str, Any], status: int,
                                                      says: str) -> None:
    r = qa.post("/v1/qa/calibrations", who, body)
    assert r.status_code == status, r.text
    assert says in r.text
