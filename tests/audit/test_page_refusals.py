"""The QA tools' pages (/audit, /audit/calls, /audit/calls/{id}) answer a refusal as the REST does (401 without
a key, 403 with one that does not admit its holder, 404 for a call it may not see), but with a page that says
why in words and offers to sign in, instead of a JSON body a person cannot act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.qa_site import QaSite


@pytest.fixture
def site(tmp_path: Path) -> QaSite:
    return QaSite(tmp_path)


def test_the_qa_tools_pages_say_why_they_refuse_with_the_same_status(site: QaSite) -> None:
    none = site.http.get("/audit/calls")
    assert none.status_code == 401 and none.headers["content-type"].startswith("text/html")
    assert "需要登录" in none.text and 'name="token"' in none.text
    assert none.headers["www-authenticate"] == "Bearer"
    agent = site.http.get("/audit/calls", headers=site.as_("A1042"))
    assert agent.status_code == 403 and "无权访问" in agent.text and 'data-status="403"' in agent.text
    unknown = site.http.get("/audit/calls/c-1042", params={"token": "cw_not-a-key"})
    assert unknown.status_code == 403 and "cw_not-a-key" not in unknown.text
    missing = site.http.get("/audit/calls/no-such-call", headers=site.as_("qa.li"))
    assert missing.status_code == 404 and "未找到" in missing.text and 'name="token"' not in missing.text


def test_a_page_still_opens_for_a_key_that_may_see_it(site: QaSite) -> None:
    signed = site.http.get("/audit/calls/c-1042", params={"token": site.keys["qa.li"]})
    assert signed.status_code == 303 and "token" not in signed.headers["location"]
    report = site.http.get("/audit/calls/c-1042", headers=site.as_("qa.li"))
    assert report.status_code == 200 and "通话质检报告" in report.text
