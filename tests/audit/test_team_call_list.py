"""The call list cut to a team supervisor's teams in the database, on SQLite and PostgreSQL: the page, its
total, the search and the re-audit's selection hold exactly the calls of the teams' agents, tenant by tenant
as the keys file places them (docs/security.md, Teams), and agree with the rule every other surface applies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.access.keys import Principal
from service.access.teams import TeamBook, sees_agent
from service.audit.web.models import CallQuery
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

# (tenant, agent id) → team, as the keys file would list them.
BOOK = TeamBook({
    ("acme", "a1"): "red", ("acme", "a2"): "blue", ("acme", "a3"): None,  # a3: listed, in no team
    (None, "x1"): "red",  # x1 is red in every tenant that does not list it itself ...
    ("globex", "x1"): "blue",  # ... and globex does: there x1 is blue
    ("globex", "g1"): "red",
})
# call id → (tenant, agent id, what the customer said)
CALLS = {
    "c-acme-a1": ("acme", "a1", "我要投诉，麻烦回电"),
    "c-acme-a2": ("acme", "a2", "麻烦回电"),
    "c-acme-a3": ("acme", "a3", "我要投诉"),
    "c-acme-x1": ("acme", "x1", "麻烦回电"),
    "c-acme-unknown": ("acme", "unknown", "我要投诉"),  # an audited recording whose agent nobody named
    "c-globex-x1": ("globex", "x1", "我要投诉"),
    "c-globex-g1": ("globex", "g1", "麻烦回电"),
    "c-initech-x1": ("initech", "x1", "我要投诉"),  # a tenant the keys file does not name
    "c-none-x1": (None, "x1", "麻烦回电"),  # a call of no tenant
    "c-none-a1": (None, "a1", "我要投诉"),  # a1 is only acme's: in no team here
}
RED_EVERYWHERE = {"c-acme-a1", "c-acme-x1", "c-globex-g1", "c-initech-x1", "c-none-x1"}
BLUE_EVERYWHERE = {"c-acme-a2", "c-globex-x1"}
# (tenant of the supervisor, its teams) → the calls it sees, worked out by hand from BOOK and CALLS.
EXPECTED = {
    ("acme", ("red",)): {"c-acme-a1", "c-acme-x1"},
    ("acme", ("blue",)): {"c-acme-a2"},
    ("acme", ("red", "blue")): {"c-acme-a1", "c-acme-x1", "c-acme-a2"},
    ("globex", ("red",)): {"c-globex-g1"},
    ("globex", ("blue",)): {"c-globex-x1"},
    ("initech", ("red",)): {"c-initech-x1"},
    (None, ("red",)): RED_EVERYWHERE,
    (None, ("blue",)): BLUE_EVERYWHERE,
    (None, ("red", "blue")): RED_EVERYWHERE | BLUE_EVERYWHERE,
    ("acme", ("green",)): set(),
    (None, ("green",)): set(),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CallStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('teams') / 'calls.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    store = CallStore(url)
    for n, (call_id, (tenant, agent, said)) in enumerate(CALLS.items()):
        CallList(store.db).index(call_id=call_id, agent_id=agent, direction="inbound",
                                 started_at=f"2026-11-23T09:{n:02d}:00+08:00", duration=60.0,
                                 report={"score": 90.0, "findings": []},
                                 utts=[{"speaker": "customer", "start": 1.0, "text": said}], tenant=tenant)
    yield store
    store.close()
    if request.param == "postgresql":
        server.drop_database(url)


def _listed(store: CallStore, tenant: str | None, teams: tuple[str, ...], **query: object) -> tuple[set[str], int]:
    page = CallList(store.db).page(CallQuery(limit=500, **query), tenant, BOOK.members(teams))
    return {r.call_id for r in page.rows}, page.total


@pytest.mark.parametrize("tenant, teams", list(EXPECTED), ids=[f"{t}-{'+'.join(ts)}" for t, ts in EXPECTED])
def test_a_team_supervisors_list_holds_exactly_its_teams_agents_calls(store: CallStore, tenant: str | None,
                                                                      teams: tuple[str, ...]) -> None:
    seen, total = _listed(store, tenant, teams)
    assert seen == EXPECTED[(tenant, teams)] and total == len(seen)
    # The same rule as the per-call checks, the live board and the QA review workflow apply.
    lead = Principal("supervisor", "lead", tenant, teams=teams)
    assert seen == {c for c, (t, agent, _) in CALLS.items() if sees_agent(lead, t, agent, BOOK)}
    assert CallList(store.db).calls_within(CALLS, tenant, BOOK.members(teams)) == seen
    assert set(CallList(store.db).call_ids(CallQuery(), tenant, BOOK.members(teams))) == seen


def test_the_search_and_filters_apply_within_the_teams(store: CallStore) -> None:
    assert _listed(store, None, ("red",), q="投诉") == ({"c-acme-a1", "c-initech-x1"}, 2)
    assert _listed(store, "acme", ("red",), q="回电") == ({"c-acme-a1", "c-acme-x1"}, 2)
    assert _listed(store, "acme", ("red",), agent_id="a2") == (set(), 0)  # another team's agent, named
    assert _listed(store, None, ("blue",), agent_id="x1") == ({"c-globex-x1"}, 1)


def test_pages_of_a_team_supervisors_list_add_up_to_its_total(store: CallStore) -> None:
    pages = [CallList(store.db).page(CallQuery(limit=2, offset=offset),
                                     None, BOOK.members(("red",)))
             for offset in (0, 2, 4)]
    assert [p.total for p in pages] == [5, 5, 5] and [len(p.rows) for p in pages] == [2, 2, 1]
    ids = [r.call_id for p in pages for r in p.rows]
    assert len(ids) == len(set(ids)) and set(ids) == RED_EVERYWHERE


def test_without_teams_the_list_is_cut_by_tenant_alone(store: CallStore) -> None:
    acme = {c for c, (t, _, _) in CALLS.items() if t == "acme"}
    assert {r.call_id for r in CallList(store.db).page(CallQuery(limit=500), "acme").rows} == acme
    assert CallList(store.db).page(CallQuery(limit=500)).total == len(CALLS)
