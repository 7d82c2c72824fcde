"""Ranking metrics. All share one signature: `metric(ranked_ids, relevant_ids, k) -> float`.

Relevance is binary. Duplicates in `ranked_ids` count once (at their first position). An empty
relevant set gives 0.0 (callers skip such cases rather than average them in).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence


def _top_k(ranked_ids: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return list(dict.fromkeys(ranked_ids))[:k]


def hits_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """How many of the first k ids are relevant."""
    relevant = set(relevant_ids)
    return float(sum(1 for item in _top_k(ranked_ids, k) if item in relevant))


def hit_rate_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """1.0 if any of the first k ids is relevant, else 0.0."""
    return 1.0 if hits_at_k(ranked_ids, relevant_ids, k) else 0.0


def precision_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """Relevant ids among the first k, divided by k."""
    return hits_at_k(ranked_ids, relevant_ids, k) / k


def recall_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """Relevant ids among the first k, divided by the number of relevant ids."""
    relevant = set(relevant_ids)
    return hits_at_k(ranked_ids, relevant, k) / len(relevant) if relevant else 0.0


def ndcg_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """Binary-gain NDCG: sum of 1/log2(rank+1) over relevant hits, over the ideal for min(|relevant|, k)."""
    relevant = set(relevant_ids)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(_top_k(ranked_ids, k), start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def mrr_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """1/rank of the first relevant id among the first k, else 0.0."""
    relevant = set(relevant_ids)
    for rank, item in enumerate(_top_k(ranked_ids, k), start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0
