"""The key ring, the keys file and `callwatch keys`: hashed keys, roles and tenants, rotation without a
restart, expiry, refusals logged without the key. No models; a real file on disk, the real command line."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.access.cli import keys_app
from service.access.guard import require
from service.access.keys import Principal, digest_of
from service.access.keysfile import KeysFileError, load_keys_file
from service.access.ring import KeyRing
from service.app_state import get_key_ring, get_runtime
from service.settings import Settings

REPO = Path(__file__).resolve().parents[1]
KEY_LINE = re.compile(r"^cw_[A-Za-z0-9_-]{43}$", re.M)


def issue(path: Path, *args: str) -> str:
    """Run `callwatch keys …` in-process; return the key it printed."""
    result = CliRunner().invoke(keys_app, [*args, "--file", str(path)])
    assert result.exit_code == 0, result.output
    keys = KEY_LINE.findall(result.output)
    assert len(keys) == 1, result.output
    return keys[0]


def settings_with(path: Path | None = None, **tables: dict[str, str]) -> Settings:
    return Settings(keys_file=path, **tables)


def bump(path: Path) -> None:
    """Make sure a rewrite is seen even on a file system with coarse modification times."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# ---------------------------------------------------------------- the ring


def test_settings_tokens_are_principals_and_may_be_digests() -> None:
    ring = KeyRing()
    settings = settings_with(ingest_keys={"pbx-east": "k-east"}, agent_tokens={"a1": f"sha256:{digest_of('tok-a1')}"},
                             supervisor_tokens={"lead": "tok-lead"})
    assert [e.principal for e in ring.lookup(settings, "k-east")] == [Principal("integrator", "pbx-east", "pbx-east")]
    assert [e.principal for e in ring.lookup(settings, "tok-a1")] == [Principal("agent", "a1", None)]
    assert [e.principal for e in ring.lookup(settings, "tok-lead")] == [Principal("supervisor", "lead", None)]
    assert ring.lookup(settings, f"sha256:{digest_of('tok-a1')}") == []  # the digest is not the key
    assert ring.lookup(settings, "") == [] and ring.lookup(settings, "k-east ") == []
    assert ring.configured_roles(settings) == {"integrator", "agent", "supervisor"}
    settings.agent_tokens = {}  # changed in place, as tests and `callwatch demo` do
    assert ring.lookup(settings, "tok-a1") == []


def test_the_file_holds_digests_only_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key = issue(path, "add", "integrator", "pbx-east")
    text = path.read_text(encoding="utf-8")
    assert key not in text and digest_of(key) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [entry] = KeyRing().lookup(settings_with(path), key)
    assert entry.principal == Principal("integrator", "pbx-east", "pbx-east") and entry.source == str(path)


def test_rotation_and_revocation_need_no_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    ring, settings = KeyRing(), settings_with(tmp_path / "keys.yaml")
    old = issue(path, "add", "integrator", "pbx-east")
    assert ring.lookup(settings, old)

    new = issue(path, "rotate", "integrator", "pbx-east", "--grace", "1h")
    bump(path)
    now = datetime.now(timezone.utc)
    [old_entry], [new_entry] = ring.lookup(settings, old), ring.lookup(settings, new)
    assert not old_entry.expired(now) and old_entry.expired(now + timedelta(hours=1, seconds=1))
    assert new_entry.expires_at is None

    old_id = old_entry.key_id
    result = CliRunner().invoke(keys_app, ["revoke", "integrator", "pbx-east", "--key", old_id, "--file", str(path)])
    assert result.exit_code == 0 and old_id in result.output
    bump(path)
    assert ring.lookup(settings, old) == [] and ring.lookup(settings, new)


def test_two_tenants_may_each_have_an_agent_of_the_same_id(tmp_path: Path) -> None:
    """Agents are told apart by (tenant, agent id): each contact centre numbers its own agents."""
    path = tmp_path / "keys.yaml"
    ring, settings = KeyRing(), settings_with(path)
    acme = issue(path, "add", "agent", "A1042", "--tenant", "acme")
    globex = issue(path, "add", "agent", "A1042", "--tenant", "globex")
    [acme_entry], [globex_entry] = ring.lookup(settings, acme), ring.lookup(settings, globex)
    assert (acme_entry.principal.name, acme_entry.principal.tenant) == ("A1042", "acme")
    assert (globex_entry.principal.name, globex_entry.principal.tenant) == ("A1042", "globex")

    ambiguous = CliRunner().invoke(keys_app, ["rotate", "agent", "A1042", "--file", str(path)])
    assert ambiguous.exit_code == 1 and "several tenants" in ambiguous.output and "--tenant" in ambiguous.output
    rotated = issue(path, "rotate", "agent", "A1042", "--tenant", "globex", "--grace", "0")
    bump(path)
    assert ring.lookup(settings, acme) and ring.lookup(settings, rotated)
    assert ring.lookup(settings, globex)[0].expired(datetime.now(timezone.utc) + timedelta(seconds=1))


