"""A calibration's result from submitted scorings, against figures worked by hand (service/qa/calibration_result.py).

The call's automatic findings: hold.apology at 40 s (1) and 95 s (2), promise.rash (3), closing (4),
listen.dead_air (5). Three reviewers:

| rule | R1 | R2 | R3 | automatic |
|---|---|---|---|---|
| closing.caller_hangs_up_first | yes | yes | yes | yes |
| complaint.empathy_first (added) | yes | no | yes | no |
| hold.apology | yes (1) | yes (1, 2) | no | yes |
| listen.dead_air | no | no | no | yes |
| promise.rash | yes | no | yes | yes |

Fleiss over the 5 rules: P_i = 1, 1/3, 1/3, 1, 1/3 → P̄ = 0.6; p_yes = 9/15 = 0.6, p_no = 0.4 → P̄_e = 0.52;
κ = 0.08 / 0.48 = 0.1667. The automatic report matches the majority on 3 of 5 rules (not empathy, not dead air).

R1 and R2 alone (Cohen): over the same 5 rules R1 says Y Y Y N Y, R2 Y N Y N N; p_o = 3/5, p_e = 0.8 × 0.4 +
0.2 × 0.6 = 0.44; κ = 0.16 / 0.56 = 0.2857.
"""

from __future__ import annotations

import pytest

from service.qa.calibration_result import AutomaticFinding, SubmittedScoring, agreement

AUTOMATIC = [AutomaticFinding(1, "hold.apology", 40.0), AutomaticFinding(2, "hold.apology", 95.0),
             AutomaticFinding(3, "promise.rash", 120.0), AutomaticFinding(5, "listen.dead_air", 150.0),
             AutomaticFinding(4, "closing.caller_hangs_up_first", 180.0)]
C, R = "confirmed", "rejected"
R1 = SubmittedScoring("R1", {1: C, 2: R, 3: C, 4: C, 5: R}, ["complaint.empathy_first"])
R2 = SubmittedScoring("R2", {1: C, 2: C, 3: R, 4: C, 5: R}, [])
R3 = SubmittedScoring("R3", {1: R, 2: R, 3: C, 4: C, 5: R}, ["complaint.empathy_first"])


def test_three_reviewers_fleiss_per_rule_agreement_and_the_automatic_report() -> None:
    found = agreement(AUTOMATIC, [R1, R2, R3])
    assert [(r.rule_id, r.yes, r.no, r.agreement, r.majority, r.automatic, r.automatic_agrees) for r in found.rules] == [
        ("closing.caller_hangs_up_first", 3, 0, 1.0, "yes", True, True),
        ("complaint.empathy_first", 2, 1, 0.3333, "yes", False, False),
        ("hold.apology", 2, 1, 0.3333, "yes", True, True),
        ("listen.dead_air", 0, 3, 1.0, "no", True, False),
        ("promise.rash", 2, 1, 0.3333, "yes", True, True),
    ]
    assert found.kappa is not None and (found.kappa.method, found.kappa.subjects, found.kappa.raters) == ("fleiss", 5, 3)
    assert found.kappa.value == pytest.approx(0.1667, abs=1e-4)
    assert found.automatic_agreement == 0.6
    assert [(f.finding_id, f.confirmed, f.rejected) for f in found.findings] == [
        (1, 2, 1), (2, 1, 2), (3, 2, 1), (5, 0, 3), (4, 3, 0)]
    assert found.breached["R2"] == ["closing.caller_hangs_up_first", "hold.apology"]


def test_two_reviewers_cohen() -> None:
    found = agreement(AUTOMATIC, [R1, R2])
    assert found.kappa is not None and (found.kappa.method, found.kappa.subjects) == ("cohen", 5)
    assert found.kappa.value == pytest.approx(0.2857, abs=1e-4)
    assert [r.agreement for r in found.rules] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert [r.majority for r in found.rules] == ["yes", "tie", "yes", "no", "tie"]
    assert found.automatic_agreement == pytest.approx(2 / 3, abs=1e-4)  # ties left out: closing, hold yes; dead air no


def test_full_agreement_on_one_category_has_no_kappa_and_no_rules_means_none() -> None:
    everyone_no = [SubmittedScoring(r, {1: R}, []) for r in ("a", "b", "c")]
    found = agreement([AutomaticFinding(1, "hold.apology", 1.0)], everyone_no)
    assert found.kappa is not None and found.kappa.value is None and found.rules[0].agreement == 1.0
    assert agreement([], [SubmittedScoring("a", {}, []), SubmittedScoring("b", {}, [])]).kappa is None
    with pytest.raises(ValueError):
        agreement(AUTOMATIC, [R1])
