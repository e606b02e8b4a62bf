"""Teams beyond the QA review workflow, on a real server (uvicorn on loopback, a real keys file, a real SQLite
store): a supervisor that leads teams sees its teams' agents' calls only, on the live board and its feed,
`GET /v1/live-calls`, `GET /v1/calls/{id}` and every QA tool under /v1/audit and /audit; another team's call is
a 404 exactly as a call that does not exist, is left out of lists and their totals, is not on the board and
cannot be followed. A supervisor of the tenant without teams, and a QA user, still see every team's calls.
docs/security.md, "Teams", is what these tests hold.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from websockets.sync.client import ClientConnection, connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from wire.agent_feed import CallInfo

# role, name, tenant, team (an agent's) or teams (a supervisor's)
PRINCIPALS: list[tuple[str, str, str | None, Any]] = [
    ("agent", "r1", "acme", "red"), ("agent", "r2", "acme", "red"), ("agent", "b1", "acme", "blue"),
    ("agent", "n1", "acme", None),  # in no team
    ("agent", "g1", "globex", "red"),
    ("supervisor", "lead-red", "acme", ["red"]), ("supervisor", "lead-blue", "acme", ["blue"]),
    ("supervisor", "lead-acme", "acme", None),  # the tenant's supervisor without teams: every acme agent
    ("supervisor", "chief-red", None, ["red"]),  # deployment-wide, leading red: red in every tenant
    ("qa", "qa-acme", "acme", None),
]
PHONE = "13812345678"
# call id → (tenant, agent); every call's customer says the same, so a search finds them all.
CALLS = {
    "team-red-1": ("acme", "r1"), "team-red-2": ("acme", "r1"), "team-red-3": ("acme", "r2"),
    "team-blue-1": ("acme", "b1"), "team-blue-2": ("acme", "b1"),
    "team-none": ("acme", "n1"), "team-unknown": ("acme", "unknown"),
    "team-globex-red": ("globex", "g1"),
}
RED = {"team-red-1", "team-red-2", "team-red-3"}
BLUE = {"team-blue-1", "team-blue-2"}
ACME = {c for c, (tenant, _) in CALLS.items() if tenant == "acme"}
SEES = {"lead-red": RED, "lead-blue": BLUE, "lead-acme": ACME, "qa-acme": ACME,
        "chief-red": RED | {"team-globex-red"}}
SAID = f"您好，我的手机号是{PHONE}，麻烦回电。"


def _seed(rt: Any, tmp: Path) -> None:
    from service.persistence.call_list import CallList

    audio = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
    for n, (call_id, (tenant, agent)) in enumerate(CALLS.items()):
        started = f"2026-11-23T09:{n:02d}:00+08:00"
        assert rt.store.create_call(call_id, agent, "inbound", PHONE, started, audio, tenant)
        rt.store.add_utterance(call_id, "customer-0", "customer", 1.0, 4.0, SAID)
        report = {"score": 96.0, "findings": [], "deductions": [], "figures": None, "prompts": []}
        rt.store.save_report(call_id, 96.0, report)
        rt.store.end_call(call_id, "completed", 9.5)
        recording = tmp / f"{call_id}.wav"
        sf.write(recording, np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
        CallList(rt.store.db).index(call_id=call_id, agent_id=agent, direction="inbound", started_at=started,
                                    duration=9.5, report=report, utts=[{"speaker": "customer", "start": 1.0, "text": SAID}],
                                    file_name=f"{call_id}.wav", source_path=str(recording), audit={}, tenant=tenant)


@pytest.fixture(scope="module")
def teams(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("teams")
    keys: dict[str, str] = {}
    spec = KeysFile()
    for role, name, tenant, team in PRINCIPALS:
        keys[name] = f"cw_{secrets.token_urlsafe(16)}"
        placed = {"team": team} if role == "agent" else {"teams": team}
        spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant, **placed,
                                             keys=[KeySpec(sha256=digest_of(keys[name]), created=datetime.now(timezone.utc))]))
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml")
    _seed(rt, tmp)
    try:
        with LiveServer(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=30) as http:
            yield {"keys": keys, "runtime": rt, "served": served, "http": http}
    finally:
        close_private(rt)


def auth(env: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['keys'][name]}"}


def get(env: dict[str, Any], path: str, name: str, **params: Any) -> httpx.Response:
    return env["http"].get(path, params=params, headers=auth(env, name))


# ---------------------------------------------------------------- one call


PER_CALL = ["/v1/calls/{id}", "/v1/audit/calls/{id}", "/v1/audit/calls/{id}/report.html",
            "/v1/audit/calls/{id}/report.csv", "/v1/audit/calls/{id}/audio", "/audit/calls/{id}"]


@pytest.mark.parametrize("path", PER_CALL)
def test_another_teams_call_is_not_found_exactly_as_a_call_that_does_not_exist(teams: dict[str, Any], path: str) -> None:
    for name, seen in SEES.items():
        if name == "chief-red":  # deployment-wide: it names calls of every tenant; below
            continue
        missing = get(teams, path.format(id="team-no-such-call"), name)
        assert missing.status_code == 404
        for call_id in ACME:
            r = get(teams, path.format(id=call_id), name)
            if call_id in seen:
                assert r.status_code == 200, (name, call_id, r.text[:200])
                continue
            assert r.status_code == 404, (name, call_id)
            assert PHONE not in r.text and "麻烦回电" not in r.text
            if path.startswith("/v1/"):  # the same answer, word for word: no oracle of which ids exist
                assert r.json() == missing.json(), (name, call_id)


def test_a_deployment_wide_team_supervisor_sees_its_teams_calls_in_every_tenant(teams: dict[str, Any]) -> None:
    for call_id in CALLS:
        expected = 200 if call_id in SEES["chief-red"] else 404
        assert get(teams, f"/v1/calls/{call_id}", "chief-red").status_code == expected, call_id
        assert get(teams, f"/v1/audit/calls/{call_id}", "chief-red").status_code == expected, call_id


def test_agents_still_read_their_own_calls(teams: dict[str, Any]) -> None:
    assert get(teams, "/v1/calls/team-blue-1", "b1").status_code == 200
    assert get(teams, "/v1/calls/team-red-1", "b1").status_code == 404
    assert get(teams, "/v1/calls/team-none", "n1").status_code == 200  # in no team, still its own call


# ---------------------------------------------------------------- lists, exports, re-audits


def listed(env: dict[str, Any], name: str, **params: Any) -> tuple[set[str], int]:
    r = get(env, "/v1/audit/calls", name, **{"limit": 500, **params})
    assert r.status_code == 200, (name, r.text)
    return {row["call_id"] for row in r.json()["rows"]}, r.json()["total"]


def test_the_call_list_and_search_hold_only_the_teams_calls_with_totals_to_match(teams: dict[str, Any]) -> None:
    for name, seen in SEES.items():
        assert listed(teams, name) == (seen, len(seen)), name
        assert listed(teams, name, q="麻烦回电") == (seen, len(seen)), name
    assert listed(teams, "lead-red", agent_id="b1") == (set(), 0)  # another team's agent, named
    assert listed(teams, "lead-red", agent_id="n1") == (set(), 0)  # an agent in no team is no team's


def test_pages_of_a_team_supervisors_list_are_pages_of_its_teams_calls(teams: dict[str, Any]) -> None:
    first = get(teams, "/v1/audit/calls", "lead-red", limit=2, offset=0).json()
    second = get(teams, "/v1/audit/calls", "lead-red", limit=2, offset=2).json()
    assert first["total"] == second["total"] == 3
    assert len(first["rows"]) == 2 and len(second["rows"]) == 1
    assert {r["call_id"] for r in first["rows"] + second["rows"]} == RED


def test_the_csv_export_holds_only_the_teams_calls(teams: dict[str, Any]) -> None:
    for name in ("lead-red", "lead-blue", "lead-acme"):
        r = get(teams, "/v1/audit/calls.csv", name)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        files = {row["file_name"] for row in csv.DictReader(io.StringIO(r.text.lstrip("\ufeff")))}
        assert files == {f"{c}.wav" for c in SEES[name]}, name


def test_a_reaudit_by_query_or_ids_reaches_only_the_teams_calls(teams: dict[str, Any]) -> None:
    http: httpx.Client = teams["http"]

    def reaudit(name: str, body: dict[str, Any]) -> httpx.Response:
        return http.post("/v1/audit/reaudit", json={"rules": "", **body}, headers=auth(teams, name))

    for name in ("lead-red", "lead-blue", "chief-red", "lead-acme"):
        r = reaudit(name, {"query": {"q": "麻烦回电"}})
        assert r.status_code == 200 and {row["call_id"] for row in r.json()["rows"]} == SEES[name], name
    r = reaudit("lead-red", {"call_ids": ["team-red-1", "team-blue-1"]})
    assert r.status_code == 404 and r.json() == {"detail": "no such call: 'team-blue-1'"}
    assert reaudit("lead-red", {"call_ids": ["team-unknown"]}).status_code == 404
    assert reaudit("chief-red", {"call_ids": ["team-blue-1"]}).status_code == 404
    r = reaudit("chief-red", {"call_ids": ["team-globex-red", "team-red-3"]})
    assert r.status_code == 200 and [row["call_id"] for row in r.json()["rows"]] == ["team-globex-red", "team-red-3"]


def test_a_batchs_jobs_name_only_the_teams_calls(teams: dict[str, Any]) -> None:
    """A batch of the tenant, audited: one job stored a red call, one a blue call. Each team supervisor opens
    the batch (it is its tenant's) but its jobs name only its own team's call; the other job is there,
    naming none, as a job whose call is another tenant's."""
    from service.persistence.audit_jobs import AuditJobs

    now = datetime.now(timezone.utc)
    jobs = {"team-job-red": "team-red-1", "team-job-blue": "team-blue-1"}
    AuditJobs(teams["runtime"].store.db).add_batch(
        dict(batch_id="team-batch", created_at=now, source="upload", rules_name="default",
             options=json.dumps({"tenant": "acme"})),
        [dict(job_id=job_id, batch_id="team-batch", file_name=f"{call_id}.wav", source_path=f"/x/{call_id}.wav",
              call_id=call_id, state="done", progress=1.0, created_at=now, finished_at=now)
         for job_id, call_id in jobs.items()])
    for name in ("lead-red", "lead-blue", "lead-acme"):
        batch = get(teams, "/v1/audit/batches/team-batch", name)
        assert batch.status_code == 200, name
        named = {j["job_id"]: j["call_id"] for j in batch.json()["jobs"]}
        assert named == {job_id: call_id if call_id in SEES[name] else None for job_id, call_id in jobs.items()}, name
        for job_id, call_id in jobs.items():
            job = get(teams, f"/v1/audit/jobs/{job_id}", name).json()
            assert job["call_id"] == (call_id if call_id in SEES[name] else None), (name, job_id)
        summary = get(teams, "/v1/audit/batches/team-batch/summary.csv", name)
        rows = {row["file_name"]: row for row in csv.DictReader(io.StringIO(summary.text.lstrip("\ufeff")))}
        for call_id in jobs.values():
            shown = call_id in SEES[name]
            assert (rows[f"{call_id}.wav"]["call_id"] == call_id) == shown, (name, call_id)
            assert (rows[f"{call_id}.wav"]["score"] != "") == shown, (name, call_id)


def test_the_qa_pages_refuse_another_teams_call_with_a_page(teams: dict[str, Any]) -> None:
    http: httpx.Client = teams["http"]
    cookie = {"Cookie": f"callwatch_qa={teams['keys']['lead-blue']}"}
    page = http.get("/audit/calls/team-red-1", headers=cookie)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html") and PHONE not in page.text
    audio = http.get("/v1/audit/calls/team-red-1/audio", headers=cookie)
    assert audio.status_code == 404
    own = http.get("/v1/audit/calls/team-blue-1/audio", headers=cookie)
    assert own.status_code == 200 and own.content[:4] == b"RIFF"


# ---------------------------------------------------------------- the live board


def _on_the_board(env: dict[str, Any]) -> None:
    """Every call on the hub, as the ingest publishes a call's start."""
    for call_id, (tenant, agent) in CALLS.items():
        env["runtime"].feed_hub.publish_nowait(CallInfo(call_id=call_id, agent_id=agent, tenant=tenant),
                                               {"type": "started", "call_id": call_id, "event_id": 1, "protocol": 1,
                                                "legs": []})


@contextmanager
def _board_socket(env: dict[str, Any], name: str) -> Iterator[tuple[ClientConnection, list[dict[str, Any]]]]:
    """The supervisor board's socket, signed in as `name`, and what it was sent up to `ready`."""
    with connect(env["served"].ws_url + "/v1/agent-feed", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "hello", "supervisor": name, "token": env["keys"][name]}))
        got: list[dict[str, Any]] = []
        while not got or got[-1]["type"] != "ready":
            got.append(json.loads(ws.recv(timeout=10)))
        yield ws, got


