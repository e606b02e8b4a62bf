"""REST on a real server: multipart upload, progress, reports in every format, the call list, path
batches, re-audit."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

CALLS = ("call_01_read_vs_spontaneous", "call_02_podcast_pair_with_backchannel", "call_03_dialogue_and_commands")


def _wait(client: httpx.Client, batch_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    seen_progress = []
    while time.monotonic() < deadline:
        batch = client.get(f"/v1/audit/batches/{batch_id}").json()
        seen_progress.append(batch["progress"])
        if batch["finished"]:
            batch["seen_progress"] = seen_progress
            return batch
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} did not finish")


@pytest.fixture(scope="module")
def client(audit_server):
    with httpx.Client(base_url=audit_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def uploaded(client, shared_audio, tmp_path_factory):
    """call_03 under a new name (so it is new to the store) and a corrupt file, in one upload."""
    folder = tmp_path_factory.mktemp("upload")
    good = folder / "api_call_03.wav"
    shutil.copy(shared_audio / "calls" / f"{CALLS[2]}.wav", good)
    files = [("files", (good.name, good.read_bytes(), "audio/wav")),
             ("files", ("broken.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\x00" * 64, "audio/mpeg"))]
    meta = '{"files": {"api_call_03.wav": {"agent_id": "A7788", "direction": "inbound", "started_at": "2026-11-20T09:15:00+08:00"}}}'
    r = client.post("/v1/audit/batches", files=files, data={"meta": meta, "agent_channel": "0"})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert batch["total"] == 2 and not batch["finished"]
    return _wait(client, batch["batch_id"])


def test_upload_runs_each_file_and_reports_progress(uploaded):
    states = {j["file_name"]: j for j in uploaded["jobs"]}
    assert states["api_call_03.wav"]["state"] == "done"
    assert states["broken.mp3"]["state"] == "failed" and states["broken.mp3"]["error_code"] in ("corrupt", "no_audio")
    assert uploaded["progress"] == 1.0 and uploaded["counts"]["done"] == 1 and uploaded["counts"]["failed"] == 1
    assert any(0 < p < 1 for p in uploaded["seen_progress"]), uploaded["seen_progress"]  # progress moved


def test_batch_and_job_times_carry_their_zone(client, uploaded):
    """SQLite keeps no zone: the times must still come back as RFC 3339 UTC date-times."""
    job = client.get(f"/v1/audit/jobs/{uploaded['jobs'][0]['job_id']}").json()
    for moment in (uploaded["created_at"], *(j[k] for j in uploaded["jobs"] for k in ("started_at", "finished_at")),
                   job["started_at"], job["finished_at"]):
        assert datetime.fromisoformat(moment).utcoffset() == timedelta(0), moment


def test_report_in_every_format(client, uploaded):
    call_id = next(j["call_id"] for j in uploaded["jobs"] if j["state"] == "done")
    report = client.get(f"/v1/audit/calls/{call_id}").json()
    assert report["schema"] == "callwatch.audit-report/1" and report["agent_id"] == "A7788"
    assert report["utterances"] and report["findings"] and report["score"] is not None
    html = client.get(f"/v1/audit/calls/{call_id}/report.html")
    assert html.status_code == 200 and "<svg" in html.text and 'class="finding"' in html.text
    page = client.get(f"/audit/calls/{call_id}")
    assert page.status_code == 200 and "/audit/static/report.js" in page.text
    assert client.get("/audit/static/report.js").status_code == 200
    csv = client.get(f"/v1/audit/calls/{call_id}/report.csv")
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("kind,start")
    audio = client.get(f"/v1/audit/calls/{call_id}/audio", headers={"Range": "bytes=1000-1999"})
    assert audio.status_code == 206 and len(audio.content) == 1000  # the player can jump
    summary = client.get(f"/v1/audit/batches/{uploaded['batch_id']}/summary.csv")
    lines = summary.text.lstrip("\ufeff").splitlines()
    assert len(lines) == 3 and "opening.greeting" in lines[0]
    assert client.get("/v1/audit/calls/nope").status_code == 404


def test_call_list_search_and_filters(client, uploaded):
    call_id = next(j["call_id"] for j in uploaded["jobs"] if j["state"] == "done")
    report = client.get(f"/v1/audit/calls/{call_id}").json()
    words = next(u["text"] for u in report["utterances"] if len(u["text"]) >= 6)[:4]
    page = client.get("/v1/audit/calls", params={"q": words, "agent_id": "A7788"}).json()
    assert [r["call_id"] for r in page["rows"]] == [call_id] and words in page["rows"][0]["snippet"]
    assert client.get("/v1/audit/calls", params={"agent_id": "A7788", "rule": "opening.greeting"}).json()["total"] == 1
    assert client.get("/v1/audit/calls", params={"agent_id": "A7788", "score_min": 100.5}).json()["total"] == 0
    assert client.get("/v1/audit/calls", params={"date_from": "2026-11-20", "date_to": "2026-11-20",
                                                 "agent_id": "A7788"}).json()["total"] == 1
    assert client.get("/v1/audit/calls", params={"date_from": "20261120", "date_to": "2026-11-20T23:59:59+08:00",
                                                 "agent_id": "A7788"}).json()["total"] == 1
    assert client.get("/v1/audit/calls", params={"date_to": "9999-12-31", "agent_id": "A7788"}).json()["total"] == 1
    bad = client.get("/v1/audit/calls", params={"sort": "nonsense"})
    assert bad.status_code == 422
    export = client.get("/v1/audit/calls.csv", params={"agent_id": "A7788"})
    assert export.status_code == 200 and len(export.text.strip().splitlines()) == 2
    assert export.headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("path", ["/v1/audit/calls", "/v1/audit/calls.csv"])
@pytest.mark.parametrize("param, value", [("date_to", "null"), ("date_from", "2026-13-01"), ("date_to", "2026-11-20T25:00"),
                                          ("q", "投\x00诉")])
def test_odd_query_values_are_a_422_naming_the_parameter(client, path, param, value):
    r = client.get(path, params={param: value})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["query", param] and detail[0]["msg"], detail


def test_openapi_declares_what_each_download_really_is(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/audit/calls.csv", "/v1/audit/batches/{batch_id}/summary.csv", "/v1/audit/calls/{call_id}/report.csv"):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["text/csv"], path
    assert list(paths["/v1/audit/calls/{call_id}/report.html"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    audio = paths["/v1/audit/calls/{call_id}/audio"]["get"]["responses"]
    assert {"audio/wav", "audio/mpeg"} <= set(audio["200"]["content"]) and "application/json" not in audio["200"]["content"]
    assert set(audio["206"]["content"]) == set(audio["200"]["content"])  # range requests, for the player
    assert client.get("/audit/calls").status_code == 200 and client.get("/audit").status_code == 200


def test_path_batches_only_from_the_import_folders(client, runtime, shared_audio):
    outside = client.post("/v1/audit/batches/paths", json={"paths": [str(shared_audio / "calls")]})
    assert outside.status_code == 403
    imports = Path(runtime.settings.data_dir) / "import" / "week47"
    imports.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_audio / "calls" / f"{CALLS[0]}.wav", imports / "path_call_01.wav")
    (imports / "readme.txt").write_text("not a recording")
    r = client.post("/v1/audit/batches/paths", json={"paths": [str(imports)], "meta": {"agent_id": "A5555"}})
    assert r.status_code == 202, r.text
    batch = _wait(client, r.json()["batch_id"])
    assert [j["file_name"] for j in batch["jobs"]] == ["path_call_01.wav"]  # folders are searched for audio only
    assert batch["jobs"][0]["state"] == "done"
    again = client.post("/v1/audit/batches/paths", json={"paths": [str(imports)], "meta": {"agent_id": "A5555"}})
    assert _wait(client, again.json()["batch_id"])["jobs"][0]["state"] == "skipped"


def test_reaudit_endpoint(client, uploaded):
    call_id = next(j["call_id"] for j in uploaded["jobs"] if j["state"] == "done")
    r = client.post("/v1/audit/reaudit", json={"rules": "rules:\n  opening.greeting:\n    weight: 10\n    cap: 10\n",
                                               "call_ids": [call_id]})
    assert r.status_code == 200, r.text
    row = r.json()["rows"][0]
    assert row["delta"] == pytest.approx(-5.0) and not r.json()["applied"]
    bad = client.post("/v1/audit/reaudit", json={"rules": "rules: [", "call_ids": [call_id]})
    assert bad.status_code == 422
    detail = bad.json()["detail"]  # the shape the OpenAPI description gives (HTTPValidationError)
    assert isinstance(detail, list) and detail[0]["loc"] == ["body", "rules"] and "line" in detail[0]["msg"], detail
    unknown = client.post("/v1/audit/reaudit", json={"rules": "", "call_ids": ["no-such-call"]})
    assert unknown.status_code == 404
