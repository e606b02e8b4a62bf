"""QA audit benchmark: batch throughput on the real models, and the call-list query at 100,000 calls.

  throughput = seconds of audio audited per second of wall time, for a batch of stereo 8 kHz calls (the
               three two-party test calls of ../shared/audio/calls plus the bundled sample, copied under
               new names so each copy is recognised again), through `service.audit.cli.run_batch` with
               JSON reports: decode, VAD, recognition, rules, storage and report files all included.
  peak memory = the process's peak resident set (models included), from getrusage.
  call list   = p50/p95 of `service.persistence.call_list.CallList.page` (page of 50 + total count) over a fresh SQLite
               database of generated calls (`service.audit.synthetic`), for search + filter queries.

Writes benchmarks/results/audit.json and audit.md.

    python benchmarks/audit.py [--copies 4] [--calls 100000] [--skip-throughput] [--skip-query]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
RESULTS = REPO / "benchmarks" / "results"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sources() -> list[Path]:
    return sorted((SHARED / "calls").glob("*.wav")) + [REPO / "samples" / "demo_call.wav"]


def throughput(copies: int, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from service.audit.cli import run_batch
    from service.runtime import Runtime
    from service.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="cw-audit-bench-"))
    runtime = Runtime.load(Settings(data_dir=work / "data"))
    out: list[dict[str, Any]] = []
    try:
        # Warm the recogniser once so the first configuration does not pay for it.
        asyncio.run(run_batch(runtime, [sources()[0]], out_dir=work / "warm", formats=["json"], show_progress=False))
        for cfg in configs:
            folder = work / cfg["name"]
            folder.mkdir()
            for k in range(copies):
                for src in sources():
                    shutil.copy(src, folder / f"{cfg['name']}_{k}_{src.name}")
            stats = runtime.scheduler.stats
            busy0 = stats.busy_seconds
            began = time.perf_counter()
            summary = asyncio.run(run_batch(runtime, [folder], out_dir=work / f"out-{cfg['name']}", formats=["json"],
                                            beam_size=cfg.get("beam_size"), workers=cfg.get("workers"), show_progress=False))
            wall = time.perf_counter() - began
            row = {**cfg, "files": summary["files"], "failed": summary["failed"], "audio_s": round(summary["audio_seconds"], 1),
                   "wall_s": round(wall, 1), "x_realtime": round(summary["audio_seconds"] / wall, 2),
                   "recogniser_busy": round((stats.busy_seconds - busy0) / wall, 2), "peak_rss_mb": round(_peak_rss_mb())}
            print(json.dumps(row, ensure_ascii=False), flush=True)
            out.append(row)
    finally:
        runtime.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


def query_benchmark(n: int, repeats: int = 30) -> dict[str, Any]:
    from service.audit.synthetic import generate_calls
    from service.audit.web.models import CallQuery
    from service.persistence.call_list import CallList
    from service.persistence.call_store import CallStore

    work = Path(tempfile.mkdtemp(prefix="cw-list-bench-"))
    try:
        store = CallStore(f"sqlite:///{work / 'calls.db'}")
        began = time.perf_counter()
        generate_calls(store, n)
        call_list = CallList(store.db)
        build_s = time.perf_counter() - began
        db_mb = sum(p.stat().st_size for p in work.iterdir()) / 1e6
        rng = random.Random(11)
        words = ["投诉", "退款", "快递", "账单", "改签", "您好", "太贵", "三次电话", "不满意", "重新发送"]
        rules = ["listen.dead_air", "opening.greeting", "complaint.empathy_first", "closing.goodbye", "speech.rate"]

        def search_filter() -> CallQuery:
            kind = rng.randrange(5)
            q = rng.choice(words)
            if kind == 0:
                return CallQuery(q=q, agent_id=f"A{1000 + rng.randrange(300)}")
            if kind == 1:
                day = 1 + rng.randrange(20)
                return CallQuery(q=q, date_from=f"2026-09-{day:02d}", date_to=f"2026-09-{day + 7:02d}", score_max=90)
            if kind == 2:
                return CallQuery(q=q, rule=rng.choice(rules), sort="score", order="asc")
            if kind == 3:
                return CallQuery(q=q, mood=rng.choice(["angry", "upset"]), sort="worst_valence", order="asc")
            return CallQuery(q=q, duration_min=20, duration_max=60, score_min=70, sort="duration")

        def filter_only() -> CallQuery:
            return rng.choice([
                CallQuery(agent_id=f"A{1000 + rng.randrange(300)}"),
                CallQuery(rule=rng.choice(rules), sort="score"),
                CallQuery(mood="angry", date_from="2026-10-01", date_to="2026-10-15"),
                CallQuery(score_max=80, sort="started_at", offset=rng.randrange(0, 2000, 50)),
            ])

        def measure(make: Any) -> dict[str, float]:
            for _ in range(3):
                call_list.page(make())  # warm the page cache
            times = []
            for _ in range(repeats):
                q = make()
                t = time.perf_counter()
                call_list.page(q)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                    "max_ms": round(times[-1], 1), "queries": len(times)}

        result = {
            "calls": n, "build_s": round(build_s, 1), "db_mb": round(db_mb),
            "search_plus_filter": measure(search_filter),
            "filter_only": measure(filter_only),
            "search_only_common_word": measure(lambda: CallQuery(q="您好")),
        }
        store.close()
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [f"# Audit benchmark ({results['machine']})", ""]
    if results.get("throughput"):
        lines += ["Batch throughput, stereo 8 kHz calls, real models, JSON reports written (`python benchmarks/audit.py`).",
                  "Target: ≥ 15× real time.", "",
                  "| configuration | files | audio s | wall s | × real time | recogniser busy (100% = one worker) | peak RSS MB |", "|---|---|---|---|---|---|---|"]
        for r in results["throughput"]:
            lines.append(f"| {r['label']} | {r['files']} | {r['audio_s']} | {r['wall_s']} | **{r['x_realtime']}** | "
                         f"{r['recogniser_busy']:.0%} | {r['peak_rss_mb']} |")
        lines.append("")
    if results.get("call_list"):
        q = results["call_list"]
        lines += [f"Call list at {q['calls']:,} generated calls (SQLite FTS5, bigram index; {q['db_mb']} MB database, "
                  f"built in {q['build_s']} s). Page of 50 plus the total count. Target: search + filter p95 ≤ 200 ms.", "",
                  "| query | p50 ms | p95 ms | max ms | queries |", "|---|---|---|---|---|"]
        for key, label in (("search_plus_filter", "search + filter"), ("filter_only", "filters only"),
                           ("search_only_common_word", "search alone, a word in a third of all calls")):
            m = q[key]
            lines.append(f"| {label} | {m['p50_ms']} | **{m['p95_ms']}** | {m['max_ms']} | {m['queries']} |")
    (RESULTS / "audit.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of each test call in the batch")
    parser.add_argument("--calls", type=int, default=100_000, help="generated calls for the call-list query")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    args = parser.parse_args()
    from benchmarks.hardware import describe

    results: dict[str, Any] = {"machine": describe()}
    previous = RESULTS / "audit.json"
    if previous.is_file():
        results.update({k: v for k, v in json.loads(previous.read_text()).items() if k in ("throughput", "call_list")})
    if not args.skip_throughput:
        results["throughput"] = throughput(args.copies, [
            {"name": "default", "label": "default (beam 5, cores + 1 in flight)"},
            {"name": "beam1", "label": "beam 1 for audits", "beam_size": 1},
            {"name": "serial", "label": "beam 5, one file at a time", "workers": 1},
        ])
    if not args.skip_query:
        results["call_list"] = query_benchmark(args.calls)
    write(results)


if __name__ == "__main__":
    main()
