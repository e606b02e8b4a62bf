"""Two tenants on one real server (uvicorn on loopback, a real keys file, a real SQLite store): what one
tenant's QA user does never reaches the other's calls.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
from keyed_server import Served, close_private, private_runtime

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
        with Served(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=60) as http:
            yield {"keys": keys, "runtime": rt, "served": served, "http": http, "tmp": tmp}
    finally:
        close_private(rt)


def auth(env: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['keys'][name]}"}


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
