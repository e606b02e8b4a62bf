"""The agreement maths against published worked examples, not against numbers this code printed.

- Cohen's kappa: Wikipedia, "Cohen's kappa", the worked example (50 grant proposals, two readers: 20 both yes,
  15 both no, 5 yes/no, 10 no/yes; p_o = 0.7, p_e = 0.5, κ = 0.4) and the two tables of "Same percentages but
  different numbers" (κ = 0.1304 and 0.2593).
- Fleiss' kappa: Wikipedia, "Fleiss' kappa", the worked example (10 subjects, 14 raters, 5 categories;
  P̄ = 0.378, P̄_e = 0.213, κ = 0.210), and its first subject, on which all 14 agree (P_1 = 1.000), and its
  second (P_2 = 0.253).
"""

from __future__ import annotations

import random

import pytest

from service.qa.kappa import cohen_kappa, fleiss, fleiss_kappa, pair_agreement


def _two_readers(both_yes: int, yes_no: int, no_yes: int, both_no: int) -> tuple[list[str], list[str]]:
    """Reader A's and reader B's ratings from the 2×2 table (A's answer first)."""
    pairs = [("yes", "yes")] * both_yes + [("yes", "no")] * yes_no + [("no", "yes")] * no_yes + [("no", "no")] * both_no
    return [a for a, _ in pairs], [b for _, b in pairs]


def test_cohen_the_grant_proposals_example_is_0_4() -> None:
    assert cohen_kappa(*_two_readers(20, 5, 10, 15)) == pytest.approx(0.4)


@pytest.mark.parametrize("table, kappa", [((45, 15, 25, 15), 0.1304), ((25, 35, 5, 35), 0.2593)])
def test_cohen_same_agreement_different_marginals(table: tuple[int, int, int, int], kappa: float) -> None:
    assert cohen_kappa(*_two_readers(*table)) == pytest.approx(kappa, abs=5e-5)


# Wikipedia's Fleiss' kappa example: rows are subjects, columns the five categories, cells how many of the 14
# raters chose that category.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_the_wikipedia_example_is_0_210() -> None:
    parts = fleiss(WIKIPEDIA_FLEISS)
    assert parts.mean_agreement == pytest.approx(0.378, abs=5e-4)
    assert parts.chance_agreement == pytest.approx(0.213, abs=5e-4)
    assert parts.kappa == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(WIKIPEDIA_FLEISS) == parts.kappa


def test_pair_agreement_of_the_wikipedia_subjects() -> None:
    assert pair_agreement(WIKIPEDIA_FLEISS[0]) == 1.0
    assert pair_agreement(WIKIPEDIA_FLEISS[1]) == pytest.approx(0.253, abs=5e-4)
    assert pair_agreement([1, 1]) == 0.0 and pair_agreement([2, 0]) == 1.0  # two raters: they agree or not


def test_cohen_matches_an_independent_implementation_on_random_ratings() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(15)
    for _ in range(50):
        m = rng.randint(2, 40)
        a = [rng.choice("xyz") for _ in range(m)]
        b = [x if rng.random() < 0.6 else rng.choice("xyz") for x in a]
        ours = cohen_kappa(a, b)
        if ours is not None:
            assert ours == pytest.approx(cohen_kappa_score(a, b))


def test_two_raters_fleiss_and_cohen_differ_only_by_pooled_marginals() -> None:
    # With identical marginals the two coefficients coincide (Fleiss pools them; Cohen keeps each rater's).
    a, b = ["y", "y", "n", "n", "y", "n"], ["y", "n", "y", "n", "y", "n"]
    counts = [[(x == "y") + (z == "y"), (x == "n") + (z == "n")] for x, z in zip(a, b)]
    assert fleiss_kappa(counts) == pytest.approx(cohen_kappa(a, b))


def test_kappa_is_undefined_when_chance_agreement_is_certain() -> None:
    assert cohen_kappa(["no"] * 4, ["no"] * 4) is None
    assert fleiss_kappa([[3, 0], [3, 0]]) is None
    assert fleiss(WIKIPEDIA_FLEISS[:1]).kappa is None  # one subject, all in one category


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError):
        fleiss([[1, 2], [2, 2]])  # 3 raters, then 4
    with pytest.raises(ValueError):
        pair_agreement([1, 0])
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])
