"""What crosses /v1/qa/trends (docs/qa.md, Trends): per agent and week, and per team and week, the average score
(reviewed where there is one), the most frequent findings, each rule's hit rate, customers who turned negative
and recovered, prompts shown, heeded and dismissed."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScoreSource = Literal["reviewed", "automatic", "mixed"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleCount(_Wire):
    rule_id: str
    findings: int


class TrendRow(_Wire):
    level: Literal["agent", "team"]
    week: str = Field(description="the Monday of the week (the calls' own clock)")
    tenant: str | None
    team: str | None = Field(description="the agent's team now (keys file); a team row's team")
    agent_id: str | None = Field(description="null on a team row")
    calls: int
    average_score: float | None = Field(description="each call's reviewed score where it has a submitted review, else "
                                                    "its automatic score; null without a scored call")
    score_source: ScoreSource | None = Field(description="which scores the average is of: reviewed, automatic or mixed")
    reviewed_calls: int = Field(description="calls scored by their submitted review")
    automatic_calls: int = Field(description="calls scored automatically (no submitted review)")
    top_breaches: list[RuleCount] = Field(description="the three rules with the most findings (reviewed findings "
                                                      "where reviewed), most first")
    rule_hit_rates: dict[str, float] = Field(description="per rule with a finding: the share of the calls with one")
    turned_negative: int = Field(description="calls whose customer turned negative")
    recovered: int = Field(description="of those, calls whose customer recovered by the end")
    prompts_shown: int
    prompts_heeded: int = Field(description="shown prompts whose condition cleared during the call")
    prompts_dismissed: int


class Trends(_Wire):
    date_from: date
    date_to: date
    team: str | None
    agent_id: str | None
    weeks: list[str]
    agents: list[TrendRow] = Field(description="a page of the agent rows: from `offset`, at most `limit`")
    total_agents: int = Field(description="the agent rows in all, over every page")
    offset: int
    limit: int
    teams: list[TrendRow] = Field(description="every team row")