def _until(ws: ClientConnection, wanted: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Messages up to and including the first `wanted` one."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or not wanted(got[-1]):
        got.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return got


def _ours(messages: list[dict[str, Any]]) -> set[str]:
    return {m["call_id"] for m in messages if m.get("call_id") in CALLS}


def test_the_board_shows_a_team_supervisor_its_teams_calls_only(teams: dict[str, Any]) -> None:
    _on_the_board(teams)
    for name in ("lead-red", "lead-blue", "lead-acme", "chief-red"):
        with _board_socket(teams, name) as (_, got):
            pass
        assert _ours(got) == SEES[name], name
        assert set(got[-1]["live_calls"]) & set(CALLS) == SEES[name], name
        r = get(teams, "/v1/live-calls", name)
        assert r.status_code == 200 and {c["call_id"] for c in r.json()["calls"]} & set(CALLS) == SEES[name], name


def test_the_feed_refuses_to_follow_another_teams_call_and_keeps_its_news_away(teams: dict[str, Any]) -> None:
    hub = teams["runtime"].feed_hub
    _on_the_board(teams)
    with _board_socket(teams, "lead-red") as (ws, _):
        # In order: were the first watch followed, its call's messages would come before the second's.
        ws.send(json.dumps({"type": "watch", "call_id": "team-blue-1"}))
        ws.send(json.dumps({"type": "watch", "call_id": "team-red-1"}))
        followed = _until(ws, lambda m: m.get("call_id") == "team-red-1" and m["type"] == "started")
        assert _ours(followed) == {"team-red-1"}

        def said(call_id: str, event_id: int) -> None:
            tenant, agent = CALLS[call_id]
            hub.publish_nowait(CallInfo(call_id=call_id, agent_id=agent, tenant=tenant),
                               {"type": "final", "call_id": call_id, "event_id": event_id, "utterance_id": "agent-1",
                                "speaker": "agent", "start": 1.0, "end": 2.0, "text": "您好"})
            hub.publish_nowait(CallInfo(call_id=call_id, agent_id=agent, tenant=tenant),
                               {"type": "emotion", "call_id": call_id, "event_id": event_id + 1, "t": 2.0,
                                "label": "upset", "valence": -0.4, "arousal": 0.3, "smoothed_valence": -0.4, "turn": 1})

        # The blue call's words and mood first, then the red ones': only red's arrive, in full (followed) and
        # as the board's summary.
        said("team-blue-1", 10)
        said("team-red-1", 10)
        got = _until(ws, lambda m: m.get("call_id") == "team-red-1" and m["type"] == "summary")
        assert _ours(got) == {"team-red-1"} and any(m["type"] == "final" for m in got)
