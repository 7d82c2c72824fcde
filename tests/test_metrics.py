"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from evals.metrics import hit_rate_at_k, hits_at_k, mrr_at_k, ndcg_at_k, precision_at_k, recall_at_k

RANKED = ["a", "b", "c", "d", "e"]


def test_recall_counts_hits_over_all_relevant():
    # b and d are in the top 4; f is relevant but never ranked: 2 / 3.
    assert recall_at_k(RANKED, {"b", "d", "f"}, 4) == pytest.approx(2 / 3)
    # Only "b" is in the top 2.
    assert recall_at_k(RANKED, {"b", "d", "f"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, {"z"}, 5) == 0.0
    assert recall_at_k(RANKED, set(), 5) == 0.0


def test_precision_and_hits():
    assert hits_at_k(RANKED, {"a", "e"}, 5) == 2.0
    assert precision_at_k(RANKED, {"a", "e"}, 5) == pytest.approx(0.4)
    # k larger than the list: precision still divides by k.
    assert precision_at_k(["a"], {"a"}, 10) == pytest.approx(0.1)
    assert hit_rate_at_k(RANKED, {"e"}, 4) == 0.0
    assert hit_rate_at_k(RANKED, {"e"}, 5) == 1.0


def test_ndcg_by_hand():
    # Relevant {b, d}: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161.
    # Ideal (2 relevant at ranks 1, 2) = 1 + 1/log2(3) = 1.63093. NDCG = 0.65092.
    assert ndcg_at_k(RANKED, {"b", "d"}, 10) == pytest.approx(0.650921, abs=1e-6)
    # Cut at k=2: only b counts; ideal still uses min(|rel|, k) = 2 positions.
    assert ndcg_at_k(RANKED, {"b", "d"}, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    # Perfect ranking gives 1; no relevant gives 0.
    assert ndcg_at_k(RANKED, {"a", "b"}, 5) == pytest.approx(1.0)
    assert ndcg_at_k(RANKED, set(), 5) == 0.0
    # More relevant ids than k: the ideal fills all k slots; hits at ranks 1 and 3 of k=3.
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKED, {"a", "c", "x", "y"}, 3) == pytest.approx((1 + 1 / math.log2(4)) / ideal)


def test_duplicates_count_once_and_mrr():
    assert recall_at_k(["a", "a", "b"], {"b"}, 2) == pytest.approx(1.0)
    assert mrr_at_k(RANKED, {"c", "e"}, 5) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, {"e"}, 3) == 0.0


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        recall_at_k(RANKED, {"a"}, 0)
