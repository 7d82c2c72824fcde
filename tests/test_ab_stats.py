"""Paired A/B statistics against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from evals.stats import (bootstrap_ci, cost_per_success, mcnemar, paired_delta, success_by_turn,
                            wilcoxon)


def test_paired_delta_is_b_minus_a_and_a_constant_shift_has_a_point_interval():
    out = paired_delta([1, 2, 3, 4], [3, 4, 5, 6], seed=1)
    assert out["n"] == 4 and out["a"] == 2.5 and out["b"] == 4.5 and out["delta"] == 2.0
    assert out["ci95"] == [2.0, 2.0]  # every resample of identical differences has mean 2


def test_bootstrap_interval_is_seeded_and_inside_the_range_of_the_differences():
    diffs = [0, 0, 1, 1, 1, -1, 0, 1]  # mean 3/8
    first, again = bootstrap_ci(diffs, seed=7), bootstrap_ci(diffs, seed=7)
    assert first == again
    low, high = first
    assert -1 <= low < 0.375 < high <= 1


def test_paired_values_must_have_the_same_length():
    with pytest.raises(ValueError, match="same length"):
        paired_delta([1, 2], [1])


def test_mcnemar_exact_for_few_discordant_pairs():
    # A only: 1 pair, B only: 5 pairs, 4 concordant. Two-sided exact: 2 * P(X <= 1 | n=6, p=1/2) = 2 * 7/64.
    a = [1, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    b = [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    out = mcnemar(a, b)
    assert (out["a_only"], out["b_only"]) == (1, 5) and out["method"] == "exact binomial"
    assert math.isclose(out["p_value"], 14 / 64)


def test_mcnemar_chi_square_for_many_discordant_pairs():
    # 10 A-only, 20 B-only: (|10 - 20| - 1)^2 / 30 = 2.7; P(chi2_1 > 2.7) = erfc(sqrt(1.35)).
    a = [1] * 10 + [0] * 20 + [1] * 5
    b = [0] * 10 + [1] * 20 + [1] * 5
    out = mcnemar(a, b)
    assert math.isclose(out["statistic"], 2.7)
    assert math.isclose(out["p_value"], math.erfc(math.sqrt(1.35)), rel_tol=1e-9)


def test_mcnemar_without_discordant_pairs_is_p_one():
    out = mcnemar([1, 0, 1], [1, 0, 1])
    assert out["p_value"] == 1.0 and out["statistic"] is None


def test_wilcoxon_exact_when_every_difference_has_the_same_sign():
    # Differences 1..5, all positive: W- = 0; exact two-sided p = 2 / 2^5.
    out = wilcoxon([5, 5, 5, 5, 5], [6, 7, 8, 9, 10])
    assert out["statistic"] == 0.0 and math.isclose(out["p_value"], 2 / 32)
    assert out["n_nonzero"] == 5 and out["median_delta"] == 3.0


def test_wilcoxon_drops_zero_differences_and_all_zero_is_p_one():
    # Zeros dropped: differences -1, 2 -> ranks 1, 2; W- = 1, W+ = 2; exact p = 1 (4 equally likely sign sets).
    out = wilcoxon([3, 3, 3, 3], [3, 2, 5, 3])
    assert out["n_nonzero"] == 2 and out["statistic"] == 1.0 and math.isclose(out["p_value"], 1.0)
    same = wilcoxon([4, 15, 2], [4, 15, 2])
    assert same["p_value"] == 1.0 and same["statistic"] is None and same["method"] == "all differences zero"


def test_cost_per_success_divides_everything_spent_by_the_wins():
    out = cost_per_success([True, False, True], [100, 200, 300], [1.0, 2.0, 3.0])
    assert out["tokens_per_success"] == 300.0 and out["latency_s_per_success"] == 3.0 and out["successes"] == 2
    assert cost_per_success([False], [50], [1.0])["tokens_per_success"] is None


def test_success_by_turn_is_cumulative():
    assert success_by_turn([True, True, False, True], [1, 3, 15, 3], 4) == [0.25, 0.25, 0.75, 0.75]
