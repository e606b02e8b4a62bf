"""Agreement between raters beyond chance: Cohen's kappa (two raters) and Fleiss' kappa (any fixed number of
raters per subject), and the share of rater pairs that agree on one subject. Calibration (docs/qa.md) reads
them; nothing here knows about calls or rules.

Written out rather than taken from a statistics package: the formulas are a few lines, callwatch installs no
statistics package for the service, and the unit tests hold them to the textbooks' worked examples.

- Cohen (1960): κ = (p_o − p_e) / (1 − p_e), p_o the share of subjects both raters put in the same category,
  p_e = Σ_j p_A(j) · p_B(j) from each rater's own marginals.
- Fleiss (1971): for N subjects each rated by n raters into k categories, n_ij raters putting subject i in
  category j: P_i = (Σ_j n_ij² − n) / (n (n − 1)), P̄ the mean of the P_i, p_j = Σ_i n_ij / (N n),
  P̄_e = Σ_j p_j², κ = (P̄ − P̄_e) / (1 − P̄_e).

Both are undefined when chance agreement is certain (p_e = 1: every rating falls in one category); they answer
None then, and the caller says so rather than inventing a number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FleissParts:
    """Fleiss' kappa with the two terms it is made of, as the worked examples print them."""

    mean_agreement: float  # P̄
    chance_agreement: float  # P̄_e
    kappa: float | None


def pair_agreement(counts: Sequence[int]) -> float:
    """P_i: the share of the pairs of raters of one subject that put it in the same category, from how many
    raters chose each category. Needs two raters or more."""
    n = sum(counts)
    if n < 2 or any(c < 0 for c in counts):
        raise ValueError(f"a subject needs two raters or more and no negative count, got {list(counts)}")
    return (sum(c * c for c in counts) - n) / (n * (n - 1))


def fleiss(counts: Sequence[Sequence[int]]) -> FleissParts:
    """Fleiss' kappa of a subjects × categories table of rater counts; every subject rated by the same number
    of raters (two or more). Kappa None where chance agreement is 1."""
    if not counts:
        raise ValueError("no subjects to rate")
    width = len(counts[0])
    raters = sum(counts[0])
    if any(len(row) != width for row in counts) or any(sum(row) != raters for row in counts):
        raise ValueError("every subject needs the same categories and the same number of raters")
    mean_agreement = sum(pair_agreement(row) for row in counts) / len(counts)
    total = raters * len(counts)
    chance = sum((sum(row[j] for row in counts) / total) ** 2 for j in range(width))
    kappa = None if chance >= 1.0 else (mean_agreement - chance) / (1.0 - chance)
    return FleissParts(mean_agreement, chance, kappa)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    return fleiss(counts).kappa


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' ratings of the same subjects, in the same order. None where chance
    agreement is 1 (both raters put every subject in one and the same category)."""
    if len(first) != len(second) or not first:
        raise ValueError("two raters must rate the same subjects, at least one")
    m = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / m
    of_first, of_second = Counter(first), Counter(second)
    chance = sum(of_first[c] * of_second[c] for c in of_first) / (m * m)
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)
