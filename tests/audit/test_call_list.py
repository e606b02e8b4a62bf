"""The call list query on generated calls: Chinese full text, filters, sorting, pagination."""

from __future__ import annotations

import pytest

from service.audit.models import CallQuery
from service.audit.query import list_calls
from service.audit.search import index_tokens, query_terms
from service.audit.synthetic import generate_calls
from service.store import CallStore

N = 3000


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> CallStore:
    store = CallStore(f"sqlite:///{tmp_path_factory.mktemp('list') / 'calls.db'}")
    generate_calls(store.engine, N, seed=3)
    return store


def _texts(store: CallStore, call_id: str, speaker: str | None = None) -> str:
    return "".join(u["text"] for u in store.list_utterances(call_id) if speaker is None or u["speaker"] == speaker)


def test_tokens_are_character_bigrams():
    assert index_tokens("我要投诉，ABC 123") == "我要 要投 投诉 诉 abc 123"
    assert query_terms("投诉 退款") == [["投诉"], ["退款"]]
    assert query_terms("我要投诉") == [["我要", "要投", "投诉"]]
    assert query_terms("诉") == [["诉*"]]
    assert query_terms("投訴") == [["投诉"]]  # traditional characters find simplified transcripts


def test_search_finds_exactly_the_calls_that_say_it(store):
    page = list_calls(store.engine, CallQuery(q="投诉", limit=500))
    assert 0 < page.total < N
    for row in page.rows:
        assert "投诉" in _texts(store, row.call_id) and "投诉" in (row.snippet or "")
    # Cross-check the count against a plain scan.
    with store.engine.connect() as conn:
        from sqlalchemy import text
        truth = conn.execute(text("SELECT count(DISTINCT call_id) FROM utterances WHERE text LIKE '%投诉%'")).scalar()
    assert page.total == truth


def test_phrase_not_scattered_characters(store):
    # 快递 appears; 递快 never does in the generated sentences: a phrase, not a bag of characters.
    assert list_calls(store.engine, CallQuery(q="快递")).total > 0
    assert list_calls(store.engine, CallQuery(q="递快")).total == 0


def test_single_character_and_several_terms(store):
    one = list_calls(store.engine, CallQuery(q="贵", limit=100))
    assert one.total > 0 and all("贵" in _texts(store, r.call_id) for r in one.rows)
    both = list_calls(store.engine, CallQuery(q="投诉 退款", limit=100))
    for r in both.rows:
        t = _texts(store, r.call_id)
        assert "投诉" in t and "退款" in t


def test_speaker_restricted_search(store):
    page = list_calls(store.engine, CallQuery(q="退款", speaker="customer", limit=100))
    assert page.total > 0
    for r in page.rows:
        assert "退款" in _texts(store, r.call_id, "customer")
    assert page.total < list_calls(store.engine, CallQuery(q="退款")).total


def test_filters_compose(store):
    q = CallQuery(agent_id="A1007", date_from="2026-09-10", date_to="2026-10-20", score_min=80, rule="listen.dead_air",
                  limit=500)
    page = list_calls(store.engine, q)
    for r in page.rows:
        assert r.agent_id == "A1007" and "2026-09-10" <= r.started_at < "2026-10-21" and r.score >= 80
        assert "listen.dead_air" in r.rules
    angry = list_calls(store.engine, CallQuery(mood="angry", duration_min=20, duration_max=60, limit=500))
    assert angry.total > 0 and all(r.worst_label == "angry" and 20 <= r.duration <= 60 for r in angry.rows)
    low = list_calls(store.engine, CallQuery(valence_max=-0.6, limit=500))
    assert all(r.worst_valence <= -0.6 for r in low.rows)


def test_sorting_and_pages_do_not_overlap(store):
    seen: list[str] = []
    scores: list[float] = []
    for offset in range(0, 300, 100):
        page = list_calls(store.engine, CallQuery(sort="score", order="asc", offset=offset, limit=100))
        seen += [r.call_id for r in page.rows]
        scores += [r.score for r in page.rows]
    assert len(seen) == len(set(seen)) == 300
    assert scores == sorted(scores)
    newest = list_calls(store.engine, CallQuery(limit=5)).rows
    assert [r.started_at for r in newest] == sorted([r.started_at for r in newest], reverse=True)
