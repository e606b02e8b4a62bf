"""Two tenants on one real server (uvicorn on loopback, a real keys file, a real SQLite store): what one
tenant's integrator, agent, supervisor or QA user does never reaches the other's calls, and the other's
call ids are neither refused nor revealed to it. docs/security.md, "Tenant isolation", names these tests.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app

# role, name, tenant. One agent id, A1, is used by both tenants' phone systems; only t1's A1 has a key (the
# keys file names each agent id once).
PRINCIPALS = [
    ("integrator", "pbx-t1", "t1"), ("integrator", "pbx-t2", "t2"), ("agent", "A1", "t1"),
    ("supervisor", "lead-t1", "t1"), ("supervisor", "lead-t2", "t2"), ("supervisor", "chief", None),
    ("qa", "qa-t1", "t1"), ("qa", "qa-t2", "t2"),
]
AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}


@pytest.fixture(scope="module")
def two_tenants(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("tenants")
    keys: dict[str, str] = {}
    spec = KeysFile()
    for role, name, tenant in PRINCIPALS:
        keys[name] = f"cw_{secrets.token_urlsafe(16)}"
        spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant,
                                             keys=[KeySpec(sha256=digest_of(keys[name]), created=datetime.now(timezone.utc))]))
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml")
    try:
        with LiveServer(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=60) as http:
            yield {"keys": keys, "runtime": rt, "served": served, "http": http, "tmp": tmp}
    finally:
        close_private(rt)


def auth(env: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['keys'][name]}"}


def ingest(env: dict[str, Any], integrator: str) -> ClientConnection:
    return connect(env["served"].ws_url + "/v1/ingest", additional_headers=auth(env, integrator), open_timeout=10)


def start(ws: ClientConnection, call_id: str, agent_id: str) -> dict[str, Any]:
    """Send `start`; the first answer (`started`, or the error before a refusal)."""
    ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id, "audio": AUDIO}))
    return json.loads(ws.recv(timeout=10))


def ring_long(ws: ClientConnection) -> dict[str, Any]:
    """Five rings before answering: the answer.rings rule prompts the agent at once (no audio needed)."""
    for _ in range(5):
        ws.send(json.dumps({"type": "event", "event": "ringing"}))
    ws.send(json.dumps({"type": "event", "event": "answered"}))
    return until(ws, lambda m: m["type"] == "prompt")


def until(ws: ClientConnection, wanted: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if wanted(message):
            return message


def hang_up(ws: ClientConnection) -> list[dict[str, Any]]:
    ws.send(json.dumps({"type": "event", "event": "hangup", "by": "customer"}))
    got = []
    try:
        while True:
            got.append(json.loads(ws.recv(timeout=15)))
    except ConnectionClosed:
        return got


@contextmanager
def feed(env: dict[str, Any], hello: dict[str, Any]) -> Iterator[tuple[ClientConnection, list[dict[str, Any]]]]:
    """A feed socket after `ready`, and what came before it."""
    with connect(env["served"].ws_url + "/v1/agent-feed", open_timeout=10) as ws:
        ws.send(json.dumps(hello))
        got = [json.loads(ws.recv(timeout=10))]
        while got[-1]["type"] != "ready":
            got.append(json.loads(ws.recv(timeout=10)))
        yield ws, got


def dismissed_by(store: Any, key: str, prompt_id: str) -> str | None:
    return {p["prompt_id"]: p["dismissed_by"] for p in store.list_prompts(key)}[prompt_id]


def wait_for_batch(env: dict[str, Any], batch_id: str, name: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = env["http"].get(f"/v1/audit/batches/{batch_id}", headers=auth(env, name))
        assert r.status_code == 200, r.text
        if r.json()["finished"]:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish")


# ---------------------------------------------------------------- import folders and symbolic links


def test_links_out_of_a_tenants_import_folder_are_skipped_not_audited(two_tenants: dict[str, Any]) -> None:
    """t2's folder holds links to t1's recording, to a file outside every import folder, to t1's folder, and
    a loop: none is read; each is a skipped job saying why, and t2 gets no call, transcript or audio of them."""
    env, http = two_tenants, two_tenants["http"]
    imports, outside = env["tmp"] / "import", env["tmp"] / "elsewhere"
    for folder in (imports / "t1", imports / "t2" / "sub", outside):
        folder.mkdir(parents=True, exist_ok=True)
    second = np.zeros(16000, dtype=np.int16)  # a real recording: audited in moments if anything lets it through
    sf.write(imports / "t1" / "t1_secret.wav", second, 16000, subtype="PCM_16")
    sf.write(outside / "server_file.wav", second, 16000, subtype="PCM_16")
    t2 = imports / "t2"
    (t2 / "own_empty.wav").write_bytes(b"")  # t2's own file goes through (and fails at once, as `empty`)
    os.symlink(imports / "t1" / "t1_secret.wav", t2 / "theirs.wav")
    os.symlink(outside / "server_file.wav", t2 / "server_file.wav")
    os.symlink(imports / "t1", t2 / "t1_folder")
    os.symlink("loop_b.wav", t2 / "loop_a.wav")
    os.symlink("loop_a.wav", t2 / "loop_b.wav")
    os.symlink("..", t2 / "sub" / "back_up")  # inside t2's folder: read once, not round and round

    r = http.post("/v1/audit/batches/paths", json={"paths": [str(t2)]}, headers=auth(env, "qa-t2"))
    assert r.status_code == 202, r.text
    jobs = {j["file_name"]: j for j in wait_for_batch(env, r.json()["batch_id"], "qa-t2")["jobs"]}
    assert {n: (j["state"], j["error_code"]) for n, j in jobs.items()} == {
        "own_empty.wav": ("failed", "empty"),
        "theirs.wav": ("skipped", "outside_import_folder"),
        "server_file.wav": ("skipped", "outside_import_folder"),
        "t1_folder": ("skipped", "outside_import_folder"),
        "loop_a.wav": ("skipped", "link_loop"),
        "loop_b.wav": ("skipped", "link_loop"),
    }
    assert all(j["call_id"] is None and "not audited" in (j["error"] or "") for n, j in jobs.items() if n != "own_empty.wav")
    assert http.get("/v1/audit/calls", headers=auth(env, "qa-t2")).json()["total"] == 0

    # A loop named in the request is a clear 422, never a 500; a link named there is judged where it leads.
    for name, status in (("loop_a.wav", 422), ("theirs.wav", 403), ("sub/back_up", 202)):
        r = http.post("/v1/audit/batches/paths", json={"paths": [str(t2 / name)]}, headers=auth(env, "qa-t2"))
        assert r.status_code == status, (name, r.status_code, r.text)
    assert "a loop of symbolic links" in http.post("/v1/audit/batches/paths", json={"paths": [str(t2 / "loop_a.wav")]},
                                                   headers=auth(env, "qa-t2")).text


# ---------------------------------------------------------------- writes check the tenant


def test_an_agent_cannot_dismiss_a_prompt_on_another_tenants_call_of_the_same_agent_id(two_tenants: dict[str, Any]) -> None:
    """t1's agent A1 names t2's call of (t2's) agent A1 in a dismiss: nothing is written, t2's supervisor
    still sees the prompt open. Their own call's dismissal goes through (and tells when both were handled)."""
    env, store = two_tenants, two_tenants["runtime"].store
    with ingest(env, "pbx-t2") as theirs, ingest(env, "pbx-t1") as mine:
        assert start(theirs, "t2-call-of-a1", "A1")["type"] == "started"
        assert start(mine, "t1-call-of-a1", "A1")["type"] == "started"
        their_prompt, my_prompt = ring_long(theirs)["prompt_id"], ring_long(mine)["prompt_id"]
        with feed(env, {"type": "hello", "agent_id": "A1", "token": env["keys"]["A1"]}) as (agent, _):
            agent.send(json.dumps({"type": "dismiss", "call_id": "t2-call-of-a1", "prompt_id": their_prompt}))
            agent.send(json.dumps({"type": "dismiss", "call_id": "t1-call-of-a1", "prompt_id": my_prompt}))
            done = until(agent, lambda m: m["type"] == "dismissed")
            assert (done["call_id"], done["prompt_id"]) == ("t1-call-of-a1", my_prompt)
            # The socket's commands are handled in order: once the second is stored, the first was handled.
            deadline = time.monotonic() + 10
            while dismissed_by(store, "t1-call-of-a1", my_prompt) != "A1":
                assert time.monotonic() < deadline, "the agent's own dismissal was not stored"
                time.sleep(0.05)
        stored = {p["prompt_id"]: p for p in store.list_prompts("t2-call-of-a1")}  # no other tenant has the id
        assert stored[their_prompt]["dismissed_at"] is None and stored[their_prompt]["dismissed_by"] is None
        board = env["http"].get("/v1/live-calls", headers=auth(env, "lead-t2")).json()["calls"]
        assert [p["prompt_id"] for c in board if c["call_id"] == "t2-call-of-a1" for p in c["open_prompts"]] == [their_prompt]
        hang_up(theirs)
        hang_up(mine)


# ---------------------------------------------------------------- call ids are per tenant


def test_call_ids_are_per_tenant_neither_refused_nor_revealed_across_tenants(two_tenants: dict[str, Any]) -> None:
    """Both tenants start `shared-0001`, t1's still live when t2's starts: both are taken, each tenant reads,
    lists, watches and re-audits its own under that id, and only a tenant's own duplicate is refused."""
    env, http, rt = two_tenants, two_tenants["http"], two_tenants["runtime"]
    with ingest(env, "pbx-t1") as first:
        assert start(first, "shared-0001", "A1")["type"] == "started"
        with ingest(env, "pbx-t2") as second:
            started = start(second, "shared-0001", "B7")
            assert started == {**started, "type": "started", "call_id": "shared-0001"}, started  # not 4409
            assert len([k for k in rt.sessions if k.startswith("shared-0001")]) == 2
            frames = hang_up(second)
            assert {m["call_id"] for m in frames} == {"shared-0001"}  # the id t2 sent, never the row key
        with ingest(env, "pbx-t1") as again:  # t1's own duplicate is still refused
            assert start(again, "shared-0001", "A1")["code"] == "duplicate_call"
            with pytest.raises(ConnectionClosed) as closed:
                again.recv(timeout=10)
            assert closed.value.rcvd.code == 4409
        hang_up(first)

    for name, agent in (("pbx-t1", "A1"), ("pbx-t2", "B7"), ("lead-t2", "B7"), ("qa-t1", "A1")):
        call = http.get("/v1/calls/shared-0001", headers=auth(env, name)).json()
        assert (call["call_id"], call["agent_id"]) == ("shared-0001", agent), name
    t2_key = rt.store.find_call("t2", "shared-0001")
    assert t2_key != "shared-0001" and http.get(f"/v1/calls/{t2_key}", headers=auth(env, "pbx-t2")).status_code == 404

    from service.persistence.call_list import CallList

    CallList(rt.store.db).sync()
    for name, agent in (("qa-t1", "A1"), ("qa-t2", "B7")):
        rows = http.get("/v1/audit/calls", params={"limit": 500}, headers=auth(env, name)).json()["rows"]
        assert [(r["call_id"], r["agent_id"]) for r in rows if r["call_id"].startswith("shared")] == [("shared-0001", agent)]
        assert http.get("/v1/audit/calls/shared-0001", headers=auth(env, name)).json()["agent_id"] == agent
    everyone = {r["call_id"] for r in http.get("/v1/audit/calls", params={"limit": 500}, headers=auth(env, "chief")).json()["rows"]}
    assert {"shared-0001", t2_key} <= everyone  # a deployment-wide key tells them apart by row key

    r = http.post("/v1/audit/reaudit", json={"rules": "", "call_ids": ["shared-0001"], "apply": True}, headers=auth(env, "qa-t2"))
    assert r.status_code == 200 and [row["call_id"] for row in r.json()["rows"]] == ["shared-0001"], r.text
    assert "rules" in audit_info(rt, t2_key) and "rules" not in audit_info(rt, "shared-0001")  # t1's call untouched

    for supervisor, agent in (("lead-t1", "A1"), ("lead-t2", "B7")):
        with feed(env, {"type": "hello", "supervisor": supervisor, "token": env["keys"][supervisor]}) as (ws, got):
            ws.send(json.dumps({"type": "watch", "call_id": "shared-0001"}))
            watched = until(ws, lambda m: m["type"] == "call")
        assert (watched["call_id"], watched["agent_id"]) == ("shared-0001", agent), supervisor
        assert [m["agent_id"] for m in got if m["type"] == "call" and m["call_id"] == "shared-0001"] == [agent]
        assert not any(t2_key in json.dumps(m) for m in got)


def audit_info(rt: Any, key: str) -> dict[str, Any]:
    from sqlalchemy import select

    from service.persistence.tables import audit_calls

    with rt.store.db.engine.connect() as conn:
        return json.loads(conn.execute(select(audit_calls.c.audit).where(audit_calls.c.call_id == key)).scalar() or "{}")
