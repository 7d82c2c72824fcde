"""iEvaLM's RecMetric, as counted there: every label of a sample is one case (src/model/metric.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

KS = (1, 10, 50)
NAMES = tuple(f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in KS)


def label_scores(ranked: Sequence[str], label: str) -> dict[str, float]:
    """recall@k = 1 if the label is in the first k; ndcg@k = 1/log2(rank+2); mrr@k = 1/(rank+1) (0-based rank)."""
    out: dict[str, float] = {}
    rank = list(ranked).index(label) if label in ranked else None
    for k in KS:
        hit = rank is not None and rank < k
        out[f"recall@{k}"] = 1.0 if hit else 0.0
        out[f"ndcg@{k}"] = 1.0 / math.log2(rank + 2) if hit else 0.0
        out[f"mrr@{k}"] = 1.0 / (rank + 1) if hit else 0.0
    return out


def sample_sums(ranked: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Per-sample sums over its labels, plus the label count: the unit the bootstrap resamples."""
    sums = dict.fromkeys(NAMES, 0.0)
    for label in labels:
        for name, value in label_scores(ranked, label).items():
            sums[name] += value
    sums["count"] = float(len(labels))
    return sums


def summarise(rows: Sequence[dict[str, float]], *, seed: int = 0, rounds: int = 2000) -> dict[str, dict]:
    """Each metric averaged over labels, with a 95% percentile-bootstrap interval over samples (scipy)."""
    counts = np.array([r["count"] for r in rows], dtype=float)
    out: dict[str, dict] = {"labels": {"value": float(counts.sum())}, "samples": {"value": float(len(rows))}}
    for name in NAMES:
        sums = np.array([r[name] for r in rows], dtype=float)
        out[name] = {"value": float(sums.sum() / counts.sum()) if counts.sum() else float("nan"),
                     "ci95": _ratio_ci(sums, counts, seed=seed, rounds=rounds)}
    return out


def _ratio_ci(sums: np.ndarray, counts: np.ndarray, *, seed: int, rounds: int) -> list[float | None]:
    if counts.size < 2 or counts.sum() == 0 or np.all(sums == sums[0]) and np.all(counts == counts[0]):
        value = float(sums.sum() / counts.sum()) if counts.sum() else None
        return [value, value]
    result = stats.bootstrap((sums, counts), lambda s, c, axis=-1: s.sum(axis=axis) / c.sum(axis=axis),
                             paired=True, vectorized=True, n_resamples=rounds, method="percentile",
                             random_state=np.random.default_rng(seed))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]
