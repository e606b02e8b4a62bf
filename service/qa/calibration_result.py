"""A calibration's result from its reviewers' submitted decisions (docs/qa.md, Calibration). Pure: the decisions
are read by `service.persistence.qa_calibrations`, the kappas computed by `service.qa.kappa`.

Each reviewer's verdict on a rule is **broken** where it counts a finding of that rule (an automatic finding it
confirmed, or one it added), else **not broken**. The rules in play are those the automatic report or any
submitted reviewer found broken: the form every reviewer filled in for this call.

- Per rule: how many said broken and not, the share of reviewer pairs who agree (Fleiss' P_i: 1.0 when all
  agree; with two reviewers 1 or 0), the majority, and whether the automatic report matches it.
- Over the rules in play: Cohen's kappa for two reviewers, Fleiss' kappa for three or more, the rules being
  the subjects. One call gives each rule one subject, so a kappa per rule needs many calls; within one call
  the kappa says how far the team agrees beyond chance across the form.
- Per automatic finding: how many confirmed and how many rejected it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from service.qa.calibration_models import FindingAgreement, Kappa, RuleAgreement
from service.qa.kappa import cohen_kappa, fleiss_kappa, pair_agreement


@dataclass(frozen=True)
class AutomaticFinding:
    finding_id: int
    rule_id: str
    t: float


@dataclass(frozen=True)
class SubmittedScoring:
    """One reviewer's submitted decisions: on each automatic finding, and the rules of its added findings that
    it kept (confirmed)."""

    reviewer: str
    decisions: Mapping[int, str]  # automatic finding id → confirmed | rejected
    added_rules: Sequence[str]


@dataclass(frozen=True)
class Agreement:
    rules: list[RuleAgreement]
    kappa: Kappa | None
    automatic_agreement: float | None
    findings: list[FindingAgreement]
    breached: dict[str, list[str]]  # reviewer → the rules it found broken


def breached_rules(automatic: Sequence[AutomaticFinding], scoring: SubmittedScoring) -> set[str]:
    confirmed = {f.rule_id for f in automatic if scoring.decisions.get(f.finding_id) == "confirmed"}
    return confirmed | set(scoring.added_rules)


def _majority(yes: int, no: int) -> Literal["yes", "no", "tie"]:
    return "yes" if yes > no else "no" if no > yes else "tie"


def agreement(automatic: Sequence[AutomaticFinding], submitted: Sequence[SubmittedScoring]) -> Agreement:
    """The agreement of two or more submitted scorings of one call."""
    if len(submitted) < 2:
        raise ValueError("agreement needs two submitted reviewers or more")
    breached = {s.reviewer: breached_rules(automatic, s) for s in submitted}
    automatic_rules = {f.rule_id for f in automatic}
    in_play = sorted(automatic_rules.union(*breached.values()))
    n = len(submitted)

    rules: list[RuleAgreement] = []
    for rule_id in in_play:
        yes = sum(rule_id in b for b in breached.values())
        majority = _majority(yes, n - yes)
        rules.append(RuleAgreement(
            rule_id=rule_id, automatic=rule_id in automatic_rules, yes=yes, no=n - yes,
            agreement=round(pair_agreement([yes, n - yes]), 4), majority=majority,
            automatic_agrees=None if majority == "tie" else (majority == "yes") == (rule_id in automatic_rules)))

    kappa = None
    if in_play:
        if n == 2:
            first, second = (breached[s.reviewer] for s in submitted)
            value = cohen_kappa([r in first for r in in_play], [r in second for r in in_play])
            kappa = Kappa(method="cohen", value=_rounded(value), subjects=len(in_play), raters=n)
        else:
            value = fleiss_kappa([[r.yes, r.no] for r in rules])
            kappa = Kappa(method="fleiss", value=_rounded(value), subjects=len(in_play), raters=n)

    judged = [r for r in rules if r.automatic_agrees is not None]
    automatic_agreement = round(sum(bool(r.automatic_agrees) for r in judged) / len(judged), 4) if judged else None
    findings = [FindingAgreement(
        finding_id=f.finding_id, rule_id=f.rule_id, t=f.t,
        confirmed=sum(s.decisions.get(f.finding_id) == "confirmed" for s in submitted),
        rejected=sum(s.decisions.get(f.finding_id) == "rejected" for s in submitted)) for f in automatic]
    return Agreement(rules, kappa, automatic_agreement, findings, {r: sorted(b) for r, b in breached.items()})


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
