"""The review workflow's storage (service/persistence/qa_reviews.py) on SQLite and PostgreSQL: each step, its refusals,
the scores, the append-only history, a retried write stored once, and a database restart mid-review."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from support.stored_reports import AUTOMATIC_SCORE, seed_call

from rules.config import load_rules_config
from service.access.keys import Principal
from service.persistence import qa_reviews as repo
from service.qa.errors import Conflict, NotFound
from service.qa.scoring import reviewed_scorer
from service.persistence.call_store import CallStore

REVIEWER = Principal("qa", "qa-li", "acme")
AGENT = Principal("agent", "a1", "acme")
LEAD = Principal("supervisor", "lead-red", "acme", teams=("red",))
SCORE = reviewed_scorer(load_rules_config())


def _opened(store: CallStore, call_id: str = "c1") -> str:
    key = seed_call(store, call_id, "a1", "acme")
    record = store.get_call(key)
    assert record is not None and record.report is not None
    review_id, opened = repo.open_review(store, key, "acme", "a1", record.score, record.report["findings"], REVIEWER)
    assert opened
    return review_id


def _finding_ids(store: CallStore, review_id: str) -> dict[tuple[str, float], int]:
    review = repo.get_review(store, review_id)
    assert review is not None
    return {(f.rule_id, f.t): f.finding_id for f in review.findings}


def _history_rows(store: CallStore) -> list[Any]:
    with store.db.engine.connect() as conn:
        return list(conn.execute(select(repo.qa_history).order_by(repo.qa_history.c.id)).all())


def test_the_whole_workflow_scores_keeps_history_and_refuses_steps_out_of_turn(database_url: str) -> None:
    store = CallStore(database_url)
    review_id = _opened(store)
    ids = _finding_ids(store, review_id)
    review = repo.get_review(store, review_id)
    assert review is not None and review.automatic_score == AUTOMATIC_SCORE and review.reviewed_score is None
    assert [f.decision for f in review.findings] == ["pending"] * 4

    with pytest.raises(Conflict, match=r"pending: \["):
        repo.submit(store, review_id, REVIEWER, SCORE)
    repo.decide(store, review_id, ids[("hold.apology", 40.0)], "confirmed", None, REVIEWER)
    repo.decide(store, review_id, ids[("hold.apology", 95.0)], "rejected", "已致歉，识别有误", REVIEWER)
    repo.decide(store, review_id, ids[("promise.rash", 120.0)], "rejected", "承诺合规", REVIEWER)
    repo.decide(store, review_id, ids[("promise.rash", 120.0)], "confirmed", "复听后确认", REVIEWER)  # changed mind
    repo.decide(store, review_id, ids[("closing.caller_hangs_up_first", 180.0)], "confirmed", None, REVIEWER)
    added = repo.add_finding(store, review_id, "complaint.empathy_first", "breach", 60.0, "客户投诉时未先安抚", REVIEWER)
    with pytest.raises(NotFound):
        repo.decide(store, review_id, 10**6, "confirmed", None, REVIEWER)

    # 100 − hold.apology 3 (one of two) − promise.rash 5 − closing 4 − complaint.empathy_first 8 (added)
    assert repo.submit(store, review_id, REVIEWER, SCORE) == 80.0
    for late in (lambda: repo.decide(store, review_id, added, "rejected", "晚了", REVIEWER),
                 lambda: repo.add_finding(store, review_id, "hold.apology", "warn", 1.0, "晚了", REVIEWER),
                 lambda: repo.submit(store, review_id, REVIEWER, SCORE)):
        with pytest.raises(Conflict):
            late()

    assert repo.acknowledge(store, review_id, AGENT) and not repo.acknowledge(store, review_id, AGENT)
    with pytest.raises(Conflict, match="rejected"):
        repo.raise_dispute(store, review_id, ids[("hold.apology", 95.0)], "本来就不算", AGENT)
    closing = repo.raise_dispute(store, review_id, ids[("closing.caller_hangs_up_first", 180.0)], "客户先说了再见", AGENT)
    empathy = repo.raise_dispute(store, review_id, added, "我先道歉了", AGENT)
    with pytest.raises(Conflict, match="already disputed"):
        repo.raise_dispute(store, review_id, added, "再说一次", AGENT)
    assert [d.dispute_id for _, d in repo.list_disputes(store, tenant="acme", state="open")] == [closing, empathy]

    assert repo.rule_dispute(store, closing, "overturned", "录音证实客户先道别", LEAD, SCORE) == 84.0
    assert repo.rule_dispute(store, empathy, "upheld", "道歉不等于共情", LEAD, SCORE) == 84.0
    with pytest.raises(Conflict, match="already ruled"):
        repo.rule_dispute(store, empathy, "overturned", "改主意", LEAD, SCORE)
    assert repo.list_disputes(store, tenant="acme", state="open") == []

    review = repo.get_review(store, review_id)
    assert review is not None and review.reviewed_score == 84.0 and review.automatic_score == 85.0
    counted = {(f.rule_id, f.t): f.counted for f in review.findings}
    assert counted == {("hold.apology", 40.0): True, ("hold.apology", 95.0): False, ("complaint.empathy_first", 60.0): True,
                       ("promise.rash", 120.0): True, ("closing.caller_hangs_up_first", 180.0): False}
    rulings = {d.dispute_id: d.ruling for d in review.disputes}
    assert rulings[closing] is not None and rulings[closing].outcome == "overturned"
    assert (rulings[closing].score_before, rulings[closing].score_after) == (80.0, 84.0)
    assert review.open_disputes == 0

    entries = repo.history(store, review_id)
    assert [(e.action, e.actor) for e in entries] == [
        ("opened", "qa-li"), ("confirmed", "qa-li"), ("rejected", "qa-li"), ("rejected", "qa-li"),
        ("confirmed", "qa-li"), ("confirmed", "qa-li"), ("added", "qa-li"), ("submitted", "qa-li"),
        ("acknowledged", "a1"), ("disputed", "a1"), ("disputed", "a1"), ("overturned", "lead-red"),
        ("upheld", "lead-red")]
    assert entries[4].detail == {"rule_id": "promise.rash", "from": "rejected", "to": "confirmed"}
    assert entries[4].reason == "复听后确认" and entries[9].reason == "客户先说了再见"
    assert entries[7].detail == {"automatic_score": 85.0, "reviewed_score": 80.0}
    assert entries[11].detail == {"rule_id": "closing.caller_hangs_up_first", "score_before": 80.0, "score_after": 84.0}
    assert all(e.at.utcoffset() is not None for e in entries)


def test_confirming_every_automatic_finding_keeps_the_automatic_score(database_url: str) -> None:
    store = CallStore(database_url)
    review_id = _opened(store)
    for finding_id in _finding_ids(store, review_id).values():
        repo.decide(store, review_id, finding_id, "confirmed", None, REVIEWER)
    assert repo.submit(store, review_id, REVIEWER, SCORE) == AUTOMATIC_SCORE


def test_a_call_has_one_review_and_the_history_only_grows(database_url: str) -> None:
    store = CallStore(database_url)
    review_id = _opened(store)
    key = store.find_call("acme", "c1")
    assert key is not None
    again, opened = repo.open_review(store, key, "acme", "a1", 85.0, [], Principal("supervisor", "lead-red", "acme"))
    assert (again, opened) == (review_id, False)
    before = _history_rows(store)
    repo.decide(store, review_id, next(iter(_finding_ids(store, review_id).values())), "confirmed", None, REVIEWER)
    after = _history_rows(store)
    assert after[:len(before)] == before and len(after) == len(before) + 1


def test_a_write_retried_after_its_commit_is_stored_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`attempt` > 0 after a commit whose answer was lost: each write finds its own history row."""
    store = CallStore(database_url)
    key = seed_call(store, "c1", "a1", "acme")
    record = store.get_call(key)
    assert record is not None and record.report is not None

    def commit_then_retry(operation: Any) -> Any:
        operation(0)
        return operation(1)

    monkeypatch.setattr(store.db, "retrying", commit_then_retry)
    review_id, opened = repo.open_review(store, key, "acme", "a1", record.score, record.report["findings"], REVIEWER)
    assert opened
    ids = list(_finding_ids(store, review_id).values())
    for finding_id in ids:
        repo.decide(store, review_id, finding_id, "confirmed", None, REVIEWER)
    added = repo.add_finding(store, review_id, "listen.no_silence", "warn", 60.0, "无回应", REVIEWER)
    assert repo.submit(store, review_id, REVIEWER, SCORE) == AUTOMATIC_SCORE - 3
    assert repo.acknowledge(store, review_id, AGENT)
    dispute_id = repo.raise_dispute(store, review_id, added, "我在查询", AGENT)
    assert repo.rule_dispute(store, dispute_id, "overturned", "可以接受", LEAD, SCORE) == AUTOMATIC_SCORE

    review = repo.get_review(store, review_id)
    assert review is not None and len(review.findings) == len(ids) + 1 and len(review.disputes) == 1
    assert [e.action for e in repo.history(store, review_id)] == [
        "opened", *["confirmed"] * len(ids), "added", "submitted", "acknowledged", "disputed", "overturned"]


