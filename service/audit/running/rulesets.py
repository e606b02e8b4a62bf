"""Which rules an audit uses: the deployment's (the runtime's), or a file / YAML text given with the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.config import load_rules_config_text, read_rules_file
from rules.engine import RuleBook


def deployment_book(runtime: Any) -> RuleBook:
    return runtime.rule_book


def book_from_text(text: str | None, name: str, runtime: Any) -> RuleBook:
    """Rules YAML merged over the shipped defaults; raises RulesConfigError naming the line."""
    if text is None:
        return deployment_book(runtime)
    return RuleBook(load_rules_config_text(text, name))


def book_from_file(path: Path | None, runtime: Any) -> tuple[RuleBook, str, str | None]:
    """(book, name for reports, YAML text kept with the batch so an interrupted batch resumes with it)."""
    if path is None:
        return deployment_book(runtime), "default", None
    text = read_rules_file(path)
    return RuleBook(load_rules_config_text(text, str(path))), Path(path).name, text
