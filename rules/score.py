"""The scorecard: 100 minus weighted deductions, each rule capped, all from the rules file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rules.config import RulesConfig
from rules.findings import Deduction, Finding


def score_findings(findings: list[Finding], config: RulesConfig) -> tuple[float, list[Deduction]]:
    return score_rule_hits((f.rule_id for f in findings), config)


def score_rule_hits(rule_ids: Iterable[str], config: RulesConfig) -> tuple[float, list[Deduction]]:
    """The score of a call with one finding per rule id listed: only the rule counts, so a QA review's
    findings (some confirmed from the report, some added by hand) are scored exactly as the report's were."""
    counts = Counter(rule_ids)
    deductions: list[Deduction] = []
    for rule_id, n in counts.items():
        settings = config.rule(rule_id)
        points = min(settings.cap, settings.weight * n)
        if points > 0:
            deductions.append(Deduction(rule_id=rule_id, findings=n, weight=settings.weight, cap=settings.cap, points=round(points, 2)))
    deductions.sort(key=lambda d: (-d.points, d.rule_id))
    score = max(0.0, 100.0 - sum(d.points for d in deductions))
    return round(score, 2), deductions
