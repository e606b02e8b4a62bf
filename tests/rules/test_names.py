"""The names table: every rule id, severity and recovery step named from the rules file, a deployment's file
renames them, a name that is not one is refused with its line, and the docs show the shipped table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from rules.catalog import RULE_IDS
from rules.config import RulesConfigError, load_rules_config, load_rules_config_text
from rules.engine import RuleBook
from rules.names import name_table
from rules.settings import Severity
from tests.support.renamed_rules import RENAMED


def test_every_rule_id_severity_and_step_has_a_name_from_the_rules_file() -> None:
    config = load_rules_config()
    table = name_table(config)
    assert list(table.rules) == list(RULE_IDS)
    assert all(table.rules[rule_id] == config.rule(rule_id).name != rule_id for rule_id in RULE_IDS)
    assert set(table.severities) == set(get_args(Severity)) and all(table.severities.values())
    assert table.recovery.name == config.recovery.name
    assert table.recovery.steps == [step.name for step in config.recovery.steps]


def test_no_two_rules_share_a_name() -> None:
    """Two rules of one name would read as one on every page (what 长时间沉默 beside 冷场 risked)."""
    names = list(name_table(load_rules_config()).rules.values())
    assert len(set(names)) == len(names)


def test_a_deployment_file_renames_a_rule_and_a_severity_and_keeps_the_rest() -> None:
    shipped = name_table(load_rules_config())
    renamed = name_table(load_rules_config_text(RENAMED, "site.yaml"))
    assert renamed.rule("listen.no_silence") == "回应客户（本地）" != shipped.rule("listen.no_silence")
    assert renamed.severity("warn") == "留意（本地）" != shipped.severity("warn")
    unchanged = [r for r in RULE_IDS if r != "listen.no_silence"]
    assert [renamed.rule(r) for r in unchanged] == [shipped.rule(r) for r in unchanged]
    assert renamed.severity("breach") == shipped.severity("breach")


def test_an_unknown_id_is_named_by_itself() -> None:
    table = name_table(load_rules_config())
    assert table.rule("site.custom_rule") == "site.custom_rule"
    assert table.severity("critical") == "critical"


@pytest.mark.parametrize("text, where", [
    ("rules:\n  listen.no_silence:\n    name: ''\n", 'line 3: rules["listen.no_silence"].name'),
    ("severity_names:\n  warn: null\n", "line 2: severity_names.warn"),
    ("severity_names:\n  severe: 严重\n", "line 2: severity_names.severe: unknown key"),
])
def test_a_name_that_is_not_one_is_refused_with_its_line(text: str, where: str) -> None:
    with pytest.raises(RulesConfigError, match=r"site\.yaml, " + re.escape(where)):
        load_rules_config_text(text, "site.yaml")


def test_the_rule_book_carries_its_names() -> None:
    config = load_rules_config_text(RENAMED, "site.yaml")
    assert RuleBook(config).names == name_table(config)


def test_the_documented_example_is_the_shipped_table() -> None:
    """docs/rules.md shows GET /v1/rules/names's answer with the shipped rules: it must be that answer."""
    import json

    docs = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    section = docs[docs.index("### Names"):docs.index("## Rule ids")]
    example = section[section.index("```json") + len("```json"):]
    assert json.loads(example[:example.index("```")]) == name_table(load_rules_config()).model_dump()
