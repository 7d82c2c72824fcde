"""The lab's one statistics module: bootstrap intervals, Wilson, McNemar, Wilcoxon; small pure functions.

Paired functions take the two variants' values in the same order: index i of `a` and of `b` is the same
simulated user with the same seed. Deltas are always B minus A.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

EXACT_MCNEMAR_BELOW = 25  # discordant pairs under this: exact binomial test, else chi-square (continuity corrected)


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values need the same length, got {x.shape} and {y.shape}")
    return x, y


def resamples(n: int, rng: np.random.Generator, rounds: int) -> np.ndarray:
    """`rounds` bootstrap draws of n indices (one row each), taken from `rng` in order."""
    return rng.integers(0, n, size=(rounds, n))


def bootstrap_means(values: Sequence[float] | np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
    """The mean of each of `rounds` bootstrap resamples of `values`."""
    data = np.asarray(values, dtype=float)
    return data[resamples(data.size, rng, rounds)].mean(axis=1)


def percentile_interval(means: np.ndarray, tails: tuple[float, float] = (2.5, 97.5)) -> tuple[float, float]:
    """The percentiles `tails` of the bootstrap means (95% by default)."""
    return (float(np.percentile(means, tails[0])), float(np.percentile(means, tails[1])))


def bootstrap_ci(values: Sequence[float], *, seed: int = 0, rounds: int = 2000, level: float = 0.95,
                 tails: tuple[float, float] | None = None,
                 empty: tuple[float, float] = (float("nan"), float("nan"))) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean (of paired differences: pairs resampled together); `tails`
    (percentiles) instead of `level` when given; `empty` for no values."""
    d = np.asarray(values, dtype=float)
    if d.size == 0:
        return empty
    tail = (1 - level) / 2 * 100
    return percentile_interval(bootstrap_means(d, np.random.default_rng(seed), rounds), tails or (tail, 100 - tail))


def wilson_ci(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default)."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_delta(a: Sequence[float], b: Sequence[float], *, seed: int = 0, rounds: int = 2000) -> dict:
    """Means of A and B, the mean paired delta B - A and its bootstrap 95% interval."""
    x, y = _paired(a, b)
    if x.size == 0:
        return {"n": 0, "a": None, "b": None, "delta": None, "ci95": [None, None]}
    low, high = bootstrap_ci(y - x, seed=seed, rounds=rounds)
    return {"n": int(x.size), "a": float(x.mean()), "b": float(y.mean()), "delta": float((y - x).mean()),
            "ci95": [low, high]}


def mcnemar(a_success: Sequence[bool], b_success: Sequence[bool]) -> dict:
    """McNemar's test on paired success: exact binomial for few discordant pairs, else chi-square.

    `a_only` counts pairs where only A succeeded, `b_only` where only B did; only these carry information.
    """
    x, y = _paired(a_success, b_success)
    a_only, b_only = int(np.sum((x > 0) & (y <= 0))), int(np.sum((x <= 0) & (y > 0)))
    n = a_only + b_only
    if n == 0:
        return {"a_only": 0, "b_only": 0, "method": "none (no discordant pairs)", "statistic": None, "p_value": 1.0}
    if n < EXACT_MCNEMAR_BELOW:
        p = stats.binomtest(min(a_only, b_only), n, 0.5).pvalue
        return {"a_only": a_only, "b_only": b_only, "method": "exact binomial", "statistic": float(min(a_only, b_only)),
                "p_value": float(min(1.0, p))}
    statistic = (abs(a_only - b_only) - 1) ** 2 / n
    return {"a_only": a_only, "b_only": b_only, "method": "chi-square, continuity corrected",
            "statistic": float(statistic), "p_value": float(stats.chi2.sf(statistic, 1))}


def wilcoxon(a: Sequence[float], b: Sequence[float]) -> dict:
    """Wilcoxon signed-rank test on paired values (e.g. turns); zero differences are dropped first.

    When every difference is zero the variants are indistinguishable on this sample: p = 1.
    """
    x, y = _paired(a, b)
    d = y - x
    nonzero = d[d != 0]
    out = {"n": int(d.size), "n_nonzero": int(nonzero.size),
           "median_delta": float(np.median(d)) if d.size else None}
    if nonzero.size == 0:
        return {**out, "statistic": None, "p_value": 1.0, "method": "all differences zero"}
    result = stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    return {**out, "statistic": float(result.statistic), "p_value": float(result.pvalue),
            "method": "signed-rank, zeros dropped"}


def cost_per_success(success: Sequence[bool], tokens: Sequence[float], latency_s: Sequence[float]) -> dict:
    """All tokens and all agent time spent, divided by the sessions that succeeded (None if none did)."""
    s = np.asarray(success, dtype=bool)
    wins = int(s.sum())
    total_tokens, total_latency = float(np.sum(tokens)), float(np.sum(latency_s))
    return {"successes": wins, "sessions": int(s.size), "tokens": total_tokens, "latency_s": total_latency,
            "tokens_per_success": total_tokens / wins if wins else None,
            "latency_s_per_success": total_latency / wins if wins else None}


def success_by_turn(success: Sequence[bool], turns: Sequence[int], max_turn: int) -> list[float]:
    """Share of sessions that succeeded by turn 1..max_turn."""
    s, t = np.asarray(success, dtype=bool), np.asarray(turns, dtype=float)
    n = max(s.size, 1)
    return [float(np.sum(s & (t <= k)) / n) for k in range(1, max_turn + 1)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% of the values at or below it)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100)
    return ordered[int(rank) - 1]


def summarize(values: list[float]) -> dict[str, float]:
    """Count, nearest-rank p50/p95/p99, max and mean of latencies (nan when there are none)."""
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values, default=float("nan")),
            "mean": sum(values) / len(values) if values else float("nan")}
