"""The one table of display names: what every page calls a rule id, a severity and the recovery's steps.

The names are data in the rules file (each rule's `name`, `severity_names`, `recovery.name` and the steps'
names), so a deployment renames a rule in its file and the agent screen, the supervisor board and the QA
report all follow; before this table each page kept its own map and named the same rule differently.
`GET /v1/rules/names` serves the table and the server-rendered pages embed it (docs/rules.md).
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, Field

from rules.catalog import RULE_IDS
from rules.config import RulesConfig
from rules.settings import Severity

SEVERITIES: tuple[str, ...] = get_args(Severity)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecoveryNames(_Wire):
    name: str = Field(description="the recovery method, shown before a step's name", examples=["六步法"])
    steps: list[str] = Field(description="the step names in order; a prompt's `recovery.step` is one of them",
                             examples=[["感受", "道歉", "解决", "调查", "加分", "预防"]])


class NameTable(_Wire):
    """Display names by id. A page shows an id the table does not know (a newer rule) as the id itself."""

    rules: dict[str, str] = Field(description="rule id → its short name, every rule id in rulebook order",
                                  examples=[{"listen.no_silence": "倾听回应", "complaint.empathy_first": "先共情"}])
    severities: dict[str, str] = Field(description="severity (info, warn, breach) → its name",
                                       examples=[{"info": "提示", "warn": "注意", "breach": "违规"}])
    recovery: RecoveryNames

    def rule(self, rule_id: str) -> str:
        return self.rules.get(rule_id, rule_id)

    def severity(self, severity: str) -> str:
        return self.severities.get(severity, severity)


def name_table(config: RulesConfig) -> NameTable:
    """The names a rules configuration (the shipped defaults with a deployment's file merged over) gives."""
    return NameTable(
        rules={rule_id: config.rule(rule_id).name for rule_id in RULE_IDS},
        severities={severity: getattr(config.severity_names, severity) for severity in SEVERITIES},
        recovery=RecoveryNames(name=config.recovery.name, steps=[step.name for step in config.recovery.steps]),
    )
