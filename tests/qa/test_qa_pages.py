"""The QA review pages' server side, through the real app on a real SQLite store and keys file (no browser:
tests/qa/test_review_pages.py drives the pages in Chromium): the pages are served to anyone, hold no call
data, carry the one names table, sign a browser in with ?token=, and are linked from the QA report."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.audited_call import LINES
from support.qa_site import QaSite
from support.stored_reports import PHONE

PAGES = ["/qa/reviews", "/qa/calls/c-1042/review", "/qa/my-reviews", "/qa/my-reviews/r1", "/qa/disputes",
         "/qa/disputes/d1", "/qa/trends", "/qa/queue", "/qa/plans", "/qa/plans/p1", "/qa/calibrations",
         "/qa/calibrations/k1", "/qa/calibrations/k1/result"]


@pytest.fixture
def site(tmp_path: Path) -> QaSite:
    return QaSite(tmp_path)


@pytest.mark.parametrize("path", PAGES)
def test_each_page_is_served_without_a_key_and_holds_no_call_data(site: QaSite, path: str) -> None:
    page = site.http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert 'id="callwatch-names"' in page.text and "complaint.empathy_first" in page.text  # the one names table
    assert LINES[1][3] not in page.text and PHONE not in page.text


def test_ids_from_the_address_reach_the_page_escaped(site: QaSite) -> None:
    page = site.http.get('/qa/calls/"><img src=x onerror=alert(1)>/review')
    assert page.status_code == 200
    assert "<img src=x" not in page.text and 'data-call-id="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page.text


def test_a_link_with_a_token_signs_the_browser_in_and_drops_the_key_from_the_address(site: QaSite) -> None:
    signed = site.http.get("/qa/my-reviews", params={"token": site.keys["A1042"]})
    assert signed.status_code == 303 and signed.headers["location"].endswith("/qa/my-reviews")
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"callwatch_qa={site.keys['A1042']}") and "HttpOnly" in cookie
    # The cookie is what the page's script then reads the agent's reviews with.
    mine = site.http.get("/v1/qa/my-reviews", headers={"Cookie": f"callwatch_qa={site.keys['A1042']}"})
    assert mine.status_code == 200 and mine.json() == {"reviews": []}


def test_the_static_files_are_served_and_nothing_else(site: QaSite) -> None:
    for name in ("review.js", "my_reviews.js", "disputes.js", "reviews.js", "qa_common.js", "player.js",
                 "transcript.js", "findings.js", "qa.css", "queue.js", "plans.js", "reasons.js", "decide.js",
                 "calibrations.js", "calibration.js", "calibration_result.js", "calibration_figures.js"):
        assert site.http.get(f"/qa/static/{name}").status_code == 200, name
    for name in ("..%2Fpages.py", "pages.py", ".hidden.js", "nothing.js"):
        assert site.http.get(f"/qa/static/{name}").status_code == 404, name


def test_the_trends_page_loads_the_vendored_chart_library_whose_licence_is_committed(site: QaSite) -> None:
    page = site.http.get("/qa/trends")
    assert '<script src="/qa/static/vendor/chart.umd.min.js"></script>' in page.text
    assert '<a href="/qa/trends">' in page.text  # in the QA top bar, as on every QA page
    for name in ("trends.js", "trend_charts.js", "trend_figures.js"):
        assert site.http.get(f"/qa/static/{name}").status_code == 200, name
    library = site.http.get("/qa/static/vendor/chart.umd.min.js")
    assert library.status_code == 200 and library.headers["content-type"].startswith("text/javascript")
    assert "Chart.js v4" in library.text[:200] and "MIT" in library.text[:300]
    vendor = Path(__file__).resolve().parents[2] / "service" / "qa" / "static" / "vendor"
    assert "MIT License" in (vendor / "chart.js-LICENSE.md").read_text()
    for name in ("chart.js-LICENSE.md", "README.md", "..%2F..%2Fpages.py", ".x.js"):
        assert site.http.get(f"/qa/static/vendor/{name}").status_code == 404, name  # only scripts and styles


def test_the_report_page_links_to_the_calls_review(site: QaSite) -> None:
    report = site.http.get("/audit/calls/c-1042", headers=site.as_("qa.li"))
    assert report.status_code == 200
    assert 'href="/qa/calls/c-1042/review"' in report.text
