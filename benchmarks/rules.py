"""Rules benchmark: precision / recall per rule on the labelled timelines, and live latency.

    python benchmarks/rules.py [--timelines DIR] [--out DIR] [--minutes 30] [--verbose]

Each labelled timeline (tests/data/timelines/*.json) carries ``expected``: the findings
a QA reviewer wrote down by hand, each a rule id with an approximate time (or none for
call-level judgements). A finding of the engine matches an expected one of the same
rule when their times are within the tolerance (or the expected one has no time).

Latency: a 30-minute call is fed to a live engine item by item, with a clock tick every
0.5 s, and each evaluation step is timed.

Writes benchmarks/results/rules.json and benchmarks/results/rules.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rules.catalog import RULE_IDS  # noqa: E402
from rules.config import RulesConfig, load_rules_config  # noqa: E402
from rules.engine import RuleBook, RulesEngine, audit_timeline, replay_items  # noqa: E402
from rules.timeline import CallEvent, CallTimeline, EmotionSample, Utterance, parse_timeline  # noqa: E402

TOLERANCE_S = 15.0
TARGET_PRECISION = 0.95
TARGET_RECALL = 0.90
TARGET_RULE_MIN = 0.8
TARGET_P99_MS = 5.0


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_positives: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def match_call(expected: list[dict], found: list[tuple[str, float]]) -> tuple[list[tuple[str, float | None]], list[tuple[str, float]]]:
    """Greedy one-to-one matching per rule; returns (missed expected, unmatched found)."""
    missed: list[tuple[str, float | None]] = []
    remaining = list(found)
    # Timed expectations first, so an untimed one cannot steal their match.
    for exp in sorted(expected, key=lambda e: e.get("t") is None):
        rule, t = exp["rule_id"], exp.get("t")
        candidates = [(i, f) for i, f in enumerate(remaining) if f[0] == rule and (t is None or abs(f[1] - t) <= TOLERANCE_S)]
        if not candidates:
            missed.append((rule, t))
            continue
        i, _ = min(candidates, key=lambda c: 0 if t is None else abs(c[1][1] - t))
        remaining.pop(i)
    return missed, remaining


_configs: dict[str, RuleBook] = {}


def rulebook_for(timeline_dir: Path, rules_file: str | None) -> RuleBook:
    key = rules_file or ""
    if key not in _configs:
        _configs[key] = RuleBook(load_rules_config(timeline_dir / rules_file if rules_file else None))
    return _configs[key]


def evaluate(timeline_dir: Path, verbose: bool) -> tuple[dict[str, Tally], Tally, int]:
    per_rule = {rid: Tally() for rid in RULE_IDS}
    files = sorted(timeline_dir.glob("*.json"))
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        expected = data.get("expected", [])
        for e in expected:
            if e["rule_id"] not in per_rule:
                raise SystemExit(f"{path.name}: unknown rule id in expected: {e['rule_id']}")
        timeline = parse_timeline(data, path.name)
        report = audit_timeline(timeline, rulebook_for(timeline_dir, data.get("rules_file")))
        found = [(f.rule_id, f.t) for f in report.findings]
        missed, extra = match_call(expected, found)
        matched_counts: dict[str, int] = defaultdict(int)
        for e in expected:
            matched_counts[e["rule_id"]] += 1
        for rule, _ in missed:
            matched_counts[rule] -= 1
        for rule, n in matched_counts.items():
            per_rule[rule].tp += n
        for rule, t in missed:
            per_rule[rule].fn += 1
            per_rule[rule].misses.append(f"{path.stem}@{t}")
        for rule, t in extra:
            per_rule[rule].fp += 1
            per_rule[rule].false_positives.append(f"{path.stem}@{t}")
        if verbose and (missed or extra):
            print(f"{path.stem}: missed {missed} extra {extra}", file=sys.stderr)
    overall = Tally(
        tp=sum(t.tp for t in per_rule.values()),
        fp=sum(t.fp for t in per_rule.values()),
        fn=sum(t.fn for t in per_rule.values()),
    )
    return per_rule, overall, len(files)


# --- latency ------------------------------------------------------------------------

AGENT_LINES = [
    "好的，我这边帮您查询一下，请您稍等。",
    "嗯，明白，您说的情况我已经记录下来了。",
    "请问您的手机号码是多少？",
    "好的，这个问题我们会在二十四小时内给您回复。",
    "非常理解您的心情，给您添麻烦了。",
    "您看这样处理可以吗？",
]
CUSTOMER_LINES = [
    "我想问一下我的订单什么时候能到。",
    "对，就是上周买的那个，到现在还没发货。",
    "嗯，好的，那我再等等。",
    "你们这个服务也太慢了吧，我都打了三次电话了。",
    "我的号码是一三八零零零零一一一一。",
    "行，那你们尽快处理一下。",
]


def long_call(minutes: float, seed: int = 7) -> CallTimeline:
    """A synthetic call of the given length: alternating turns, a hold, emotion per customer turn."""
    rng = random.Random(seed)
    end_t = minutes * 60
    events = [CallEvent(type="ringing", t=0.0), CallEvent(type="answered", t=6.0)]
    utterances: list[Utterance] = [Utterance(speaker="agent", start=6.5, end=10.0, text="您好，示例公司，请问有什么可以帮您？")]
    emotion: list[EmotionSample] = []
    t = 10.6
    speaker = "customer"
    held = False
    while t < end_t - 20:
        if not held and t > end_t / 2:
            events.append(CallEvent(type="hold", t=t))
            events.append(CallEvent(type="resume", t=t + 25))
            t += 25.5
            held = True
        text = rng.choice(CUSTOMER_LINES if speaker == "customer" else AGENT_LINES)
        dur = len(text) / 4.2
        utterances.append(Utterance(speaker=speaker, start=round(t, 2), end=round(t + dur, 2), text=text))
        if speaker == "customer":
            emotion.append(EmotionSample(t=round(t + dur, 2), valence=round(rng.uniform(-0.7, 0.3), 2)))
        t += dur + rng.uniform(0.3, 2.5)
        speaker = "agent" if speaker == "customer" else "customer"
    utterances.append(Utterance(speaker="agent", start=round(t, 2), end=round(t + 4, 2), text="感谢您的来电，再见。"))
    events.append(CallEvent(type="hangup", t=round(t + 6, 2), by="customer"))
    return CallTimeline(
        call_id="latency-30min",
        direction="inbound",
        started_at="2024-05-13T10:00:00",
        events=events,
        utterances=utterances,
        emotion=emotion,
    )


def measure_latency(config: RulesConfig, minutes: float) -> dict:
    timeline = long_call(minutes)
    book = RuleBook(config)
    engine = RulesEngine(book, timeline.header())
    steps_ns: list[int] = []
    tick = 0.5
    next_tick = tick
    for t, _, _, item in replay_items(timeline):
        while next_tick <= t:
            start = time.perf_counter_ns()
            engine.advance(next_tick)
            steps_ns.append(time.perf_counter_ns() - start)
            next_tick += tick
        start = time.perf_counter_ns()
        engine.feed(item)
        steps_ns.append(time.perf_counter_ns() - start)
    start = time.perf_counter_ns()
    report = engine.finish()
    finish_ms = (time.perf_counter_ns() - start) / 1e6
    ms = sorted(x / 1e6 for x in steps_ns)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))], 4)

    return {
        "call_minutes": minutes,
        "steps": len(ms),
        "utterances": len(timeline.utterances),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(ms[-1], 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "finish_ms": round(finish_ms, 3),
        "findings": len(report.findings),
        "target_p99_ms": TARGET_P99_MS,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


# --- output -------------------------------------------------------------------------

def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def write_results(out_dir: Path, per_rule: dict[str, Tally], overall: Tally, n_files: int, latency: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    rules_out = {
        rid: {
            "tp": t.tp,
            "fp": t.fp,
            "fn": t.fn,
            "precision": t.precision,
            "recall": t.recall,
            "false_positives": t.false_positives,
            "misses": t.misses,
        }
        for rid, t in per_rule.items()
    }
    worst = [
        v for t in per_rule.values() for v in (t.precision, t.recall) if v is not None
    ]
    result = {
        "timelines": n_files,
        "tolerance_s": TOLERANCE_S,
        "overall": {"tp": overall.tp, "fp": overall.fp, "fn": overall.fn, "precision": overall.precision, "recall": overall.recall},
        "targets": {"precision": TARGET_PRECISION, "recall": TARGET_RECALL, "per_rule_min": TARGET_RULE_MIN, "p99_ms": TARGET_P99_MS},
        "meets_targets": bool(
            overall.precision is not None
            and overall.recall is not None
            and overall.precision >= TARGET_PRECISION
            and overall.recall >= TARGET_RECALL
            and all(v >= TARGET_RULE_MIN for v in worst)
            and latency["p99_ms"] < TARGET_P99_MS
        ),
        "rules": rules_out,
        "latency": latency,
    }
    (out_dir / "rules.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Rules benchmark",
        "",
        f"{n_files} labelled timelines, time tolerance ±{TOLERANCE_S:.0f} s. "
        f"Targets: precision ≥ {TARGET_PRECISION}, recall ≥ {TARGET_RECALL}, no rule below {TARGET_RULE_MIN}.",
        "",
        "| rule | TP | FP | FN | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rid, t in per_rule.items():
        lines.append(f"| `{rid}` | {t.tp} | {t.fp} | {t.fn} | {_fmt(t.precision)} | {_fmt(t.recall)} |")
    lines.append(f"| **overall** | {overall.tp} | {overall.fp} | {overall.fn} | **{_fmt(overall.precision)}** | **{_fmt(overall.recall)}** |")
    lines += [
        "",
        "## Live latency",
        "",
        f"A {latency['call_minutes']:.0f}-minute call ({latency['utterances']} utterances) fed item by item with a "
        f"0.5 s clock tick: {latency['steps']} evaluation steps.",
        "",
        "| p50 | p90 | p99 | max | post-call finish |",
        "|---:|---:|---:|---:|---:|",
        f"| {latency['p50_ms']} ms | {latency['p90_ms']} ms | {latency['p99_ms']} ms | {latency['max_ms']} ms | {latency['finish_ms']} ms |",
        "",
        f"Python {latency['python']} on {latency['machine']}.",
        "",
    ]
    (out_dir / "rules.md").write_text("\n".join(lines), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timelines", type=Path, default=ROOT / "tests" / "data" / "timelines")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true", help="list every miss and false positive")
    args = parser.parse_args(argv)

    per_rule, overall, n_files = evaluate(args.timelines, args.verbose)
    latency = measure_latency(load_rules_config(), args.minutes)
    result = write_results(args.out, per_rule, overall, n_files, latency)

    width = max(len(r) for r in RULE_IDS)
    print(f"{'rule':<{width}}  {'TP':>3} {'FP':>3} {'FN':>3}  {'prec':>6} {'recall':>6}")
    for rid, t in per_rule.items():
        print(f"{rid:<{width}}  {t.tp:>3} {t.fp:>3} {t.fn:>3}  {_fmt(t.precision):>6} {_fmt(t.recall):>6}")
    print(f"{'overall':<{width}}  {overall.tp:>3} {overall.fp:>3} {overall.fn:>3}  {_fmt(overall.precision):>6} {_fmt(overall.recall):>6}")
    print(
        f"live latency over a {latency['call_minutes']:.0f}-minute call, {latency['steps']} steps: "
        f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms"
    )
    print(f"timelines: {n_files}; meets targets: {result['meets_targets']}; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
