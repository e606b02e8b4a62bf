"""The scorecard: 100 minus weighted deductions, each rule capped, all from the rules file."""

from __future__ import annotations

from collections import Counter

from rules.config import RulesConfig
from rules.findings import Deduction, Finding


def score_findings(findings: list[Finding], config: RulesConfig) -> tuple[float, list[Deduction]]:
    counts = Counter(f.rule_id for f in findings)
    deductions: list[Deduction] = []
    for rule_id, n in counts.items():
        settings = config.rule(rule_id)
        points = min(settings.cap, settings.weight * n)
        if points > 0:
            deductions.append(Deduction(rule_id=rule_id, findings=n, weight=settings.weight, cap=settings.cap, points=round(points, 2)))
    deductions.sort(key=lambda d: (-d.points, d.rule_id))
    score = max(0.0, 100.0 - sum(d.points for d in deductions))
    return round(score, 2), deductions
