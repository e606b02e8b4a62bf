"""The reviewed score: the report's own scoring (rules/score.py: 100 minus each rule's weight per finding,
capped per rule) over the findings a review counts, with the deployment's rules file.

The deployment's weights are those every live call and every audit without a rules file of its own was
scored with, so a review that confirms every automatic finding keeps the automatic score. A call audited
with a batch's own rules file is re-scored by the deployment's weights (docs/qa.md says so).
"""

from __future__ import annotations

from rules.catalog import RULE_IDS
from rules.config import RulesConfig
from rules.score import score_rule_hits
from service.persistence.qa_reviews import Scorer


def reviewed_scorer(config: RulesConfig) -> Scorer:
    """The score of the rule ids a review counts. A rule id the rulebook no longer has (a report older than a
    rule's removal) deducts nothing: it has no weight to deduct."""

    def score(rule_ids: list[str]) -> float | None:
        return score_rule_hits((r for r in rule_ids if r in RULE_IDS), config)[0]

    return score
