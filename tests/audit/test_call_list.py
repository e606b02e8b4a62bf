"""The call list query on generated calls: Chinese full text, filters, sorting, pagination, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.audit.synthetic import generate_calls
from service.audit.web.models import CallQuery
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore
from service.persistence.search import index_tokens, query_terms

N = 3000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory) -> Iterator[CallStore]:
    """The same generated calls on each database: every test below runs on SQLite (FTS5) and on
    PostgreSQL (tsvector + GIN)."""
    if request.param == "sqlite":
        store = CallStore(f"sqlite:///{tmp_path_factory.mktemp('list') / 'calls.db'}")
        generate_calls(store, N, seed=3)
        yield store
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    store = CallStore(url)
    generate_calls(store, N, seed=3)
    yield store
    store.close()
    server.drop_database(url)


def _texts(store: CallStore, call_id: str, speaker: str | None = None) -> str:
    return "".join(u["text"] for u in store.list_utterances(call_id) if speaker is None or u["speaker"] == speaker)


def test_tokens_are_character_bigrams():
    assert index_tokens("我要投诉，ABC 123") == "我要 要投 投诉 诉 abc 123"
    assert query_terms("投诉 退款") == [["投诉"], ["退款"]]
    assert query_terms("我要投诉") == [["我要", "要投", "投诉"]]
    assert query_terms("诉") == [["诉*"]]
    assert query_terms("投訴") == [["投诉"]]  # traditional characters find simplified transcripts


def test_search_finds_exactly_the_calls_that_say_it(store):
    page = CallList(store.db).page(CallQuery(q="投诉", limit=500))
    assert 0 < page.total < N
    for row in page.rows:
        assert "投诉" in _texts(store, row.call_id) and "投诉" in (row.snippet or "")
    # Cross-check the count against a plain scan.
    with store.db.engine.connect() as conn:
        from sqlalchemy import text
        truth = conn.execute(text("SELECT count(DISTINCT call_id) FROM utterances WHERE text LIKE '%投诉%'")).scalar()
    assert page.total == truth


def test_phrase_not_scattered_characters(store):
    # 快递 appears; 递快 never does in the generated sentences: a phrase, not a bag of characters.
    assert CallList(store.db).page(CallQuery(q="快递")).total > 0
    assert CallList(store.db).page(CallQuery(q="递快")).total == 0


def test_single_character_and_several_terms(store):
    one = CallList(store.db).page(CallQuery(q="贵", limit=100))
    assert one.total > 0 and all("贵" in _texts(store, r.call_id) for r in one.rows)
    both = CallList(store.db).page(CallQuery(q="投诉 退款", limit=100))
    for r in both.rows:
        t = _texts(store, r.call_id)
        assert "投诉" in t and "退款" in t


def test_speaker_restricted_search(store):
    page = CallList(store.db).page(CallQuery(q="退款", speaker="customer", limit=100))
    assert page.total > 0
    for r in page.rows:
        assert "退款" in _texts(store, r.call_id, "customer")
    assert page.total < CallList(store.db).page(CallQuery(q="退款")).total


def test_filters_compose(store):
    q = CallQuery(agent_id="A1007", date_from="2026-09-10", date_to="2026-10-20", score_min=80, rule="listen.dead_air",
                  limit=500)
    page = CallList(store.db).page(q)
    for r in page.rows:
        assert r.agent_id == "A1007" and "2026-09-10" <= r.started_at < "2026-10-21" and r.score >= 80
        assert "listen.dead_air" in r.rules
    angry = CallList(store.db).page(CallQuery(mood="angry", duration_min=20, duration_max=60, limit=500))
    assert angry.total > 0 and all(r.worst_label == "angry" and 20 <= r.duration <= 60 for r in angry.rows)
    low = CallList(store.db).page(CallQuery(valence_max=-0.6, limit=500))
    assert all(r.worst_valence <= -0.6 for r in low.rows)


def test_sorting_and_pages_do_not_overlap(store):
    seen: list[str] = []
    scores: list[float] = []
    for offset in range(0, 300, 100):
        page = CallList(store.db).page(CallQuery(sort="score", order="asc", offset=offset, limit=100))
        seen += [r.call_id for r in page.rows]
        scores += [r.score for r in page.rows]
    assert len(seen) == len(set(seen)) == 300
    assert scores == sorted(scores)
    newest = CallList(store.db).page(CallQuery(limit=5)).rows
    assert [r.started_at for r in newest] == sorted([r.started_at for r in newest], reverse=True)


# --- the same phrase semantics on both databases, where PostgreSQL's tsvector has limits FTS5 has not ---

def _index(store: CallStore, call_id: str, agent: list[str], customer: list[str]) -> None:
    utts = [{"speaker": side, "start": float(i), "text": line}
            for side, lines in (("agent", agent), ("customer", customer)) for i, line in enumerate(lines)]
    CallList(store.db).index(call_id=call_id, agent_id="A1", direction="inbound", started_at="2026-10-01T10:00:00",
                             duration=60.0, report={"score": 90.0, "findings": []}, utts=utts)


def _found(store: CallStore, q: str, speaker: str | None = None) -> list[str]:
    return sorted(r.call_id for r in CallList(store.db).page(CallQuery(q=q, speaker=speaker, limit=500)).rows)


def test_a_phrase_never_runs_from_one_side_into_the_other(database_url):
    store = CallStore(database_url)
    _index(store, "split", agent=["请您稍等我帮您查询投"], customer=["诉讼的事情以后再说"])
    _index(store, "whole", agent=["请您稍等"], customer=["我要投诉"])
    assert _found(store, "投诉") == ["whole"]
    assert _found(store, "查询投") == ["split"] and _found(store, "诉讼") == ["split"]
    assert _found(store, "VIP") == [] and _found(store, "投诉", speaker="agent") == []


def test_a_long_call_is_searched_to_its_end(database_url):
    # Each side far past what one PostgreSQL tsvector can place (16383 positions, 256 per word): the
    # words at the start, across a part boundary and at the very end are all found, together too.
    filler = "您好请稍等我帮您查询一下" * 80  # 960 characters a line, no 投诉 / 退款 / 会员 in it
    agent = ["开头先说会员积分的事", *([filler] * 20), "最后提到退款到账"]
    store = CallStore(database_url)
    _index(store, "long", agent=agent, customer=["好的"])
    _index(store, "short", agent=["会员积分"], customer=["好的"])
    assert _found(store, "退款到账") == ["long"]
    assert _found(store, "会员积分 退款") == ["long"]
    assert _found(store, "会员积分") == ["long", "short"]
    assert _found(store, "查询一下您好请稍等") == ["long"]  # a phrase that spans the filler lines
    assert _found(store, "退款", speaker="customer") == []


def test_latin_words_are_case_blind_and_prefixes(database_url):
    store = CallStore(database_url)
    _index(store, "vip", agent=["您是我们的VIP会员"], customer=["我的订单号是AB123"])
    assert _found(store, "vip") == ["vip"] and _found(store, "Vi") == ["vip"]
    assert _found(store, "ab123") == ["vip"] and _found(store, "AB12") == ["vip"]
    assert _found(store, "vip会员") == ["vip"]


def test_a_row_added_after_generated_calls_gets_a_fresh_id(store):
    # Generated rows carry their own ids; the database must still number the next real audit past them.
    from datetime import datetime, timezone

    from sqlalchemy import func, insert, select

    from service.persistence.tables import audit_calls

    with store.db.engine.begin() as conn:
        before = conn.execute(select(func.max(audit_calls.c.rowid_))).scalar()
        conn.execute(insert(audit_calls), {"call_id": "real-after-generated", "agent_id": "A1", "direction": "inbound",
                                           "file_name": "x.wav", "speaker_attribution": "channels",
                                           "audited_at": datetime.now(timezone.utc)})
        added = conn.execute(select(audit_calls.c.rowid_).where(audit_calls.c.call_id == "real-after-generated")).scalar()
        conn.execute(audit_calls.delete().where(audit_calls.c.call_id == "real-after-generated"))
    assert added > before
