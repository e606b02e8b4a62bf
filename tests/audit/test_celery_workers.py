"""Bulk audits on Celery (CALLWATCH_AUDIT_ENGINE=celery) with a real redis-server on loopback, a shared
SQLite database and two real `callwatch audit-worker` processes, one of them killed (SIGKILL) while it
audits a file: the other audits that file, every job ends done, each call is stored once and no file is
audited to completion twice; the workers find the broker by CALLWATCH_REDIS_URL alone. First, the claims that
make it so, on their own (real Redis; real SQLite and real PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.live_server import free_port
from sqlalchemy import func, insert, select

from service.audit.jobs.claims import CLAIMED_SET, ClaimOutcome, JobClaims, lease_key
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore
from service.persistence.tables import audit_batches, audit_calls, audit_jobs, calls

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server",) if Path(p).exists()), None)
# Short real clips, 4 to 12 s (each audit takes about a second).
CLIPS = ("aishell1_S0764_W0121.wav", "aishell1_S0764_W0122.wav", "paddlespeech_zh.wav", "fireredtts2_zh_S2.wav",
         "fireredtts2_zh_S1.wav")
LEASE_S = 2  # a dead worker's job is requeued by the other about 2-3 s after the kill ...
VISIBILITY_S = 8  # ... well before the broker hands the dead worker's own task out again




@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, in a temp dir, stopped at the end."""
    import redis

    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI installs it: apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    with (folder / "redis.log").open("wb") as log:
        proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(folder / 'redis.log').read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the claims ------------------------------------------------------------------------


@pytest.fixture()
def one_job(database_url: str, tmp_path: Path, redis_url: str) -> Iterator[dict[str, Any]]:
    """One queued job, on SQLite and on PostgreSQL."""
    import redis

    store = CallStore(database_url)
    now = datetime.now(timezone.utc)
    job_id = f"job-{tmp_path.name}"
    with store.db.engine.begin() as conn:
        conn.execute(insert(audit_batches).values(batch_id="b1", created_at=now, source="path", rules_name="default",
                                                  options="{}"))
        conn.execute(insert(audit_jobs).values(job_id=job_id, batch_id="b1", file_name="a.wav", source_path="/x/a.wav",
                                               state="queued", progress=0.0, created_at=now))
    client = redis.Redis.from_url(redis_url)
    client.delete(lease_key(job_id), CLAIMED_SET)  # the Redis is shared by the module's tests
    yield {"store": store, "engine": store.db.engine, "redis": client, "job_id": job_id}
    client.close()
    store.close()


def _state(engine: Any, job_id: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(audit_jobs.c.state).where(audit_jobs.c.job_id == job_id)).scalar_one()


def test_one_claimant_at_a_time_and_a_finished_job_is_a_no_op(one_job):
    store, engine, client, job_id = one_job["store"], one_job["engine"], one_job["redis"], one_job["job_id"]
    workers = [JobClaims(store, client, lease_s=30, owner=f"w{i}/1") for i in range(8)]
    outcomes: list[ClaimOutcome] = []
    barrier = threading.Barrier(len(workers))

    def race(claims: JobClaims) -> None:
        barrier.wait()
        outcomes.append(claims.claim(job_id)[0])

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {ClaimOutcome.CLAIMED: 1, ClaimOutcome.BUSY: 7}
    owner = workers[0].owner_of(job_id)
    winner = next(w for w in workers if w.owner == owner)
    assert _state(engine, job_id) == "running"
    assert winner.requeue_lapsed() == []  # its lease is alive: nothing to take over
    claim = winner.claim(job_id)  # a second delivery to the same worker while it runs the job
    assert claim == (ClaimOutcome.BUSY, None)


def test_a_lapsed_claim_is_requeued_and_the_old_claimant_is_fenced_out(one_job):
    store, engine, client, job_id = one_job["store"], one_job["engine"], one_job["redis"], one_job["job_id"]
    dead = JobClaims(store, client, lease_s=0.3, owner="dead/1")
    alive = JobClaims(store, client, lease_s=30, owner="alive/2")
    outcome, old = dead.claim(job_id)
    assert outcome is ClaimOutcome.CLAIMED and old is not None
    assert alive.claim(job_id)[0] is ClaimOutcome.BUSY
    time.sleep(0.5)  # the dead worker renews nothing: its lease lapses
    assert client.get(lease_key(job_id)) is None
    assert alive.requeue_lapsed() == [job_id] and _state(engine, job_id) == "queued"
    assert alive.requeue_lapsed() == []  # once
    outcome, new = alive.claim(job_id)
    assert outcome is ClaimOutcome.CLAIMED and new is not None and alive.owner_of(job_id) == "alive/2"
    # The old claimant wakes up: its progress and its result are refused, the new claim stands.
    assert not dead.renew(old) and not dead.progress(old, 0.5)
    assert not dead.finish(old, state="done", progress=1.0)
    assert _state(engine, job_id) == "running" and alive.owner_of(job_id) == "alive/2"
    assert alive.renew(new) and alive.progress(new, 0.5)
    assert alive.finish(new, state="done", progress=1.0, call_id="rec-a")
    assert _state(engine, job_id) == "done" and client.get(lease_key(job_id)) is None
    assert alive.claim(job_id) == (ClaimOutcome.FINISHED, None)  # a redelivered task has nothing to do
    assert dead.claim(job_id) == (ClaimOutcome.FINISHED, None)


