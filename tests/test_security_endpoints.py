"""Nobody gets in where they don't belong: every route and socket of the real app, on a real uvicorn server,
without a key, with a wrong one, an expired one, another role's, another tenant's or another agent's; and a
tenant-scoped QA or supervisor key's cross-call tools (list, search, exports, batches, re-audit) show its
tenant's calls only.

The routes are read from the app itself, so a new endpoint is tested as soon as it exists, and fails here
until ACCESS below says who may use it (or PUBLIC says why everyone may). Keys come from a real keys file;
the calls are rows in a real SQLite store beside the shared models.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
from support.keyed_server import close_private, private_runtime, start_and_hang_up
from support.live_server import LiveServer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from wire.agent_feed import CallInfo

# Who may use what, stated here independently of the code under test. Longest prefix first.
INTEGRATOR, AGENT, SUPERVISOR, QA = "integrator", "agent", "supervisor", "qa"
ACCESS: list[tuple[str, tuple[str, ...]]] = [
    ("/v1/ingest", (INTEGRATOR,)),
    # Each platform's own way of carrying the key; each connector's tests check its refusals.
    ("/v1/connectors/", (INTEGRATOR,)),
    ("/v1/agent-feed", (AGENT, SUPERVISOR)),
    ("/v1/live-calls", (AGENT, SUPERVISOR)),
    ("/v1/calls/", (INTEGRATOR, AGENT, SUPERVISOR, QA)),
    # The names table (no call's data): every role's screens or reports name rules.
    ("/v1/rules/", (INTEGRATOR, AGENT, SUPERVISOR, QA)),
    ("/v1/audit-timeline", (INTEGRATOR, SUPERVISOR, QA)),
    ("/v1/audit/", (SUPERVISOR, QA)),
    ("/audit", (SUPERVISOR, QA)),
    # The review workflow (docs/qa.md): agents their own reviews, supervisors rule, reviewers the rest.
    ("/v1/qa/my-reviews", (AGENT,)),
    ("/v1/qa/disputes", (SUPERVISOR,)),
    # Sampling plans and calibrations are a supervisor's to make; a reviewer works its own under
    # /v1/qa/queue and /v1/qa/my-calibrations; trends are everyone's in QA, an agent's its own rows.
    ("/v1/qa/plans", (SUPERVISOR,)),
    ("/v1/qa/calibrations", (SUPERVISOR,)),
    ("/v1/qa/trends", (SUPERVISOR, QA, AGENT)),
    ("/v1/qa/", (SUPERVISOR, QA)),
]
# Open to everyone, on purpose: probes, the sign-in pages and their static files (no data; the pages ask for
# a key before they show anything), the API description. /metrics has its own CALLWATCH_METRICS_TOKEN.
# The QA review and trends pages hold no data either: their scripts ask /v1/qa and /v1/audit, which the rules
# above guard; /qa/static/vendor/ is the chart library as published.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/agent", "/supervisor", "/static/{name}", "/openapi.json", "/docs",
          "/docs/oauth2-redirect", "/redoc", "/qa/reviews", "/qa/calls/{call_id}/review", "/qa/my-reviews",
          "/qa/my-reviews/{review_id}", "/qa/disputes", "/qa/disputes/{dispute_id}", "/qa/static/{name}",
          "/qa/trends", "/qa/static/vendor/{name}", "/qa/queue", "/qa/plans", "/qa/plans/{plan_id}",
          "/qa/calibrations", "/qa/calibrations/{calibration_id}", "/qa/calibrations/{calibration_id}/result"}

# role, name, tenant
PRINCIPALS = [
    (INTEGRATOR, "pbx-acme", "acme"), (INTEGRATOR, "pbx-globex", "globex"),
    (AGENT, "a1", "acme"), (AGENT, "a2", "acme"), (AGENT, "g1", "globex"),
    (SUPERVISOR, "lead-acme", "acme"), (SUPERVISOR, "lead-globex", "globex"), (SUPERVISOR, "chief", None),
    (QA, "qa-team", None), (QA, "qa-acme", "acme"),
]
EXPIRED_FOR = {INTEGRATOR: "pbx-acme", AGENT: "a1", SUPERVISOR: "chief", QA: "qa-team"}
ACME_CALL, GLOBEX_CALL = "sec-acme-a1", "sec-globex-g1"  # agent a1 of acme; agent g1 of globex
PHONE = "13812345678"
FILE_NAMES = {ACME_CALL: f"a1_{PHONE}.wav", GLOBEX_CALL: "g1_globex_only.wav"}
PATH_VALUES = {"call_id": ACME_CALL, "batch_id": "no-such-batch", "job_id": "no-such-job", "name": "report.js",
               "review_id": "no-such-review", "finding_id": "1", "dispute_id": "no-such-dispute",
               "plan_id": "no-such-plan", "calibration_id": "no-such-calibration"}


def app_routes() -> list[tuple[str, str]]:
    """(kind, path) of every route: kind is an HTTP method or `WS`."""
    app = create_app()
    try:
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # FastAPI before lazily included routers
        routes = list(app.routes)
    out = []
    for route in routes:
        methods = getattr(route, "methods", None)
        if methods is None:
            out.append(("WS", route.path))
        else:
            out += [(m, route.path) for m in sorted(methods - {"HEAD"})]
    return out


ROUTES = app_routes()
HTTP_ROUTES = [(m, p) for m, p in ROUTES if m != "WS" and p not in PUBLIC]


def admitted(path: str) -> tuple[str, ...] | None:
    for prefix, roles in ACCESS:
        if path.startswith(prefix):
            return roles
    return None


# ---------------------------------------------------------------- the server


class Keys:
    """The keys file's principals and their (plaintext, test-only) keys."""

    def __init__(self, path: Path):
        self.path = path
        self.key: dict[str, str] = {}
        self.expired: dict[str, str] = {}
        self.tenant: dict[str, str | None] = {}
        self.role: dict[str, str] = {}
        spec = KeysFile()
        now = datetime.now(timezone.utc)
        for role, name, tenant in PRINCIPALS:
            self.key[name], self.tenant[name], self.role[name] = f"cw_{secrets.token_urlsafe(16)}", tenant, role
            keys = [KeySpec(sha256=digest_of(self.key[name]), created=now)]
            if EXPIRED_FOR.get(role) == name:
                self.expired[role] = f"cw_{secrets.token_urlsafe(16)}"
                keys.append(KeySpec(sha256=digest_of(self.expired[role]), expires=now - timedelta(minutes=1)))
            spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant, keys=keys))
        save_keys_file(path, spec)

    def of_role(self, role: str) -> list[str]:
        return [n for n in self.key if self.role[n] == role]