def test_rotation_with_no_grace_refuses_the_old_key_at_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"  # JSON as well as YAML
    old = issue(path, "add", "agent", "A1042", "--tenant", "acme")
    issue(path, "rotate", "agent", "A1042", "--grace", "0")
    [entry] = KeyRing().lookup(settings_with(path), old)
    assert entry.expired(datetime.now(timezone.utc))
    assert json.loads(path.read_text())["principals"][0]["tenant"] == "acme"


def test_a_broken_file_keeps_the_last_good_keys_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.yaml"
    key = issue(path, "add", "qa", "qa-team")
    ring, settings = KeyRing(), settings_with(path)
    assert ring.lookup(settings, key)
    path.write_text("principals: [ {role: qa, name: qa-team, keys: [ {sha256: nothex} ] } ]\n")
    bump(path)
    with caplog.at_level(logging.ERROR, "callwatch.access"):
        assert ring.lookup(settings, key), "a typo must not lock everyone out"
    assert "keys file not loaded" in caplog.text and "sha256" in caplog.text

    fresh = KeyRing()  # a process that starts on the broken file admits nobody from it
    assert fresh.lookup(settings, key) == []


def test_a_missing_file_admits_nobody_and_still_counts_as_configured(tmp_path: Path) -> None:
    ring, settings = KeyRing(), settings_with(tmp_path / "nowhere.yaml")
    assert ring.lookup(settings, "anything") == [] and ring.uses_keys_file(settings)


