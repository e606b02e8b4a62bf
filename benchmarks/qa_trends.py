"""QA trends benchmark: /v1/qa/trends and /v1/qa/trends.csv at 100,000 calls and 1,000 agents, on SQLite and
PostgreSQL. Target (issue 15): p95 ≤ 300 ms for every query.

Each database is filled by benchmarks/qa_trends_data.py (a year of calls in 50 teams of two tenants, with
reviews, disputes, emotion turns and prompts) through the project's migrations, then every query a user of the
trends page runs is sent through the real app (service.app.create_app, its keys file, its store) with varied
filters: a tenant's QA user over twelve weeks, one week and a year, all tenants, one team, one agent, a
supervisor of three teams, an agent's own year, and the CSV export. Wall time per request, from the request
to the last byte of the answer, after a few warm-up requests.

PostgreSQL is a throwaway cluster on loopback started the way the tests start one (tests/support/
postgres_plugin.py), or the server given with --postgres-url (a role that may create databases). Tables are
analysed after the load, as autovacuum would do within the minute.

Writes benchmarks/results/qa_trends.json and qa_trends.md.

    nice -n 19 python benchmarks/qa_trends.py [--calls 100000] [--agents 1000] [--teams 50] [--repeats 40]
        [--databases sqlite,postgresql] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
RESULTS = REPO / "benchmarks" / "results"
TARGET_P95_MS = 300.0
WARM_UP = 3

from benchmarks.hardware import cpu_model  # noqa: E402
from benchmarks.qa_trends_data import Agent, Shape, agents_of, generate  # noqa: E402


@dataclass(frozen=True)
class Request:
    who: str
    path: str
    params: dict[str, str]


@dataclass(frozen=True)
class Query:
    key: str
    label: str
    make: Callable[[random.Random], Request]


def _queries(shape: Shape, agents: list[Agent]) -> list[Query]:
    """The requests of the trends page and its CSV link, each drawn anew per repetition."""
    tenant = shape.tenants[0]
    own = [a for a in agents if a.tenant == tenant]
    teams = sorted({a.team for a in own if a.team is not None})

    def weeks(rng: random.Random, n: int) -> dict[str, str]:
        first = shape.first_monday + timedelta(weeks=rng.randrange(shape.weeks - n + 1))
        return {"date_from": first.isoformat(), "date_to": (first + timedelta(weeks=n, days=-1)).isoformat()}

    year = {"date_from": shape.first_monday.isoformat(),
            "date_to": (shape.first_monday + timedelta(weeks=shape.weeks, days=-1)).isoformat()}
    trends, csv = "/v1/qa/trends", "/v1/qa/trends.csv"
    return [
        Query("tenant_12_weeks", f"QA user, tenant {tenant}, 12 weeks (the page's default span)",
              lambda rng: Request("qa-tenant", trends, weeks(rng, 12))),
        Query("tenant_1_week", "QA user, tenant, one week", lambda rng: Request("qa-tenant", trends, weeks(rng, 1))),
        Query("tenant_year", "QA user, tenant, the whole year", lambda rng: Request("qa-tenant", trends, year)),
        Query("all_tenants_12_weeks", "QA user without a tenant (every tenant), 12 weeks",
              lambda rng: Request("qa-everyone", trends, weeks(rng, 12))),
        Query("team_12_weeks", "QA user, one team (team filter), 12 weeks",
              lambda rng: Request("qa-tenant", trends, {**weeks(rng, 12), "team": rng.choice(teams)})),
        Query("agent_12_weeks", "QA user, one agent (agent filter), 12 weeks",
              lambda rng: Request("qa-tenant", trends, {**weeks(rng, 12), "agent_id": rng.choice(own).agent_id})),
        Query("supervisor_3_teams_12_weeks", "supervisor of three teams (their teams only), 12 weeks",
              lambda rng: Request("lead-3-teams", trends, weeks(rng, 12))),
        Query("agent_own_year", "an agent, its own rows, the whole year",
              lambda rng: Request(rng.choice(own).agent_id, trends, year)),
        Query("csv_tenant_12_weeks", "CSV export, QA user, tenant, 12 weeks",
              lambda rng: Request("qa-tenant", csv, weeks(rng, 12))),
        Query("csv_team_year", "CSV export, one team, the whole year",
              lambda rng: Request("qa-tenant", csv, {**year, "team": rng.choice(teams)})),
    ]


def _principals(shape: Shape, agents: list[Agent]) -> dict[str, tuple[str, str | None, Any]]:
    tenant = shape.tenants[0]
    lead_teams = sorted({a.team for a in agents if a.tenant == tenant and a.team is not None})[:3]
    out: dict[str, tuple[str, str | None, Any]] = {
        "qa-tenant": ("qa", tenant, None), "qa-everyone": ("qa", None, None), "lead-3-teams": ("supervisor", tenant, lead_teams)}
    out.update({a.agent_id: ("agent", a.tenant, a.team) for a in agents})
    return out


def _write_keys(path: Path, principals: dict[str, tuple[str, str | None, Any]]) -> dict[str, str]:
    from service.access.keys import digest_of
    from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file

    keys, spec = {}, KeysFile()
    for name, (role, tenant, team) in principals.items():
        keys[name] = f"cw_{secrets.token_urlsafe(16)}"
        extra = {"team": team} if role == "agent" and team else {"teams": team} if team else {}
        spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant, keys=[KeySpec(sha256=digest_of(keys[name]))],
                                             **extra))
    save_keys_file(path, spec)
    return keys


class _Runtime:
    """What the trends routes use of the runtime: settings, the store, the rules. No models."""

    def __init__(self, settings: Any, store: Any):
        from rules.config import load_rules_config
        from rules.engine import RuleBook

        self.settings, self.store, self.rule_book = settings, store, RuleBook(load_rules_config())


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(q * (len(sorted_ms) - 1)))]


def measure(url: str, shape: Shape, repeats: int, work: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.app import build_state, create_app
    from service.app_state import install
    from service.persistence.call_store import CallStore
    from service.persistence.generated_qa_calls import server_version
    from service.settings import Settings

    store = CallStore(url)
    began = time.perf_counter()
    expected = generate(store, shape)
    generate_s = time.perf_counter() - began
    agents = agents_of(shape)
    settings = Settings(data_dir=work, keys_file=work / "keys.yaml")
    keys = _write_keys(work / "keys.yaml", _principals(shape, agents))
    # The state the app's start-up builds, around a runtime without models (the lifespan would load them).
    runtime: Any = _Runtime(settings, store)
    app = create_app()
    install(app, build_state(runtime))
    client = TestClient(app)
    rng = random.Random(shape.seed)
    out: dict[str, Any] = {"database": store.db.dialect, "version": server_version(store), "calls": len(expected),
                           "generate_s": round(generate_s, 1), "queries": {}}
    for query in _queries(shape, agents):
        times, cpu, rows = [], [], []
        for i in range(WARM_UP + repeats):
            req = query.make(rng)
            t, c = time.perf_counter(), time.process_time()
            answer = client.get(req.path, headers={"Authorization": f"Bearer {keys[req.who]}"}, params=req.params)
            elapsed, used = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            assert answer.status_code == 200, (query.key, req, answer.status_code, answer.text[:300])
            if i >= WARM_UP:
                times.append(elapsed)
                cpu.append(used)
                rows.append(answer.text.count("\n") - 1 if req.path.endswith(".csv")
                            else len(answer.json()["agents"]) + len(answer.json()["teams"]))
        times.sort()
        result = {"label": query.label, "p50_ms": round(statistics.median(times), 1),
                  "p95_ms": round(_percentile(times, 0.95), 1), "max_ms": round(times[-1], 1),
                  "cpu_p50_ms": round(statistics.median(cpu), 1), "requests": len(times),
                  "median_rows": int(statistics.median(rows))}
        out["queries"][query.key] = result
        print(json.dumps({"database": out["database"], "query": query.key, **result}, ensure_ascii=False), flush=True)
    client.close()
    store.close()
    return out


@contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    """A fresh database on the server at `url`, or on a throwaway loopback cluster as the tests start one."""
    from support.postgres_plugin import PostgresCluster, PostgresServer, find_bin_dir

    cluster = None
    if url is None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("no PostgreSQL binaries found (install postgresql, or pass --postgres-url)")
        cluster = PostgresCluster(bin_dir).init()
        cluster.start()
    server = PostgresServer(url or cluster.url(), cluster)  # type: ignore[union-attr]
    database = server.create_database()
    try:
        yield database
    finally:
        server.drop_database(database)
        server.close()
        if cluster is not None:
            cluster.destroy()


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "qa_trends.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    shape = results["shape"]
    runs = results["runs"]
    lines = [f"# QA trends benchmark ({results['machine']})", "",
             f"{shape['calls']:,} generated calls, {shape['agents']:,} agents in {shape['teams']} teams of two tenants, "
             f"{shape['weeks']} weeks; {shape['review_share']:.0%} of the calls reviewed. Wall time per request through "
             f"the real app, {results['repeats']} requests per query with varied filters after {WARM_UP} warm-up ones. "
             f"Target: p95 ≤ {TARGET_P95_MS:.0f} ms. {results['conditions']}", "",
             f"`{results['command']}`", "",
             "| query | rows (median) | " + " | ".join(f"{r['database']} p50 ms | {r['database']} p95 ms | {r['database']} max ms | "
                                                 f"{r['database']} CPU p50 ms" for r in runs) + " |",
             "|---|---|" + "---|---|---|---|" * len(runs)]
    for key, first in runs[0]["queries"].items():
        cells = []
        for r in runs:
            q = r["queries"][key]
            p95 = f"**{q['p95_ms']}**" if q["p95_ms"] <= TARGET_P95_MS else f"**{q['p95_ms']} ✗**"
            cells.append(f"{q['p50_ms']} | {p95} | {q['max_ms']} | {q['cpu_p50_ms']}")
        lines.append(f"| {first['label']} | {first['median_rows']:,} | " + " | ".join(cells) + " |")
    lines += ["", "CPU: this process's CPU time per request (the app and, for SQLite, the database; PostgreSQL's server "
                  "process is not counted): the work, apart from waiting for a CPU on a busy machine.",
              "", "Generating the data: " + ", ".join(f"{r['database']} {r['generate_s']} s" for r in runs) + "."]
    (RESULTS / "qa_trends.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=40, help="timed requests per query and database")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", help="a PostgreSQL server (a role that may create databases); default: a "
                                               "throwaway cluster on loopback")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    args = parser.parse_args()
    shape = Shape(calls=args.calls, agents=args.agents, teams=args.teams)
    machine = f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()}"
    runs = []
    for database in args.databases.split(","):
        work = Path(tempfile.mkdtemp(prefix="cw-trends-bench-"))
        try:
            if database == "sqlite":
                runs.append(measure(f"sqlite:///{work / 'callwatch.db'}", shape, args.repeats, work))
            else:
                with _postgres(args.postgres_url) as url:
                    runs.append(measure(url, shape, args.repeats, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    machine += "; " + "; ".join(r["version"] for r in runs)
    results = {"machine": machine, "date": date.today().isoformat(), "repeats": args.repeats,
               "command": "nice -n 19 python benchmarks/qa_trends.py " + " ".join(sys.argv[1:]),
               "conditions": "Run under `nice -n 19` on a machine shared with other work (load average "
                             f"{os.getloadavg()[0]:.1f} at the end).",
               "shape": {"calls": shape.calls, "agents": shape.agents, "teams": shape.teams, "weeks": shape.weeks,
                         "review_share": shape.review_share}, "runs": runs}
    if not args.no_write:
        write(results)


if __name__ == "__main__":
    main()
