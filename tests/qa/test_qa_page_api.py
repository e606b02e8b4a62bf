"""GET /v1/qa/my-reviews/{review_id}/transcript (service/qa/page_api.py), what the agent's review page reads
beside its review, through the real app on a real SQLite store and keys file: an agent reads the transcript
of its own submitted reviews only, every other key as the agent's review routes answer it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.audited_call import LINES
from support.qa_site import QaSite
from support.stored_reports import PHONE


@pytest.fixture
def site(tmp_path: Path) -> QaSite:
    return QaSite(tmp_path)


def test_an_agent_reads_the_transcript_of_its_own_submitted_review_only(site: QaSite) -> None:
    review_id = site.submitted_review("c-1042")
    other = site.submitted_review("c-1043")
    path = f"/v1/qa/my-reviews/{review_id}/transcript"
    own = site.http.get(path, headers=site.as_("A1042"))
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["review_id"] == review_id and body["duration_s"] == 200.0
    assert [(u["speaker"], u["start"], u["text"]) for u in body["lines"]] == [(s, a, t) for s, a, _, t in LINES]
    assert not any(u["speaker_uncertain"] for u in body["lines"])

    for who in ("A1043", "G1"):  # another agent of the team; another tenant's agent
        refused = site.http.get(path, headers=site.as_(who))
        assert refused.status_code == 404 and LINES[1][3] not in refused.text, who
    assert site.http.get(f"/v1/qa/my-reviews/{other}/transcript", headers=site.as_("A1043")).status_code == 200
    assert site.http.get(path, headers=site.as_("qa.li")).status_code == 403  # reviewers read the QA report
    assert site.http.get(path).status_code == 401
    assert site.http.get("/v1/qa/my-reviews/no-such/transcript", headers=site.as_("A1042")).status_code == 404


def test_a_draft_review_is_not_the_agents_to_read_yet(site: QaSite) -> None:
    opened = site.post("/v1/qa/calls/c-1042/review", "qa.li").json()
    r = site.http.get(f"/v1/qa/my-reviews/{opened['review_id']}/transcript", headers=site.as_("A1042"))
    assert r.status_code == 404


def test_the_agents_transcript_is_masked_where_the_deployment_masks(tmp_path: Path) -> None:
    masked = QaSite(tmp_path, mask_pii=True)
    review_id = masked.submitted_review("c-1042")
    lines = masked.http.get(f"/v1/qa/my-reviews/{review_id}/transcript", headers=masked.as_("A1042")).json()["lines"]
    assert [u["text"] for u in lines if "5678" in u["text"]] == ["尾号是5678。"]  # a card's last four: not personal
    assert all(PHONE not in u["text"] for u in lines)