def test_a_claim_step_whose_commit_lost_its_answer_is_not_mistaken_for_another_workers(one_job):
    """Every database step runs twice, as when its commit reached the server and then the connection broke so
    the store retried it (the real outage is below): the retry sees its own first try, not a rival."""
    store, engine, client, job_id = one_job["store"], one_job["engine"], one_job["redis"], one_job["job_id"]
    store.db.retrying = lambda operation, **_: (operation(0), operation(1))[1]  # type: ignore[method-assign]
    claims = JobClaims(store, client, lease_s=0.3, owner="w/1")
    outcome, first = claims.claim(job_id)
    assert outcome is ClaimOutcome.CLAIMED and first is not None and _state(engine, job_id) == "running"
    assert claims.progress(first, 0.5)
    time.sleep(0.5)  # the lease lapses
    assert claims.requeue_lapsed() == [job_id] and _state(engine, job_id) == "queued"
    outcome, second = claims.claim(job_id)
    assert outcome is ClaimOutcome.CLAIMED and second is not None
    assert not claims.finish(first, state="failed")  # the lapsed claim is still fenced out
    assert claims.finish(second, state="done", progress=1.0) and _state(engine, job_id) == "done"


def _audited(call_id: str) -> dict[str, Any]:
    """What the audit of a short recording stores (CallList.store_audited's keywords)."""
    return dict(call_id=call_id, agent_id="A1", direction="inbound", caller_number=None,
                started_at="2026-11-23T09:30:00", audio_format={"encoding": "pcm_s16le"}, duration=4.0,
                events=[{"event": "answered", "t": 0.0, "by": None, "target": None}],
                utts=[{"utterance_id": "agent-0", "speaker": "agent", "start": 0.2, "end": 1.5, "text": "您好，请问有什么可以帮您"}],
                prompts=[], report={"score": 100.0, "findings": []}, file_name=f"{call_id}.wav",
                source_path=f"/x/{call_id}.wav", speaker_attribution="channels", audit={"rules": "default"})


def test_audit_writes_and_claims_ride_out_a_database_restart(postgres_cluster, redis_url):
    """A real PostgreSQL stopped for two seconds under an audit's result write, a re-audit and a worker's
    claim, progress and finish: each waits for the database and gets through, nothing is marked failed."""
    import redis
    from support.postgres_plugin import PostgresServer

    from service.audit.running.reaudit import reaudit_calls

    server = PostgresServer(postgres_cluster.url(), postgres_cluster)
    url = server.create_database()
    store = CallStore(url, retry_s=30)
    client = redis.Redis.from_url(redis_url)
    try:
        call_list = CallList(store.db)
        call_list.store_audited(**_audited("before"))  # audited before the outage, re-audited during it
        now = datetime.now(timezone.utc)
        with store.db.engine.begin() as conn:
            conn.execute(insert(audit_batches).values(batch_id="b1", created_at=now, source="path",
                                                      rules_name="default", options="{}"))
            conn.execute(insert(audit_jobs), [dict(job_id=j, batch_id="b1", file_name=f"{j}.wav",
                                                   source_path=f"/x/{j}.wav", state="queued", progress=0.0,
                                                   created_at=now) for j in ("held", "next")])
        client.delete(CLAIMED_SET, lease_key("held"), lease_key("next"))
        claims = JobClaims(store, client, lease_s=30, owner="w/1")
        _, held = claims.claim("held")
        assert held is not None

        results: dict[str, Any] = {}

        def attempt(name: str, fn: Any, *args: Any, **kwargs: Any) -> threading.Thread:
            def run() -> None:
                try:
                    results[name] = fn(*args, **kwargs)
                except BaseException as err:  # noqa: BLE001 - reported below
                    results[name] = err
            thread = threading.Thread(target=run)
            thread.start()
            return thread

        postgres_cluster.stop()
        try:
            down_at = time.monotonic()
            threads = [
                attempt("store_audited", call_list.store_audited, **_audited("during")),
                attempt("reaudit", reaudit_calls, store, "{}", "after-outage.yaml", call_ids=["before"], apply=True),
                attempt("progress", claims.progress, held, 0.5),
                attempt("claim", claims.claim, "next"),
            ]
            time.sleep(2.0)
            assert not results, f"finished (or failed) while the database was down: {results}"
        finally:
            postgres_cluster.start()
        for thread in threads:
            thread.join(30)
        assert not [r for r in results.values() if isinstance(r, BaseException)], results
        assert time.monotonic() - down_at < 15
        assert results["progress"] is True and results["claim"][0] is ClaimOutcome.CLAIMED
        assert claims.finish(held, state="done", progress=1.0, call_id="during")
        assert results["reaudit"].applied and results["reaudit"].calls == 1

        assert call_list.is_listed("during") and store.get_call("during").status == "completed"
        assert [u["text"] for u in store.list_utterances("during")] == ["您好，请问有什么可以帮您"]
        with store.db.engine.connect() as conn:
            audit_rules = json.loads(conn.execute(select(audit_calls.c.audit)
                                                  .where(audit_calls.c.call_id == "before")).scalar_one())["rules"]
            states = dict(conn.execute(select(audit_jobs.c.job_id, audit_jobs.c.state)).all())
        assert audit_rules == "after-outage.yaml"
        assert states == {"held": "done", "next": "running"}
    finally:
        client.close()
        store.close()
        server.drop_database(url)
        server.close()


