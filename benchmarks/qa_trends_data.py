"""Generated stored calls for the QA trends benchmark (benchmarks/qa_trends.py) and its tests: a year of a call
centre's calls, with what trends read of them, written in bulk into the project's own tables (the store's
migrations made them).

A call is what a live or audited call leaves behind: its row and report (findings with severities, prompts
with `cleared_at`), its utterances (customer ones with emotion results, some carrying a `turn`), the prompts
the agent's screen was sent (some dismissed), its call-list row and rule counts; for a share of the calls a QA
review (submitted or still open, each automatic finding confirmed or rejected, some added), some disputed and
ruled. Agents sit in teams of tenants; a few are in no team. Everything is drawn from one seeded generator,
so two runs with the same shape write the same rows.

`generate` returns, per call, the figures trends should find for it (`ExpectedCall`), worked out from what was
drawn rather than read back, so tests can hold the trends code to them. The search index is left empty: no
trends query reads it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from rules.catalog import RULE_IDS
from service.persistence.call_store import CallStore
from service.persistence.generated_qa_calls import GeneratedRows, insert_generated, settle

LOCAL = timezone(timedelta(hours=8))
# Prompts whose condition can clear while the call goes on, and one-offs that never do (docs/rules.md).
CLEARING_PROMPTS = ("listen.dead_air", "listen.no_silence", "hold.apology", "speech.rate", "speech.volume")
ONE_OFF_PROMPTS = ("promise.rash", "complaint.empathy_first")
SEVERITIES = ("info", "warn", "breach")
POINTS = {"info": 1, "warn": 3, "breach": 8}
AGENT_LINES = ("您好，请问有什么可以帮您", "好的，我帮您查询一下", "请您稍等", "非常理解您的心情", "给您带来不便，非常抱歉",
               "预计三个工作日内到账", "还有其他可以帮您的吗", "感谢您的来电，再见")
CUSTOMER_LINES = ("我的快递三天了还没到", "我要投诉你们的服务", "我都打了三次电话了", "退款什么时候能到账", "好的谢谢",
                  "你们到底怎么回事", "我不满意这个处理结果", "可以，麻烦你了")
BATCH = 2000


@dataclass(frozen=True)
class Shape:
    """How much to generate: `calls` over `agents` in `teams` (the first four fifths of the teams in the first
    tenant, the rest in the second), over `weeks` weeks from `first_monday`."""

    calls: int = 100_000
    agents: int = 1000
    teams: int = 50
    weeks: int = 52
    first_monday: date = date(2025, 1, 6)
    tenants: tuple[str, str] = ("acme", "globex")
    seed: int = 15
    review_share: float = 0.07  # submitted reviews
    open_review_share: float = 0.01  # reviews opened and not yet submitted: the call still counts automatically
    live_share: float = 0.6  # live calls, whose agent may have been shown prompts; the rest are audited recordings
    no_team_every: int = 100  # every n-th agent is in no team


@dataclass(frozen=True)
class Agent:
    tenant: str
    agent_id: str
    team: str | None


@dataclass(frozen=True)
class ExpectedCall:
    """What trends should count for one call, from what was drawn for it."""

    call_id: str
    tenant: str
    agent_id: str
    team: str | None
    week: str
    score: float
    reviewed: bool
    rules: Counter[str] = field(default_factory=Counter)
    turned_negative: bool = False
    recovered: bool = False
    prompts_shown: int = 0
    prompts_heeded: int = 0
    prompts_dismissed: int = 0


def agents_of(shape: Shape) -> list[Agent]:
    per_team = max(1, shape.agents // shape.teams)
    first_tenant_teams = max(1, shape.teams * 4 // 5)
    out = []
    for i in range(shape.agents):
        team_no = min(i // per_team, shape.teams - 1)
        tenant = shape.tenants[0] if team_no < first_tenant_teams else shape.tenants[1]
        team = None if (i + 1) % shape.no_team_every == 0 else f"team-{team_no:02d}"
        out.append(Agent(tenant, f"agent-{i:04d}", team))
    return out


class _Drawer:
    """Draws one call after another from one seeded generator."""

    def __init__(self, shape: Shape):
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.agents = agents_of(shape)
        # Some agents take more calls than others.
        self.weights = [0.5 + self.rng.random() for _ in self.agents]
        self.rule_weights = [1.0 / (1 + k % 9) for k in range(len(RULE_IDS))]
        self.finding_id = 0

    def _id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _start(self) -> datetime:
        day = self.shape.first_monday + timedelta(weeks=self.rng.randrange(self.shape.weeks),
                                                  days=self.rng.choices(range(7), weights=(5, 5, 5, 5, 5, 2, 1))[0])
        return datetime(day.year, day.month, day.day, tzinfo=LOCAL) + timedelta(seconds=self.rng.randrange(8 * 3600, 22 * 3600))

    def _findings(self) -> list[dict[str, Any]]:
        n = self.rng.choices((0, 1, 2, 3, 4), weights=(3, 4, 3, 2, 1))[0]
        out = []
        for rule_id in self.rng.choices(RULE_IDS, weights=self.rule_weights, k=n):
            t = round(self.rng.uniform(5, 280), 2)
            severity = self.rng.choices(SEVERITIES, weights=(1, 5, 2))[0]
            out.append({"rule_id": rule_id, "severity": severity, "t": t, "end": None, "evidence": [],
                        "detail": f"{rule_id} @ {t}", "prompt": "", "seed": "", "recovery": None})
        return sorted(out, key=lambda f: f["t"])

    def _turns(self) -> list[str]:
        """The turns the customer's utterances carry, in call order (the other utterances carry none)."""
        kind = self.rng.choices(("calm", "recovered", "negative", "again"), weights=(78, 12, 7, 3))[0]
        return {"calm": [], "recovered": ["negative", "recovered"], "negative": ["negative"],
                "again": ["negative", "recovered", "negative"]}[kind]

    def _utterances(self, call_id: str, turns: list[str]) -> list[dict[str, Any]]:
        count = self.rng.randint(4, 8)
        turned_at = sorted(self.rng.sample(range(count), len(turns)))
        rows, t = [], 0.0
        for k in range(count):
            for speaker, lines in (("agent", AGENT_LINES), ("customer", CUSTOMER_LINES)):
                text = self.rng.choice(lines)
                end = t + 0.25 * len(text) + self.rng.random()
                emotion = None
                if speaker == "customer":
                    turn = turns[turned_at.index(k)] if k in turned_at else None
                    valence = {"negative": -0.45, "recovered": 0.0}.get(turn or "", round(self.rng.uniform(-0.3, 0.5), 2))
                    label = "upset" if valence < -0.3 else "neutral" if valence < 0.2 else "satisfied"
                    emotion = json.dumps({"t": round(end, 2), "valence": valence, "arousal": 0.4, "label": label,
                                          "confidence": 0.85, "smoothed_valence": valence, "turn": turn})
                rows.append({"call_id": call_id, "utterance_id": f"{speaker}-{k}", "speaker": speaker, "start": round(t, 2),
                             "end": round(end, 2), "text": text, "level_db": -20.0, "emotion": emotion,
                             "text_pass": "live"})
                t = end + self.rng.random()
        return rows

    def _prompts(self, call_id: str, agent: Agent, ended: datetime, live: bool
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
        """The rows of the prompts shown, the report's prompts, how many were heeded and dismissed."""
        if not live:
            return [], [], 0, 0
        n = self.rng.choices((0, 1, 2, 3), weights=(40, 35, 17, 8))[0]
        shown, in_report, heeded, dismissed = [], [], 0, 0
        for rule_id in self.rng.sample(CLEARING_PROMPTS + ONE_OFF_PROMPTS, n):
            t = round(self.rng.uniform(5, 250), 2)
            cleared = rule_id in CLEARING_PROMPTS and self.rng.random() < 0.55
            gone = self.rng.random() < 0.2
            heeded += cleared
            dismissed += gone
            shown.append({"call_id": call_id, "prompt_id": f"{rule_id}@{t:.2f}", "rule_id": rule_id, "severity": "warn",
                          "t": t, "text": "提示", "evidence": "[]", "dismissed_at": ended if gone else None,
                          "dismissed_by": agent.agent_id if gone else None})
            in_report.append({"rule_id": rule_id, "severity": "warn", "t": t, "emitted_at": t, "text": "提示", "detail": "",
                              "evidence": [], "recovery": None, "provisional": False,
                              "cleared_at": round(t + 4.0, 2) if cleared else None})
        return shown, in_report, heeded, dismissed

    def _review(self, call_id: str, agent: Agent, findings: list[dict[str, Any]], automatic: float, when: datetime,
                rows: GeneratedRows) -> tuple[float, Counter[str]] | None:
        """A review of the call, if one is drawn; the reviewed score and the findings it counts when submitted."""
        draw = self.rng.random()
        if draw >= self.shape.review_share + self.shape.open_review_share:
            return None
        submitted = draw < self.shape.review_share
        review_id = self._id()
        kept: list[tuple[int, dict[str, Any]]] = []
        added = ([{"rule_id": self.rng.choice(RULE_IDS), "severity": "warn", "t": 60.0}]
                 if submitted and self.rng.random() < 0.2 else [])
        for index, f in enumerate([*findings, *added]):
            self.finding_id += 1
            is_added = index >= len(findings)
            decision = ("confirmed" if is_added or self.rng.random() < 0.85 else "rejected") if submitted else "pending"
            rows.findings.append({"finding_id": self.finding_id, "review_id": review_id,
                                  "source": "added" if is_added else "automatic",
                                  "report_index": None if is_added else index, "rule_id": f["rule_id"],
                                  "severity": f["severity"], "t": f["t"], "end": None,
                                  "detail": None if is_added else f["detail"], "note": "漏检" if is_added else None,
                                  "decision": decision, "reason": "识别有误" if decision == "rejected" else None,
                                  "decided_by": "qa-bench" if submitted else None, "decided_at": when if submitted else None})
            if decision == "confirmed":
                kept.append((self.finding_id, f))
        counted = list(kept)
        if submitted and kept and self.rng.random() < 0.1:
            finding_id, disputed = self.rng.choice(kept)
            dispute_id = self._id()
            rows.disputes.append({"dispute_id": dispute_id, "review_id": review_id, "finding_id": finding_id,
                                  "agent_id": agent.agent_id, "comment": "客户要求的", "raised_at": when})
            if self.rng.random() < 0.6:
                overturned = self.rng.random() < 0.5
                if overturned:
                    counted.remove((finding_id, disputed))
                rows.rulings.append({"ruling_id": self._id(), "dispute_id": dispute_id,
                                     "outcome": "overturned" if overturned else "upheld", "reason": "录音证实",
                                     "ruled_by": "lead-bench", "ruled_by_role": "supervisor", "ruled_at": when,
                                     "score_before": None, "score_after": None})
        reviewed = max(0.0, 100.0 - sum(POINTS[f["severity"]] for _, f in counted)) if submitted else None
        rows.reviews.append({"review_id": review_id, "call_id": call_id, "tenant": agent.tenant, "agent_id": agent.agent_id,
                             "state": "submitted" if submitted else "open", "opened_by": "qa-bench", "opened_by_role": "qa",
                             "opened_at": when, "submitted_by": "qa-bench" if submitted else None,
                             "submitted_at": when if submitted else None, "automatic_score": automatic,
                             "reviewed_score": reviewed, "acknowledged_at": None})
        if reviewed is None:
            return None
        return reviewed, Counter(f["rule_id"] for _, f in counted)

    def call(self, n: int, rows: GeneratedRows) -> ExpectedCall:
        agent = self.rng.choices(self.agents, weights=self.weights)[0]
        call_id = f"bench-{n:07d}"
        started = self._start()
        duration = round(self.rng.uniform(40, 600), 1)
        ended = (started + timedelta(seconds=duration)).astimezone(timezone.utc)
        live = self.rng.random() < self.shape.live_share
        findings = self._findings()
        automatic = max(0.0, 100.0 - sum(POINTS[f["severity"]] for f in findings))
        turns = self._turns()
        shown, in_report, heeded, dismissed = self._prompts(call_id, agent, ended, live)
        report = {"call_id": call_id, "score": automatic,
                  "deductions": [{"rule_id": f["rule_id"], "points": POINTS[f["severity"]]} for f in findings],
                  "findings": findings, "figures": {"talk_ratio": round(self.rng.uniform(0.3, 0.7), 2)},
                  "prompts": in_report}
        rows.calls.append({"call_id": call_id, "agent_id": agent.agent_id, "direction": "inbound",
                           "caller_number": f"1380000{n % 10000:04d}", "started_at": started.isoformat(),
                           "received_at": started.astimezone(timezone.utc), "ended_at": ended, "status": "completed",
                           "audio_format": '{"encoding": "pcm_s16le", "sample_rate": 8000, "channels": 2}',
                           "duration": duration, "score": automatic, "report": json.dumps(report, ensure_ascii=False),
                           "tenant": agent.tenant, "instance": "bench" if live else None, "client_call_id": None})
        rows.utterances += self._utterances(call_id, turns)
        rows.prompts += shown
        per_rule = Counter(f["rule_id"] for f in findings)
        rows.listed.append({"call_id": call_id, "agent_id": agent.agent_id, "direction": "inbound",
                            "started_at": started.isoformat(), "duration": duration, "score": automatic,
                            "worst_valence": -0.45 if turns else 0.1, "worst_label": "upset" if turns else "neutral",
                            "finding_count": len(findings), "rules": " ".join(sorted(per_rule)),
                            "file_name": None if live else f"{call_id}.wav", "speaker_attribution": "channels",
                            "source_path": None, "audit": json.dumps({"source": "live" if live else "upload"}),
                            "audited_at": ended, "tenant": agent.tenant})
        rows.rules += [{"call_id": call_id, "rule_id": r, "findings": k} for r, k in per_rule.items()]
        review = self._review(call_id, agent, findings, automatic, ended + timedelta(days=2), rows)
        monday = started.date() - timedelta(days=started.weekday())
        return ExpectedCall(
            call_id=call_id, tenant=agent.tenant, agent_id=agent.agent_id, team=agent.team, week=monday.isoformat(),
            score=review[0] if review else automatic, reviewed=review is not None,
            rules=review[1] if review else per_rule, turned_negative="negative" in turns,
            recovered=bool(turns) and turns[-1] == "recovered", prompts_shown=len(shown), prompts_heeded=heeded,
            prompts_dismissed=dismissed)


def _batches(shape: Shape) -> Iterator[tuple[GeneratedRows, list[ExpectedCall]]]:
    drawer = _Drawer(shape)
    for base in range(0, shape.calls, BATCH):
        rows = GeneratedRows()
        expected = [drawer.call(n, rows) for n in range(base, min(shape.calls, base + BATCH))]
        yield rows, expected


def generate(store: CallStore, shape: Shape) -> list[ExpectedCall]:
    """Write the calls of `shape` into the (migrated, empty) database of `store`; what trends should say of each."""
    out: list[ExpectedCall] = []
    for rows, expected in _batches(shape):
        insert_generated(store, rows)
        out += expected
    settle(store)
    return out
