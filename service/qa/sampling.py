"""Which of a week's calls a sampling plan picks, why, and for which reviewer (docs/qa.md, Sampling plans). Pure:
the calls and the plan's earlier picks are read and the picks written by `service.persistence.qa_plans`.

A call is **picked** for one or more reasons:

- `sample`: it is in the plan's share of its agent's calls that week. Each call has a rank in [0, 1), a hash
  of the plan's seed and the call's key, so the draw is the same every time it is made over the same calls;
  an agent with n calls in the week has ⌈share × n⌉ of them sampled (one at least, wherever the share is above
  zero: every agent who took calls is looked at), the lowest-ranked ones not picked yet.
- `severe_finding`: its report has a finding of a severity the plan names (`breach` by default).
- `low_score`: its automatic score is under the plan's threshold.
- `negative_end`: its customer ended negative (`service.qa.call_outcomes`).

A plan picks a call once. Running it again over the same calls picks nothing new; run again later in a week
that has had more calls, it tops the agent's sample up to the share of the larger count and picks the new
calls that meet a condition.

New picks go to the plan's reviewers in rank order, each to the one with the fewest of the plan's picks that
week so far (the plan's order breaks ties), so a week's picks differ by one at most between reviewers.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SAMPLE, SEVERE_FINDING, LOW_SCORE, NEGATIVE_END = "sample", "severe_finding", "low_score", "negative_end"
REASON_CODES = (SAMPLE, SEVERE_FINDING, LOW_SCORE, NEGATIVE_END)

AgentKey = tuple[str | None, str]  # (tenant, agent id): an agent is known within its tenant


@dataclass(frozen=True)
class Candidate:
    """A call of the week in the plan's scope, with what the conditions look at."""

    call_key: str
    tenant: str | None
    agent_id: str
    automatic_score: float | None
    findings: tuple[tuple[str, str, float], ...] = ()  # (rule id, severity, t) of the report's findings
    ended_negative: str | None = None  # why the customer ended negative; None: they did not

    @property
    def agent(self) -> AgentKey:
        return (self.tenant, self.agent_id)


@dataclass(frozen=True)
class PlanRules:
    share: float
    score_below: float | None
    severities: frozenset[str]
    negative_end: bool
    seed: str


@dataclass(frozen=True)
class EarlierPick:
    """A call the plan picked before in this week."""

    call_key: str
    agent: AgentKey
    sampled: bool
    reviewer: str


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True)
class Pick:
    call_key: str
    tenant: str | None
    agent_id: str
    rank: float
    reasons: tuple[Reason, ...]
    reviewer: str = field(default="")


def draw_rank(seed: str, call_key: str) -> float:
    """The call's place in the plan's draw, uniform in [0, 1): the same seed and call, the same rank."""
    digest = hashlib.sha256(f"{seed}\0{call_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def sample_size(share: float, calls: int) -> int:
    """⌈share × calls⌉; rounded first so that 5 % of 40 is 2, not the 3 that 2.0000000000000004 would make."""
    if share <= 0 or calls <= 0:
        return 0
    return min(calls, math.ceil(round(share * calls, 9)))


def _condition_reasons(call: Candidate, rules: PlanRules) -> list[Reason]:
    reasons: list[Reason] = []
    severe = [f for f in call.findings if f[1] in rules.severities]
    if severe:
        reasons.append(Reason(SEVERE_FINDING, "; ".join(f"{r} ({s}) at {t:.0f} s" for r, s, t in severe)))
    if rules.score_below is not None and call.automatic_score is not None and call.automatic_score < rules.score_below:
        reasons.append(Reason(LOW_SCORE, f"automatic score {call.automatic_score:g} is under {rules.score_below:g}"))
    if rules.negative_end and call.ended_negative:
        reasons.append(Reason(NEGATIVE_END, call.ended_negative))
    return reasons


def choose(candidates: Iterable[Candidate], rules: PlanRules, earlier: Sequence[EarlierPick],
           reviewers: Sequence[str]) -> list[Pick]:
    """The week's new picks, in rank order, each with its reasons and reviewer. `earlier`: the plan's picks of
    this week already made; `reviewers`: the plan's, in its order (one at least)."""
    if not reviewers:
        raise ValueError("a plan needs a reviewer to assign its picks to")
    taken = {p.call_key for p in earlier}
    by_agent: dict[AgentKey, list[Candidate]] = {}
    for call in candidates:
        by_agent.setdefault(call.agent, []).append(call)
    sampled_before = Counter(p.agent for p in earlier if p.sampled)

    reasons: dict[str, list[Reason]] = {}
    ranks: dict[str, float] = {}
    for agent, calls in by_agent.items():
        for call in calls:
            ranks[call.call_key] = draw_rank(rules.seed, call.call_key)
        quota = sample_size(rules.share, len(calls))
        wanted = max(0, quota - sampled_before[agent])
        fresh = sorted((c for c in calls if c.call_key not in taken), key=lambda c: (ranks[c.call_key], c.call_key))
        for call in fresh[:wanted]:
            reasons.setdefault(call.call_key, []).append(Reason(
                SAMPLE, f"drawn for the {rules.share * 100:g} % sample: {quota} of the agent's {len(calls)} calls "
                        "this week"))
        for call in fresh:
            found = _condition_reasons(call, rules)
            if found:
                reasons.setdefault(call.call_key, []).extend(found)

    calls_by_key = {c.call_key: c for calls in by_agent.values() for c in calls}
    load = Counter({r: 0 for r in reviewers})
    load.update(p.reviewer for p in earlier if p.reviewer in load)
    order = {r: i for i, r in enumerate(reviewers)}
    picks: list[Pick] = []
    for key in sorted(reasons, key=lambda k: (ranks[k], k)):
        reviewer = min(reviewers, key=lambda r: (load[r], order[r]))
        load[reviewer] += 1
        call = calls_by_key[key]
        picks.append(Pick(key, call.tenant, call.agent_id, ranks[key], tuple(reasons[key]), reviewer))
    return picks


def reasons_of(stored: Iterable[Mapping[str, str]]) -> tuple[Reason, ...]:
    return tuple(Reason(r["code"], r["detail"]) for r in stored)
