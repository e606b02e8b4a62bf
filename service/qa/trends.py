"""Trends per agent and week and per team and week (docs/qa.md, Trends), from one record per call. Pure: the
records are read by `service.persistence.qa_trends`.

A call counts with the score and findings QA settled on: its submitted review's where it has one (the reviewed
score, the findings the review counts after rulings), else the automatic ones (the report's score and
findings). Each row says how many of its calls were scored either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from service.qa.call_outcomes import NO_PROMPTS, PromptOutcome
from service.qa.trend_models import RuleCount, ScoreSource, TrendRow

TOP_BREACHES = 3


@dataclass(frozen=True)
class TrendCall:
    tenant: str | None
    agent_id: str
    team: str | None
    week: str
    score: float | None
    reviewed: bool  # the score and findings are its submitted review's
    rules: Counter[str] = field(default_factory=Counter)  # findings per rule
    turned_negative: bool = False
    recovered: bool = False
    prompts: PromptOutcome = NO_PROMPTS


def _source(reviewed: int, automatic: int) -> ScoreSource | None:
    if reviewed and automatic:
        return "mixed"
    return "reviewed" if reviewed else "automatic" if automatic else None


def _row(level: str, key: tuple[str | None, str | None, str | None, str], calls: list[TrendCall]) -> TrendRow:
    tenant, team, agent_id, week = key
    scored = [c for c in calls if c.score is not None]
    reviewed = sum(c.reviewed for c in scored)
    findings: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for c in calls:
        findings.update(c.rules)
        hit.update(r for r, n in c.rules.items() if n > 0)
    top = sorted(((r, n) for r, n in findings.items() if n > 0), key=lambda x: (-x[1], x[0]))[:TOP_BREACHES]
    turned = [c for c in calls if c.turned_negative]
    return TrendRow(
        level="agent" if level == "agent" else "team", week=week, tenant=tenant, team=team, agent_id=agent_id,
        calls=len(calls),
        average_score=round(sum(c.score for c in scored if c.score is not None) / len(scored), 2) if scored else None,
        score_source=_source(reviewed, len(scored) - reviewed), reviewed_calls=reviewed,
        automatic_calls=len(scored) - reviewed, top_breaches=[RuleCount(rule_id=r, findings=n) for r, n in top],
        rule_hit_rates={r: round(hit[r] / len(calls), 4) for r in sorted(hit)},
        turned_negative=len(turned), recovered=sum(c.recovered for c in turned),
        prompts_shown=sum(c.prompts.shown for c in calls), prompts_heeded=sum(c.prompts.heeded for c in calls),
        prompts_dismissed=sum(c.prompts.dismissed for c in calls))


def _grouped(calls: Iterable[TrendCall], key: Callable[[TrendCall], tuple[str | None, str | None, str | None, str] | None]
             ) -> dict[tuple[str | None, str | None, str | None, str], list[TrendCall]]:
    groups: dict[tuple[str | None, str | None, str | None, str], list[TrendCall]] = {}
    for c in calls:
        k = key(c)
        if k is not None:
            groups.setdefault(k, []).append(c)
    return groups


def _order(key: tuple[Hashable, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in key)


def agent_rows(calls: Iterable[TrendCall]) -> list[TrendRow]:
    """One row per agent (within its tenant) and week, by week then tenant and agent."""
    groups = _grouped(calls, lambda c: (c.tenant, c.team, c.agent_id, c.week))
    return [_row("agent", k, groups[k]) for k in sorted(groups, key=lambda k: (k[3], *_order(k[:3])))]


def team_rows(calls: Iterable[TrendCall]) -> list[TrendRow]:
    """One row per team (within its tenant) and week; calls of agents in no team are in no team row."""
    groups = _grouped(calls, lambda c: (c.tenant, c.team, None, c.week) if c.team is not None else None)
    return [_row("team", k, groups[k]) for k in sorted(groups, key=lambda k: (k[3], *_order(k[:3])))]
