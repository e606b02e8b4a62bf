"""The QA trends page (/qa/trends) in a real headless Chromium, against a real server on loopback with a real
SQLite database of stored calls (tests/support/qa_calls.py, as live calls store them) and a real keys file:

- the charts are drawn by the vendored Chart.js (each canvas holds a chart) and the page marks itself drawn;
- the table's average score for an agent and week is the one /v1/qa/trends answers;
- the agent filter changes the rows, and the CSV link carries the filters (and downloads those rows);
- an agent id with markup in it is shown as text;
- an agent's key sees its own rows only; no key and a key of the wrong role each get a sentence.

Calls (tenant acme): agent a1 (team red) c1 and c2 in the week of 2026-11-23, c3 in the week of 2026-11-30;
agent a2 (team red) d1 and d2, one a week; an agent whose id is markup (team blue) x1.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from support.live_server import LiveServer
from support.page_wait import wait_until
from support.qa_app import RULE_BOOK, Principals, write_keys_file
from support.stand_in_state import install_stand_in
from support.qa_calls import ShownPrompt, finding, mood, store_call

from service.app import create_app
from service.persistence.call_store import CallStore
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "qa"

MARKUP_AGENT = '<img src=x onerror="document.title=\'pwned\'">'
PRINCIPALS: Principals = {
    "qa-acme": ("qa", "acme", None),
    "a1": ("agent", "acme", "red"),
    "a2": ("agent", "acme", "red"),
    MARKUP_AGENT: ("agent", "acme", "blue"),
    "pbx-acme": ("integrator", "acme", None),
}
WEEK1, WEEK2 = "2026-11-23", "2026-11-30"
RANGE = {"date_from": "2026-11-23", "date_to": "2026-12-06"}
CHARTS = ["chart-score", "chart-breaches", "chart-hit-rates", "chart-moods", "chart-prompts"]


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trends-page-seed") / "callwatch.db"
    store = CallStore(f"sqlite:///{path}")
    store_call(store, "c1", "a1", "acme",
               findings=[finding("hold.apology", "warn", 40.0), finding("promise.rash", "breach", 120.0)])
    store_call(store, "c2", "a1", "acme", findings=[finding("hold.apology", "warn", 40.0)],
               moods=[mood("neutral", 0.0), mood("angry", -0.5, "negative"), mood("satisfied", 0.1, "recovered")],
               prompts=[ShownPrompt("listen.dead_air", 12.0, cleared=True), ShownPrompt("hold.apology", 40.0)])
    store_call(store, "c3", "a1", "acme", started_at="2026-12-01T09:00:00+08:00",
               findings=[finding("listen.dead_air", "warn", 50.0)])
    store_call(store, "d1", "a2", "acme", findings=[finding("promise.rash", "breach", 120.0)])
    store_call(store, "d2", "a2", "acme", started_at="2026-12-02T09:00:00+08:00")
    store_call(store, "x1", MARKUP_AGENT, "acme", findings=[finding("hold.apology", "warn", 30.0)])
    store.db.engine.dispose()
    return path


class _Runtime:
    """What the QA routes and pages use of the runtime, without models."""

    def __init__(self, settings: Settings, store: CallStore):
        self.settings = settings
        self.store = store
        self.rule_book = RULE_BOOK


@dataclass
class Site:
    url: str
    keys: dict[str, str]
    http: httpx.Client

    def trends(self, who: str, **params: str) -> Any:
        r = self.http.get("/v1/qa/trends", params={**RANGE, **params},
                          headers={"Authorization": f"Bearer {self.keys[who]}"})
        assert r.status_code == 200, r.text
        return r.json()

    def page(self, who: str | None, **params: str) -> str:
        """/qa/trends with `params` as its filters, signed in as `who` (?token= sets the cookie)."""
        query = {**params, **({"token": self.keys[who]} if who else {})}
        return f"{self.url}/qa/trends" + (f"?{httpx.QueryParams(query)}" if query else "")


@pytest.fixture
def site(tmp_path: Path, seeded_database: Path) -> Iterator[Site]:
    shutil.copy(seeded_database, tmp_path / "callwatch.db")
    settings = Settings(data_dir=tmp_path, keys_file=tmp_path / "keys.yaml")
    keys = write_keys_file(tmp_path / "keys.yaml", PRINCIPALS)
    store = CallStore(f"sqlite:///{tmp_path / 'callwatch.db'}")
    app = install_stand_in(create_app(), _Runtime(settings, store))
    try:
        with LiveServer(app, lifespan="off") as served, httpx.Client(base_url=served.url, timeout=30) as http:
            yield Site(served.url, keys, http)
    finally:
        store.close()


def shot(page: Any, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def drawn(page: Any) -> None:
    page.wait_for_selector('#page[data-drawn="1"]')


def table_rows(page: Any) -> list[tuple[str, str]]:
    """(agent id, week) of each row of the table."""
    return [(r.get_attribute("data-agent-id"), r.get_attribute("data-week"))
            for r in page.locator("#trends-body tr.trend").all()]


def test_the_charts_are_drawn_and_the_table_holds_the_apis_numbers(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page("qa-acme", **RANGE))
    drawn(page)
    assert "token=" not in page.url
    for canvas in CHARTS:  # each canvas holds a chart of the vendored library, not an empty box
        assert page.evaluate(f"!!window.Chart.getChart('{canvas}')"), canvas
    assert page.evaluate("window.Chart.getChart('chart-score').data.datasets.length") == 3  # a1, a2, the markup id
    answer = site.trends("qa-acme")
    a1_week1 = next(r for r in answer["agents"] if (r["agent_id"], r["week"]) == ("a1", WEEK1))
    cell = page.locator(f'#trends-body tr.trend[data-agent-id="a1"][data-week="{WEEK1}"] td.average')
    assert cell.inner_text() == f"{a1_week1['average_score']:.1f}"
    assert set(table_rows(page)) == {(r["agent_id"], r["week"]) for r in answer["agents"]}
    # The breaches chart names rules as the names table does, never by their ids.
    labels = page.evaluate("window.Chart.getChart('chart-breaches').data.labels")
    assert labels and not any("." in label for label in labels)
    shot(page, "trends")
    assert not page.js_errors, page.js_errors


def test_the_agent_filter_changes_the_rows_and_the_csv_link_carries_the_filters(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page("qa-acme", **RANGE))
    drawn(page)
    assert {agent for agent, _ in table_rows(page)} == {"a1", "a2", MARKUP_AGENT}
    page.fill("#agent-filter", "a2")
    page.click("#filters button[type=submit]")
    wait_until(page, "document.querySelectorAll('#trends-body tr.trend').length === 2")
    drawn(page)
    assert sorted(table_rows(page)) == [("a2", WEEK1), ("a2", WEEK2)]
    href = page.locator("#csv-link").get_attribute("href")
    assert href == "/v1/qa/trends.csv?date_from=2026-11-23&date_to=2026-12-06&agent_id=a2"
    csv = page.request.get(f"{site.url}{href}")  # with the page's cookie, as the link downloads it
    assert csv.status == 200
    agents = {line.split(",")[4] for line in csv.text().lstrip("\ufeff").splitlines()[1:] if line.startswith("agent,")}
    assert agents == {"a2"}
    assert "agent_id=a2" in page.url  # the address keeps the filters, to link to or reload
    assert not page.js_errors, page.js_errors


def test_an_agent_id_with_markup_is_shown_as_text(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page("qa-acme", **RANGE))
    drawn(page)
    row = page.locator("#trends-body tr.trend").filter(has_text="onerror")
    assert row.locator("td.agent").inner_text() == MARKUP_AGENT
    assert page.locator("#trends img").count() == 0 and page.title() != "pwned"
    assert not page.js_errors, page.js_errors


def test_an_agent_sees_its_own_rows_only(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page("a1", **RANGE))
    drawn(page)
    assert {agent for agent, _ in table_rows(page)} == {"a1"}
    assert page.locator("#level").is_disabled()  # no team rows for an agent
    assert not page.js_errors, page.js_errors


def test_no_key_asks_for_one_and_the_wrong_role_is_told_so(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.page(None))
    page.wait_for_selector('#notice[data-status="401"]')
    assert "需要登录" in page.locator("#notice").inner_text() and page.locator("#signin").is_visible()
    page.goto(site.page("pbx-acme"))
    page.wait_for_selector('#notice[data-status="403"]')
    assert "无权访问" in page.locator("#notice").inner_text()
    assert page.locator("#content").is_hidden()
    assert not page.js_errors, page.js_errors