def seed(rt: Any, tmp: Path) -> None:
    """Two stored calls, one per tenant, each in the call list (and its search index) under its tenant."""
    from service.persistence.call_list import CallList

    audio = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
    text = f"您好，我的手机号是{PHONE}，麻烦回电。"
    for call_id, agent, tenant in ((ACME_CALL, "a1", "acme"), (GLOBEX_CALL, "g1", "globex")):
        assert rt.store.create_call(call_id, agent, "inbound", PHONE, "2026-11-23T09:30:00+08:00", audio, tenant)
        rt.store.add_utterance(call_id, "customer-0", "customer", 1.0, 4.0, text)
        rt.store.add_event(call_id, "hangup", 9.0, "customer", None)
        report = {"score": 96.0, "findings": [
            {"rule_id": "closing.thanks", "severity": "warn", "t": 8.0, "end": None, "detail": f"客户留了号码{PHONE}",
             "evidence": [{"kind": "utterance", "t": 1.0, "end": 4.0, "speaker": "customer", "text": PHONE, "event": None}],
             "prompt": "…", "seed": "…", "recovery": None}], "deductions": [], "figures": None, "prompts": []}
        rt.store.save_report(call_id, 96.0, report)
        rt.store.end_call(call_id, "completed", 9.5)
        recording = tmp / f"{call_id}.wav"
        sf.write(recording, np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
        CallList(rt.store.db).index(call_id=call_id, agent_id=agent, direction="inbound",
                                    started_at="2026-11-23T09:30:00+08:00", duration=9.5, report=report,
                                    utts=[{"speaker": "customer", "start": 1.0, "text": text}],
                                    file_name=FILE_NAMES[call_id], source_path=str(recording), audit={}, tenant=tenant)


@pytest.fixture(scope="module")
def secured(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("security")
    keys = Keys(tmp / "keys.yaml")
    rt = private_runtime(runtime, tmp, keys.path)
    seed(rt, tmp)
    try:
        with LiveServer(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=30) as http:
            yield {"keys": keys, "runtime": rt, "served": served, "http": http}
    finally:
        close_private(rt)


def auth(key: str | None) -> dict[str, str]:
    """The Authorization header for `key` (a `Basic …` value is sent as it is: not a bearer key)."""
    if key is None:
        return {}
    return {"Authorization": key if key.startswith("Basic ") else f"Bearer {key}"}


def get(secured: dict[str, Any], method: str, path: str, key: str | None) -> httpx.Response:
    url = path.format(**PATH_VALUES)
    return secured["http"].request(method, url, headers=auth(key))


# ---------------------------------------------------------------- every route


def test_every_route_is_guarded_or_public_on_purpose() -> None:
    unknown = [f"{m} {p}" for m, p in ROUTES if p not in PUBLIC and admitted(p) is None]
    assert not unknown, f"routes with no access rule (add them to ACCESS or PUBLIC): {unknown}"
    assert {p for _, p in ROUTES} >= {"/v1/ingest", "/v1/agent-feed", "/v1/calls/{call_id}", "/v1/audit-timeline"}


@pytest.mark.parametrize("method, path", HTTP_ROUTES, ids=[f"{m} {p}" for m, p in HTTP_ROUTES])
def test_route_refuses_missing_wrong_expired_and_other_roles_keys(secured: dict[str, Any], method: str, path: str) -> None:
    keys: Keys = secured["keys"]
    roles = admitted(path)
    assert roles is not None
    assert get(secured, method, path, None).status_code == 401
    assert get(secured, method, path, "Basic YTE6dG9rZW4=").status_code == 401
    assert get(secured, method, path, f"cw_{secrets.token_urlsafe(16)}").status_code == 403
    for role, expired in keys.expired.items():
        assert get(secured, method, path, expired).status_code == 403, f"expired {role} key"
    for name, key in keys.key.items():
        if keys.role[name] not in roles:
            assert get(secured, method, path, key).status_code == 403, f"{keys.role[name]} {name}"
    # The keys that do belong get past the door (whatever the route then answers to an empty request).
    for name in ("chief", "qa-team", "pbx-acme", "a1"):
        if keys.role[name] in roles:
            assert get(secured, method, path, keys.key[name]).status_code not in (401, 403, 404) or (
                "{" in path and "call_id" not in path), f"{name} refused"


PER_CALL = [(m, p) for m, p in HTTP_ROUTES if "{call_id}" in p]


@pytest.mark.parametrize("method, path", PER_CALL, ids=[f"{m} {p}" for m, p in PER_CALL])
def test_per_call_routes_refuse_other_tenants_and_other_agents(secured: dict[str, Any], method: str, path: str) -> None:
    keys: Keys = secured["keys"]
    roles = admitted(path) or ()
    outsiders = [n for n in keys.key if keys.role[n] in roles and keys.tenant[n] == "globex"]
    outsiders += [n for n in ("a2",) if AGENT in roles]  # same tenant, another agent's call
    assert outsiders
    for name in outsiders:
        r = get(secured, method, path, keys.key[name])
        assert r.status_code == 404, f"{name}: {r.status_code}"
        assert PHONE not in r.text and "您好" not in r.text
    insiders = [n for n in keys.key if keys.role[n] in roles and keys.tenant[n] in ("acme", None)
                and (keys.role[n] != AGENT or n == "a1")]
    for name in insiders:
        # 201: the first key to open the call's QA review opened it (POST /v1/qa/calls/{call_id}/review).
        assert get(secured, method, path, keys.key[name]).status_code in ((200, 201) if method == "POST" else (200,)), name


@pytest.mark.parametrize("method, path", [r for r in HTTP_ROUTES if admitted(r[1]) == (SUPERVISOR, QA)
                                          and "{call_id}" not in r[1]])
def test_qa_tools_across_calls_admit_tenant_scoped_keys(secured: dict[str, Any], method: str, path: str) -> None:
    """They are cut to the key's tenant instead (the tests below); what an empty request then gets (a 404
    for a batch id that does not exist, a 422 for a missing body) is the route's business."""
    keys: Keys = secured["keys"]
    for name in ("qa-acme", "lead-acme"):
        assert get(secured, method, path, keys.key[name]).status_code not in (401, 403), name


# ---------------------------------------------------------------- QA tools cut to a tenant


def listed(secured: dict[str, Any], name: str, **params: Any) -> set[str]:
    r = secured["http"].get("/v1/audit/calls", params={"limit": 500, **params}, headers=auth(secured["keys"].key[name]))
    assert r.status_code == 200, (name, r.text)
    return {row["call_id"] for row in r.json()["rows"]}


def tenants_of(secured: dict[str, Any], call_ids: set[str]) -> set[str | None]:
    from sqlalchemy import select

    from service.persistence.tables import audit_calls

    with secured["runtime"].store.db.engine.connect() as conn:
        return set(conn.execute(select(audit_calls.c.tenant).where(audit_calls.c.call_id.in_(sorted(call_ids)))).scalars())


def test_a_tenant_scoped_key_lists_and_searches_only_its_tenants_calls(secured: dict[str, Any]) -> None:
    for name in ("qa-acme", "lead-acme"):
        mine = listed(secured, name)
        assert ACME_CALL in mine and GLOBEX_CALL not in mine and tenants_of(secured, mine) == {"acme"}, name
        # Both calls say it; only the tenant's is found.
        assert listed(secured, name, q="麻烦回电") == {ACME_CALL}, name
        assert listed(secured, name, agent_id="g1") == set(), name
    globex = listed(secured, "lead-globex")
    assert GLOBEX_CALL in globex and tenants_of(secured, globex) == {"globex"}
    assert listed(secured, "chief", q="麻烦回电") == listed(secured, "qa-team", q="麻烦回电") == {ACME_CALL, GLOBEX_CALL}


def test_a_tenant_scoped_keys_csv_export_holds_only_its_tenants_calls(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    r = secured["http"].get("/v1/audit/calls.csv", headers=auth(keys.key["qa-acme"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert FILE_NAMES[ACME_CALL] in r.text and FILE_NAMES[GLOBEX_CALL] not in r.text
    everything = secured["http"].get("/v1/audit/calls.csv", headers=auth(keys.key["chief"])).text
    assert FILE_NAMES[ACME_CALL] in everything and FILE_NAMES[GLOBEX_CALL] in everything


def test_a_live_call_joins_the_list_under_its_integrators_tenant(secured: dict[str, Any]) -> None:
    from service.persistence.call_list import CallList

    keys: Keys = secured["keys"]
    stream_a_call(secured, keys.key["pbx-globex"], "sec-ws-globex-listed", "g1")
    CallList(secured["runtime"].store.db).sync()  # what the list does by itself at most every 30 s
    assert tenants_of(secured, {"sec-ws-globex-listed"}) == {"globex"}
    assert "sec-ws-globex-listed" in listed(secured, "lead-globex", agent_id="g1")
    assert "sec-ws-globex-listed" not in listed(secured, "lead-acme", agent_id="g1")


def wait_for_batch(secured: dict[str, Any], batch_id: str, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = secured["http"].get(f"/v1/audit/batches/{batch_id}", headers=auth(secured["keys"].key[name]))
        assert r.status_code == 200, r.text
        if r.json()["finished"]:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish")


def test_a_tenant_scoped_upload_is_the_tenants_and_another_tenant_cannot_read_its_batch(
        secured: dict[str, Any], shared_audio: Path, tmp_path: Path) -> None:
    """A real audit of a short recording uploaded with qa-acme's key: the call is acme's, in acme's list and
    nobody else's; the batch, its CSV and its jobs are 404 to globex's keys, as for a batch that does not exist."""
    keys: Keys = secured["keys"]
    http: httpx.Client = secured["http"]
    audio, rate = sf.read(shared_audio / "calls" / "call_01_read_vs_spontaneous.wav", dtype="int16")
    clip = tmp_path / "tenant_upload_a1.wav"
    sf.write(clip, audio[: 5 * rate], rate, subtype="PCM_16")  # five seconds: a short real audit
    r = http.post("/v1/audit/batches", headers=auth(keys.key["qa-acme"]),
                  files=[("files", (clip.name, clip.read_bytes(), "audio/wav"))], data={"meta": '{"agent_id": "a1"}'})
    assert r.status_code == 202, r.text
    batch = wait_for_batch(secured, r.json()["batch_id"], "qa-acme")
    job = batch["jobs"][0]
    assert job["state"] == "done", job
    call_id = job["call_id"]
    assert secured["runtime"].store.get_call(call_id).tenant == "acme" and tenants_of(secured, {call_id}) == {"acme"}
    assert call_id in listed(secured, "lead-acme") and call_id not in listed(secured, "lead-globex")
    assert http.get(f"/v1/audit/calls/{call_id}", headers=auth(keys.key["lead-acme"])).status_code == 200
    assert http.get(f"/v1/audit/calls/{call_id}", headers=auth(keys.key["lead-globex"])).status_code == 404

    theirs = [f"/v1/audit/batches/{batch['batch_id']}", f"/v1/audit/batches/{batch['batch_id']}/summary.csv",
              f"/v1/audit/jobs/{job['job_id']}"]
    for path in theirs:
        for name in ("lead-globex",):
            r = http.get(path, headers=auth(keys.key[name]))
            assert r.status_code == 404 and call_id not in r.text, (name, path)
        for name in ("qa-acme", "lead-acme", "chief", "qa-team"):
            assert http.get(path, headers=auth(keys.key[name])).status_code == 200, (name, path)

    # The same recording uploaded under globex is the same call id, already stored: skipped, naming no call.
    r = http.post("/v1/audit/batches", headers=auth(keys.key["lead-globex"]),
                  files=[("files", (clip.name, clip.read_bytes(), "audio/wav"))])
    again = wait_for_batch(secured, r.json()["batch_id"], "lead-globex")
    assert again["jobs"][0]["state"] == "skipped" and again["jobs"][0]["call_id"] is None
    for path in (f"/v1/audit/batches/{again['batch_id']}", f"/v1/audit/batches/{again['batch_id']}/summary.csv",
                 f"/v1/audit/jobs/{again['jobs'][0]['job_id']}"):
        r = http.get(path, headers=auth(keys.key["lead-globex"]))
        assert r.status_code == 200 and call_id not in r.text, path
    assert call_id in http.get(f"/v1/audit/batches/{again['batch_id']}", headers=auth(keys.key["chief"])).text


def test_a_tenant_scoped_path_batch_reads_its_tenants_import_folder_only(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    http: httpx.Client = secured["http"]
    imports = Path(secured["runtime"].settings.data_dir) / "import"
    for tenant in ("acme", "globex"):
        (imports / tenant).mkdir(parents=True, exist_ok=True)
        (imports / tenant / f"{tenant}_empty.wav").write_bytes(b"")  # fails at once, as `empty`: no recogniser
    acme = keys.key["qa-acme"]
    assert http.post("/v1/audit/batches/paths", json={"paths": [str(imports / "globex")]}, headers=auth(acme)).status_code == 403
    assert http.post("/v1/audit/batches/paths", json={"paths": [str(imports)]}, headers=auth(acme)).status_code == 403
    r = http.post("/v1/audit/batches/paths", json={"paths": [str(imports / "acme")]}, headers=auth(acme))
    assert r.status_code == 202, r.text
    batch = wait_for_batch(secured, r.json()["batch_id"], "qa-acme")
    assert [(j["file_name"], j["error_code"]) for j in batch["jobs"]] == [("acme_empty.wav", "empty")]
    assert http.get(f"/v1/audit/batches/{batch['batch_id']}", headers=auth(keys.key["lead-globex"])).status_code == 404
    chief = http.post("/v1/audit/batches/paths", json={"paths": [str(imports)]}, headers=auth(keys.key["chief"]))
    assert chief.status_code == 202, chief.text  # a deployment-wide key reads every folder


def test_a_tenant_scoped_reaudit_touches_only_its_tenants_calls(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    http: httpx.Client = secured["http"]
    acme = auth(keys.key["qa-acme"])
    r = http.post("/v1/audit/reaudit", json={"rules": "", "call_ids": [GLOBEX_CALL]}, headers=acme)
    assert r.status_code == 404 and PHONE not in r.text
    r = http.post("/v1/audit/reaudit", json={"rules": "", "call_ids": [ACME_CALL]}, headers=acme)
    assert r.status_code == 200 and [row["call_id"] for row in r.json()["rows"]] == [ACME_CALL]
    by_query = http.post("/v1/audit/reaudit", json={"rules": "", "query": {"q": "麻烦回电"}}, headers=acme)
    assert by_query.status_code == 200 and {row["call_id"] for row in by_query.json()["rows"]} == {ACME_CALL}
    everyone = http.post("/v1/audit/reaudit", json={"rules": "", "query": {"q": "麻烦回电"}}, headers=auth(keys.key["chief"]))
    assert {row["call_id"] for row in everyone.json()["rows"]} == {ACME_CALL, GLOBEX_CALL}


def test_qa_pages_take_the_key_as_query_or_cookie_too(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    http: httpx.Client = secured["http"]
    assert http.get("/audit/calls", params={"token": keys.expired[QA]}).status_code == 403
    assert http.get(f"/v1/audit/calls/{ACME_CALL}/audio",
                    headers={"Cookie": f"callwatch_qa={keys.key['lead-globex']}"}).status_code == 404
    audio = http.get(f"/v1/audit/calls/{ACME_CALL}/audio", headers={"Cookie": f"callwatch_qa={keys.key['lead-acme']}"})
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"


# ---------------------------------------------------------------- the sockets


def ingest(secured: dict[str, Any], key: str | None) -> Any:
    return connect(secured["served"].ws_url + "/v1/ingest", additional_headers=auth(key), open_timeout=10)


def test_ingest_handshake_refuses_all_but_integrators_and_logs_who(secured: dict[str, Any],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    keys: Keys = secured["keys"]
    refused = [None, "Basic YTE6dG9rZW4=", f"cw_{secrets.token_urlsafe(16)}", *keys.expired.values(),
               *(keys.key[n] for n in keys.key if keys.role[n] != INTEGRATOR)]
    with caplog.at_level(logging.WARNING, "callwatch.access"):
        for key in refused:
            with pytest.raises(InvalidStatus) as err:
                ingest(secured, key).close()
            assert err.value.response.status_code == 403
    logged = [r.getMessage() for r in caplog.records if r.name == "callwatch.access"]
    assert len(logged) >= len(refused) and all("/v1/ingest" in m for m in logged)
    assert "expired key" in caplog.text and "agent 'a1'" in caplog.text
    assert not any(k and k in caplog.text for k in refused)


def stream_a_call(secured: dict[str, Any], key: str, call_id: str, agent_id: str) -> None:
    with ingest(secured, key) as ws:
        start_and_hang_up(ws, call_id, agent_id)


def test_an_integrator_reads_its_own_calls_only(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    stream_a_call(secured, keys.key["pbx-globex"], "sec-ws-globex", "g1")
    assert secured["runtime"].store.get_call("sec-ws-globex").tenant == "globex"
    own = get(secured, "GET", "/v1/calls/sec-ws-globex", keys.key["pbx-globex"])
    assert own.status_code == 200 and own.json()["status"] == "completed"
    for name in ("pbx-acme", "lead-acme", "qa-acme", "a1", "g1"):
        expected = 200 if name == "g1" else 404  # g1 is the call's agent
        assert get(secured, "GET", "/v1/calls/sec-ws-globex", keys.key[name]).status_code == expected, name
    assert get(secured, "GET", "/v1/calls/sec-ws-globex", keys.key["chief"]).status_code == 200


def feed(secured: dict[str, Any], hello: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """Messages up to `ready` (or the close code when refused)."""
    got: list[dict[str, Any]] = []
    with connect(secured["served"].ws_url + "/v1/agent-feed", open_timeout=10) as ws:
        ws.send(json.dumps(hello))
        try:
            while not got or got[-1]["type"] != "ready":
                got.append(json.loads(ws.recv(timeout=10)))
        except ConnectionClosed as closed:
            return got, closed.rcvd.code if closed.rcvd else None
    return got, None


def test_agent_feed_refuses_wrong_keys_and_cuts_the_board_to_the_tenant(secured: dict[str, Any]) -> None:
    keys: Keys = secured["keys"]
    hub = secured["runtime"].feed_hub
    for call_id, agent, tenant in ((ACME_CALL, "a1", "acme"), (GLOBEX_CALL, "g1", "globex")):
        hub.publish_nowait(CallInfo(call_id=call_id, agent_id=agent, tenant=tenant),  # as the ingest publishes it
                           {"type": "started", "call_id": call_id, "event_id": 1, "protocol": 1, "legs": []})
    refused = [
        {"type": "hello", "agent_id": "a1", "token": ""},
        {"type": "hello", "agent_id": "a1", "token": "cw_wrong"},
        {"type": "hello", "agent_id": "a1", "token": keys.expired[AGENT]},
        {"type": "hello", "agent_id": "a1", "token": keys.key["a2"]},  # another agent's key
        {"type": "hello", "agent_id": "pbx-acme", "token": keys.key["pbx-acme"]},  # an integrator is no agent
        {"type": "hello", "supervisor": "chief", "token": keys.expired[SUPERVISOR]},
        {"type": "hello", "supervisor": "qa-team", "token": keys.key["qa-team"]},  # QA does not watch live
        {"type": "hello", "supervisor": "lead-acme", "token": keys.key["lead-globex"]},
    ]
    for hello in refused:
        got, code = feed(secured, hello)
        assert code == 1008 and not got, hello

    def calls_seen(hello: dict[str, Any]) -> set[str]:
        got, code = feed(secured, hello)
        assert code is None and got[-1]["type"] == "ready", (hello, code)
        return {m["call_id"] for m in got if "call_id" in m} | set(got[-1]["live_calls"])

    def tenants(call_ids: set[str]) -> set[str]:
        return {secured["runtime"].store.get_call(c).tenant for c in call_ids}

    # (Other tests of this module may have left calls of their own in the feed.)
    assert calls_seen({"type": "hello", "supervisor": "chief", "token": keys.key["chief"]}) >= {ACME_CALL, GLOBEX_CALL}
    assert calls_seen({"type": "hello", "supervisor": "lead-acme", "token": keys.key["lead-acme"]}) == {ACME_CALL}
    globex = calls_seen({"type": "hello", "supervisor": "lead-globex", "token": keys.key["lead-globex"]})
    assert GLOBEX_CALL in globex and tenants(globex) == {"globex"}
    assert calls_seen({"type": "hello", "agent_id": "a1", "token": keys.key["a1"]}) == {ACME_CALL}
    assert calls_seen({"type": "hello", "agent_id": "a2", "token": keys.key["a2"]}) == set()

    def board(name: str) -> set[str]:
        r = get(secured, "GET", "/v1/live-calls", keys.key[name])
        assert r.status_code == 200, name
        return {c["call_id"] for c in r.json()["calls"]}

    assert board("chief") >= {ACME_CALL, GLOBEX_CALL} and board("lead-acme") == {ACME_CALL}
    assert tenants(board("lead-globex")) == {"globex"} and GLOBEX_CALL in board("g1")
    assert board("a1") == {ACME_CALL} and board("a2") == set()


# ---------------------------------------------------------------- masking


def test_reports_and_exports_mask_personal_numbers_when_asked(secured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    keys: Keys = secured["keys"]
    chief, integrator = keys.key["chief"], keys.key["pbx-acme"]
    exports = [f"/v1/audit/calls/{ACME_CALL}", f"/v1/audit/calls/{ACME_CALL}/report.html",
               f"/v1/audit/calls/{ACME_CALL}/report.csv", f"/audit/calls/{ACME_CALL}"]
    assert all(PHONE in get(secured, "GET", p, chief).text for p in exports)
    assert PHONE in get(secured, "GET", f"/v1/calls/{ACME_CALL}", integrator).text

    monkeypatch.setattr(secured["runtime"].settings, "mask_pii", True)
    for path in exports:
        r = get(secured, "GET", path, chief)
        assert r.status_code == 200 and PHONE not in r.text and "*******5678" in r.text, path
    report = get(secured, "GET", f"/v1/audit/calls/{ACME_CALL}", chief).json()
    assert report["call_id"] == ACME_CALL and report["caller_number"] == "*******5678"
    assert report["recording"] is None or PHONE not in json.dumps(report["recording"])
    call = get(secured, "GET", f"/v1/calls/{ACME_CALL}", integrator).json()
    assert call["utterances"][0]["text"] == "您好，我的手机号是*******5678，麻烦回电。"
    assert call["caller_number"] == "*******5678" and PHONE not in json.dumps(call, ensure_ascii=False)
