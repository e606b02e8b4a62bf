"""Trends per agent and week and per team and week (docs/qa.md, Trends), from the sums of each agent's week.
Pure: the sums are added up by the database (`service.persistence.qa_trends`) from one row of facts per call.

A call counts with the score and findings QA settled on: its submitted review's where it has one (the reviewed
score, the findings the review counts after rulings), else the automatic ones (the report's score and
findings). Each row says how many of its calls were scored either way.

Teams are the keys file's now, applied here per agent: a team's week is the sum of its agents' weeks. Agent
rows are answered a page at a time (the total beside them); team rows whole, as there are few.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from service.qa.trend_models import RuleCount, ScoreSource, TrendRow

TOP_BREACHES = 3


@dataclass
class Tally:
    """What a row sums over its calls: `scored` of them have a score (adding up to `score_sum`), `reviewed` of
    those by their submitted review; `findings` per rule, and `hits`: per rule, the calls with at least one."""

    calls: int = 0
    scored: int = 0
    score_sum: float = 0.0
    reviewed: int = 0
    turned_negative: int = 0
    recovered: int = 0
    prompts_shown: int = 0
    prompts_heeded: int = 0
    prompts_dismissed: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.calls += other.calls
        self.scored += other.scored
        self.score_sum += other.score_sum
        self.reviewed += other.reviewed
        self.turned_negative += other.turned_negative
        self.recovered += other.recovered
        self.prompts_shown += other.prompts_shown
        self.prompts_heeded += other.prompts_heeded
        self.prompts_dismissed += other.prompts_dismissed
        self.findings.update(other.findings)
        self.hits.update(other.hits)


@dataclass(frozen=True)
class AgentWeek:
    tenant: str | None
    agent_id: str
    week: str
    tally: Tally


RowKey = tuple[str | None, str | None, str | None, str]  # tenant, team, agent id (None on a team row), week


@dataclass(frozen=True)
class TrendRows:
    agents: list[TrendRow]  # the page asked for
    total_agents: int  # agent rows in all
    teams: list[TrendRow]


def _source(reviewed: int, automatic: int) -> ScoreSource | None:
    if reviewed and automatic:
        return "mixed"
    return "reviewed" if reviewed else "automatic" if automatic else None


def _row(key: RowKey, t: Tally) -> TrendRow:
    tenant, team, agent_id, week = key
    top = sorted(((r, n) for r, n in t.findings.items() if n > 0), key=lambda x: (-x[1], x[0]))[:TOP_BREACHES]
    return TrendRow(
        level="agent" if agent_id is not None else "team", week=week, tenant=tenant, team=team, agent_id=agent_id,
        calls=t.calls, average_score=round(t.score_sum / t.scored, 2) if t.scored else None,
        score_source=_source(t.reviewed, t.scored - t.reviewed), reviewed_calls=t.reviewed,
        automatic_calls=t.scored - t.reviewed, top_breaches=[RuleCount(rule_id=r, findings=n) for r, n in top],
        rule_hit_rates={r: round(n / t.calls, 4) for r, n in sorted(t.hits.items()) if n > 0},
        turned_negative=t.turned_negative, recovered=t.recovered, prompts_shown=t.prompts_shown,
        prompts_heeded=t.prompts_heeded, prompts_dismissed=t.prompts_dismissed)


def _order(key: RowKey) -> tuple[str, ...]:
    """By week, then tenant, team and agent (none first)."""
    tenant, team, agent_id, week = key
    return week, tenant or "", team or "", agent_id or ""


def trend_rows(weeks: Iterable[AgentWeek], *, team_of: Callable[[str | None, str], str | None],
               keep: Callable[[str | None, str, str | None], bool], offset: int = 0, limit: int | None = None,
               with_teams: bool = True) -> TrendRows:
    """The agent rows from `offset`, at most `limit` of them (None: all), and every team row (none without
    `with_teams`), of the agents' weeks for which `keep(tenant, agent, team)` holds. An agent in no team has
    agent rows and is in no team row."""
    agents: dict[RowKey, Tally] = {}
    teams: dict[RowKey, Tally] = {}
    for w in weeks:
        team = team_of(w.tenant, w.agent_id)
        if not keep(w.tenant, w.agent_id, team):
            continue
        agents[(w.tenant, team, w.agent_id, w.week)] = w.tally
        if with_teams and team is not None:
            teams.setdefault((w.tenant, team, None, w.week), Tally()).add(w.tally)
    ordered = sorted(agents, key=_order)
    page = ordered[offset:] if limit is None else ordered[offset:offset + limit]
    return TrendRows(agents=[_row(k, agents[k]) for k in page], total_agents=len(ordered),
                     teams=[_row(k, teams[k]) for k in sorted(teams, key=_order)])