@pytest.mark.parametrize("content, where", [
    ("principals:\n  - role: janitor\n    name: x\n", "principals.0.role"),
    ("principals:\n  - {role: agent, name: a1}\n  - {role: agent, name: a1}\n", "listed twice"),
    ("principals:\n  - {role: agent, name: a1, tenant: t}\n  - {role: agent, name: a1, tenant: t}\n", "of tenant 't' is listed twice"),
    ("principals:\n  - {role: agent, name: a1, keys: [{sha256: '" + "0" * 64 + "', expires: someday}]}\n", "expires"),
    ("principals: [\n", "not valid YAML"),
])
def test_invalid_files_are_named_with_the_place(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(KeysFileError) as err:
        load_keys_file(path)
    assert str(path) in str(err.value) and where in str(err.value)


# ---------------------------------------------------------------- teams


TEAMS_FILE = """\
version: 1
principals:
- {role: agent, name: a1, tenant: acme, team: red, keys: [{sha256: '%s'}]}
- {role: agent, name: a2, tenant: acme, keys: [{sha256: '%s'}]}
- {role: agent, name: a3, team: blue}
- {role: agent, name: a3, tenant: globex}
- {role: supervisor, name: lead-red, tenant: acme, teams: [red], keys: [{sha256: '%s'}]}
- {role: supervisor, name: chief, keys: [{sha256: '%s'}]}
""" % (digest_of("k-a1"), digest_of("k-a2"), digest_of("k-red"), digest_of("k-chief"))


def test_agents_have_a_team_and_supervisors_lead_teams(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(TEAMS_FILE)
    ring, settings = KeyRing(), settings_with(path)
    [a1], [red], [chief] = (ring.lookup(settings, k) for k in ("k-a1", "k-red", "k-chief"))
    assert a1.principal == Principal("agent", "a1", "acme", team="red")
    assert red.principal == Principal("supervisor", "lead-red", "acme", teams=("red",))
    assert chief.principal == Principal("supervisor", "chief", None)  # no teams: every agent, as before teams
    book = ring.teams(settings)
    assert book.team_of("acme", "a1") == "red" and book.team_of("acme", "a2") is None
    assert book.team_of("globex", "a1") is None  # another tenant's a1 is another agent
    # A tenant-less agent entry stands for its id in every tenant, unless the tenant lists the agent itself.
    assert book.team_of("acme", "a3") == "blue" and book.team_of("globex", "a3") is None
    assert book.agent_ids_in(["red", "blue"]) == {"a1", "a3"}
    assert "leading 'red'" in red.principal.describe()


def test_a_changed_team_needs_no_restart_and_a_broken_file_keeps_the_last_teams(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(TEAMS_FILE)
    ring, settings = KeyRing(), settings_with(path)
    assert ring.teams(settings).team_of("acme", "a2") is None
    path.write_text(TEAMS_FILE.replace("name: a2, tenant: acme,", "name: a2, tenant: acme, team: red,"))
    bump(path)
    assert ring.teams(settings).team_of("acme", "a2") == "red"
    path.write_text("principals: [\n")
    bump(path)
    assert ring.teams(settings).team_of("acme", "a2") == "red"


@pytest.mark.parametrize("content, where", [
    ("principals:\n  - {role: supervisor, name: s, team: red}\n", "`team` is an agent's"),
    ("principals:\n  - {role: qa, name: q, teams: [red]}\n", "`teams` is a supervisor's"),
    ("principals:\n  - {role: agent, name: a, teams: [red]}\n", "`teams` is a supervisor's"),
    ("principals:\n  - {role: supervisor, name: s, teams: []}\n", "principals.0.teams"),
])
def test_teams_on_the_wrong_role_are_refused_by_name(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(KeysFileError) as err:
        load_keys_file(path)
    assert where in str(err.value)


def test_the_command_sets_teams(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    agent = issue(path, "add", "agent", "a1", "--tenant", "acme", "--team", "red")
    lead = issue(path, "add", "supervisor", "lead", "--tenant", "acme", "--team", "red", "--team", "blue")
    ring, settings = KeyRing(), settings_with(path)
    assert ring.lookup(settings, agent)[0].principal.team == "red"
    assert ring.lookup(settings, lead)[0].principal.teams == ("red", "blue")
    refused = CliRunner().invoke(keys_app, ["add", "qa", "q1", "--team", "red", "--file", str(path)])
    assert refused.exit_code != 0 and "has no team" in refused.output
    out = CliRunner().invoke(keys_app, ["list", "--json", "--file", str(path)]).output
    assert {json.loads(line)["team"] for line in out.splitlines()} == {"red", "red,blue"}


def test_list_shows_ids_and_states_never_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    a = issue(path, "add", "supervisor", "wang.li", "--tenant", "acme")
    b = issue(path, "add", "integrator", "pbx-west", "--expires", "2020-01-01")
    out = CliRunner().invoke(keys_app, ["list", "--json", "--file", str(path)]).output
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["role"], r["name"], r["tenant"], r["state"]) for r in rows} == {
        ("supervisor", "wang.li", "acme", "active"), ("integrator", "pbx-west", "pbx-west", "expired")}
    assert a not in out and b not in out


@pytest.mark.slow  # `callwatch keys` in a process of its own: the CLI imports the whole service
def test_the_command_is_registered_in_callwatch(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    env = {**os.environ, "CALLWATCH_KEYS_FILE": str(path)}
    done = subprocess.run([sys.executable, "-m", "service.cli", "keys", "add", "agent", "a7"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    [key] = KEY_LINE.findall(done.stdout)
    assert KeyRing().lookup(settings_with(path), key)[0].principal.name == "a7"
    done = subprocess.run([sys.executable, "-m", "service.cli", "keys", "revoke", "agent", "a7"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 2 and "--key ID or --all" in done.stderr


# ---------------------------------------------------------------- the guard, on a real app


class _Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings


def guarded_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    runtime, ring = _Runtime(settings), KeyRing()
    app.dependency_overrides[get_runtime] = lambda: runtime
    app.dependency_overrides[get_key_ring] = lambda: ring

    @app.get("/qa")
    def qa(principal: Principal = Depends(require(("qa", "supervisor")))) -> dict[str, str | None]:
        return {"role": principal.role, "name": principal.name, "tenant": principal.tenant}

    return app


def test_guard_statuses_and_refusals_logged_without_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.yaml"
    qa_key = issue(path, "add", "qa", "qa-team")
    agent_key = issue(path, "add", "agent", "a1")
    stale = issue(path, "add", "supervisor", "old-lead", "--expires", "2020-01-01T00:00:00")
    client = TestClient(guarded_app(settings_with(path)))
    with caplog.at_level(logging.WARNING, "callwatch.access"):
        assert client.get("/qa").status_code == 401
        assert client.get("/qa", headers={"Authorization": "Bearer cw_not-a-key"}).status_code == 403
        assert client.get("/qa", headers={"Authorization": f"Bearer {agent_key}"}).status_code == 403
        assert client.get("/qa", headers={"Authorization": f"Bearer {stale}"}).status_code == 403
    ok = client.get("/qa", headers={"Authorization": f"Bearer {qa_key}"})
    assert ok.status_code == 200 and ok.json() == {"role": "qa", "name": "qa-team", "tenant": None}
    refusals = [r.getMessage() for r in caplog.records if r.name == "callwatch.access"]
    assert len(refusals) == 4 and all("GET /qa" in m and "testclient" in m for m in refusals)
    assert "agent 'a1'" in refusals[2] and "expired key" in refusals[3] and "old-lead" in refusals[3]
    assert not any(k in caplog.text for k in (agent_key, stale, "cw_not-a-key", qa_key))


def test_without_any_keys_only_this_machine_is_let_in() -> None:
    app = guarded_app(settings_with())
    assert TestClient(app).get("/qa").json()["role"] == "local"
    assert TestClient(app, client=("10.1.2.3", 50000)).get("/qa").status_code == 403