def test_lists_are_cut_to_tenant_agents_and_state(database_url: str) -> None:
    store = CallStore(database_url)
    mine = _opened(store, "c1")
    other_key = seed_call(store, "c2", "g1", "globex")
    theirs, _ = repo.open_review(store, other_key, "globex", "g1", 85.0, [], Principal("qa", "qa-g", "globex"))
    assert [o.review_id for o, _ in repo.list_reviews(store, tenant="acme")] == [mine]
    assert {o.review_id for o, _ in repo.list_reviews(store, tenant=None)} == {mine, theirs}
    assert [o.review_id for o, _ in repo.list_reviews(store, tenant=None, agent_ids={"g1"})] == [theirs]
    assert repo.list_reviews(store, tenant=None, state="submitted") == []
    assert repo.list_reviews(store, tenant=None, agent_ids=set()) == []


# ---------------------------------------------------------------- a database restart


@pytest.fixture
def outage_url(postgres_cluster: Any) -> Iterator[str]:
    from support.postgres_plugin import PostgresServer

    server = PostgresServer(postgres_cluster.url(), postgres_cluster)
    url = server.create_database()
    yield url
    server.drop_database(url)
    server.close()


def test_a_review_worked_through_a_database_restart_loses_nothing(postgres_cluster: Any, outage_url: str) -> None:
    store = CallStore(outage_url, retry_s=30)
    review_id = _opened(store)
    ids = list(_finding_ids(store, review_id).values())
    errors: list[BaseException] = []
    done = threading.Event()

    def review_the_call() -> None:
        try:
            for finding_id in ids:
                repo.decide(store, review_id, finding_id, "confirmed", None, REVIEWER)
            repo.add_finding(store, review_id, "listen.no_silence", "warn", 60.0, "无回应", REVIEWER)
            repo.submit(store, review_id, REVIEWER, SCORE)
        except BaseException as err:  # noqa: BLE001 - reported by the test thread
            errors.append(err)
        finally:
            done.set()

    postgres_cluster.stop()
    try:
        worker = threading.Thread(target=review_the_call)
        worker.start()
        time.sleep(2.0)
        assert not done.is_set(), "a write finished (or failed) while the database was down"
    finally:
        postgres_cluster.start()
    assert done.wait(30) and not errors, errors
    worker.join()
    review = repo.get_review(CallStore(outage_url), review_id)
    assert review is not None and review.state == "submitted" and review.reviewed_score == AUTOMATIC_SCORE - 3
    with store.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(repo.qa_history)).scalar() == 1 + len(ids) + 2