def test_the_broker_is_the_redis_url_unless_set(monkeypatch):
    from service.audit.jobs.celery_app import celery_config
    from service.settings import Settings

    for var in ("CALLWATCH_AUDIT_BROKER_URL", "CALLWATCH_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    assert Settings().audit_broker_url == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("CALLWATCH_REDIS_URL", "redis://redis.internal:6379/2")
    assert celery_config(Settings())["broker_url"] == "redis://redis.internal:6379/2"
    monkeypatch.setenv("CALLWATCH_AUDIT_BROKER_URL", "redis://queue.internal:6379/0")
    assert celery_config(Settings())["broker_url"] == "redis://queue.internal:6379/0"


# --- two real workers, one killed mid-file ----------------------------------------------------


class Worker:
    def __init__(self, name: str, env: dict[str, str], log: Path):
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "audit-worker", "--concurrency", "1", "--name", name],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def owner(self) -> str:
        return f"{self.name}/{self.proc.pid}"

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, deadline: float) -> None:
        while f"{self.name} ready." not in self.text():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} not ready:\n{self.text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _jobs(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_jobs)).mappings()]


def _lines(text: str, job_id: str, what: str) -> list[str]:
    return re.findall(rf"audit job {job_id} {what}[^\n]*", text)


def test_two_workers_one_killed_mid_file(redis_url, shared_audio, tmp_path):
    import redis

    from service.audit.cli import SubmitOnly
    from service.audit.jobs.queue import AuditQueue
    from service.settings import Settings

    recordings = tmp_path / "week"
    recordings.mkdir()
    for name in CLIPS:
        shutil.copy(shared_audio / name, recordings / name)
    data = tmp_path / "data"
    database_url = f"sqlite:///{data / 'callwatch.db'}"
    env = {**{k: v for k, v in os.environ.items() if k != "CALLWATCH_AUDIT_BROKER_URL"}, "CALLWATCH_CACHE_DIR": os.environ["CALLWATCH_CACHE_DIR"], "CALLWATCH_DATA_DIR": str(data),
           "CALLWATCH_DATABASE_URL": database_url, "CALLWATCH_AUDIT_ENGINE": "celery",
           # One Redis URL for all: the broker defaults to it.
           "CALLWATCH_REDIS_URL": redis_url, "CALLWATCH_AUDIT_LEASE_S": str(LEASE_S),
           "CALLWATCH_AUDIT_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
           # Two workers on CI's two cores: one recogniser thread each.
           "CALLWATCH_ASR_THREADS": "1"}
    store = CallStore(database_url)  # the schema, as after a deployment's migration
    engine = store.db.engine
    client = redis.Redis.from_url(redis_url)
    a = Worker("a@test", env, tmp_path / "a.log")
    b = Worker("b@test", env, tmp_path / "b.log")
    cli = None
    try:
        deadline = time.monotonic() + 150
        a.wait_ready(deadline)
        b.wait_ready(deadline)
        out = tmp_path / "reports"
        cli = subprocess.Popen([sys.executable, "-m", "service.cli", "audit", str(recordings), "--out", str(out),
                                "--format", "json", "--quiet"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

        # Catch worker A with a file in hand: its lease on a job the database shows running.
        victim = None
        deadline = time.monotonic() + 90
        while victim is None:
            assert time.monotonic() < deadline, f"worker A never ran a job:\n{a.text()[-3000:]}"
            running = {j["job_id"] for j in _jobs(engine) if j["state"] == "running"}
            for job_id in running:
                raw = client.get(lease_key(job_id))
                if raw is not None and raw.decode().startswith(a.owner + "/"):
                    victim = job_id
            if victim is None:
                time.sleep(0.02)
        # The lease is taken a moment before the worker logs the claim (it reads the job first): kill it once
        # it has said so, still with the file in hand (an audit takes seconds).
        while not _lines(a.text(), victim, f"claimed by {re.escape(a.owner)}"):
            assert time.monotonic() < deadline + 10, f"worker A never logged its claim:\n{a.text()[-3000:]}"
            time.sleep(0.01)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        killed_at = datetime.now(timezone.utc)
        assert next(j for j in _jobs(engine) if j["job_id"] == victim)["state"] == "running"  # mid-file

        output, _ = cli.communicate(timeout=120)
        assert cli.returncode == 0, output
        assert f"{len(CLIPS)} recording(s), 0 failed" in output

        # The broker hands A's unacknowledged task out again (visibility timeout): B finds the job done
        # and acknowledges it; nothing is left in the broker.
        deadline = time.monotonic() + VISIBILITY_S + 20
        while (client.hlen("unacked") or client.llen("callwatch-audit")
               or not _lines(b.text(), victim, "finished, nothing to do")):
            assert time.monotonic() < deadline, f"tasks left in the broker:\n{b.text()[-3000:]}"
            time.sleep(0.2)
        b.stop()
        assert b.proc.returncode == 0, b.text()[-3000:]

        jobs = _jobs(engine)
        assert len(jobs) == len(CLIPS) and {j["state"] for j in jobs} == {"done"}, jobs
        call_ids = sorted(j["call_id"] for j in jobs)
        assert len(set(call_ids)) == len(CLIPS)
        with engine.connect() as conn:
            stored = dict(conn.execute(select(calls.c.call_id, func.count()).group_by(calls.c.call_id)).all())
            indexed = dict(conn.execute(select(audit_calls.c.call_id, func.count())
                                        .group_by(audit_calls.c.call_id)).all())
            audits = {r.call_id: json.loads(r.audit)
                      for r in conn.execute(select(audit_calls.c.call_id, audit_calls.c.audit))}
        assert stored == {c: 1 for c in call_ids} and indexed == stored  # each call stored once, nothing else

        # Each file audited to completion exactly once, by the worker the database names.
        logs = a.text() + b.text()
        by_job = {audits[j["call_id"]]["job_id"]: audits[j["call_id"]]["worker"] for j in jobs}
        assert set(by_job) == {j["job_id"] for j in jobs}
        for j in jobs:
            assert len(_lines(logs, j["job_id"], "done by")) == 1, (j["file_name"], _lines(logs, j["job_id"], ""))
        # The killed worker's file: claimed by A, never finished by it, audited again by B after the kill.
        victim_job = next(j for j in jobs if j["job_id"] == victim)
        assert _lines(a.text(), victim, f"claimed by {re.escape(a.owner)}")
        assert not _lines(a.text(), victim, "done by")
        assert by_job[victim] == b.owner and _lines(b.text(), victim, f"done by {re.escape(b.owner)}")
        assert victim_job["started_at"].replace(tzinfo=timezone.utc) > killed_at  # B's claim came after the kill

        # The reports: written by the command from the shared database, one per recording.
        for name in CLIPS:
            report = json.loads((out / f"{Path(name).stem}.json").read_text(encoding="utf-8"))
            assert report["call_id"] in call_ids and report["utterances"] and report["score"] is not None, name
        # What GET /v1/audit/batches/{id} answers (AuditQueue.batch) comes from the database.
        host = SubmitOnly.load(Settings(data_dir=data, database_url=database_url, audit_engine="local"))
        try:
            batch = AuditQueue(host).batch(jobs[0]["batch_id"])
        finally:
            host.close()
        assert batch is not None and batch.finished and batch.progress == 1.0
        assert batch.counts["done"] == len(CLIPS)
    finally:
        for proc in [w.proc for w in (a, b)] + ([cli] if cli is not None else []):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        client.close()
        store.close()
