"""Ranking metrics for one query and bootstrap confidence intervals over many.

Pure functions over product-id lists: no Django, no I/O, deterministic for a given seed.
Definitions (the ones TREC and BEIR use):

- recall@k: share of the relevant products found in the first k results (0 when none is known).
- reciprocal rank: 1 / position of the first relevant result, 0 when none is ranked.
- nDCG@k: sum over the first k results of (2^grade - 1) / log2(position + 1), divided by the same
  sum for the best possible order of the judged grades. Without grades every relevant product
  has grade 1.
- zero result: the signal returned nothing at all for the query.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

RECALL_KS = (1, 5, 10, 50)
NDCG_K = 10
METRICS = (*(f"recall@{k}" for k in RECALL_KS), "mrr", f"ndcg@{NDCG_K}", "zero_result")


def recall_at_k(ranking: Sequence[int], relevant: frozenset[int] | set[int], k: int) -> float:
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: Sequence[int], relevant: frozenset[int] | set[int]) -> float:
    for position, product_id in enumerate(ranking, start=1):
        if product_id in relevant:
            return 1.0 / position
    return 0.0


def _dcg(grades: Sequence[float]) -> float:
    return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at_k(ranking: Sequence[int], grades: Mapping[int, int], k: int = NDCG_K) -> float:
    """nDCG@k with graded relevance `grades` ({product id: 0-3}); 0 when nothing is relevant."""
    ideal = _dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return _dcg([grades.get(pid, 0) for pid in ranking[:k]]) / ideal


def query_metrics(ranking: Sequence[int], grades: Mapping[int, int]) -> dict[str, float]:
    """Every metric in METRICS for one ranked list against one query's grades."""
    relevant = frozenset(pid for pid, g in grades.items() if g > 0)
    values = {f"recall@{k}": recall_at_k(ranking, relevant, k) for k in RECALL_KS}
    values["mrr"] = reciprocal_rank(ranking, relevant)
    values[f"ndcg@{NDCG_K}"] = ndcg_at_k(ranking, grades, NDCG_K)
    values["zero_result"] = 0.0 if len(ranking) else 1.0
    return values


@dataclass(frozen=True)
class Estimate:
    """A mean over queries with its bootstrap percentile interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_indices(n: int, *, resamples: int, seed: int) -> NDArray[np.int64]:
    """(resamples, n) query indices drawn with replacement; the same seed gives the same draws,
    so signals measured on one query set are compared on identical resamples (paired)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def bootstrap_estimate(
    values: Sequence[float], *, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """Mean of `values` and its percentile-bootstrap interval over queries."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Estimate(0.0, 0.0, 0.0, 0)
    mean = float(data.mean())
    if data.size == 1 or resamples <= 0:
        return Estimate(mean, mean, mean, int(data.size))
    means = data[bootstrap_indices(data.size, resamples=resamples, seed=seed)].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(mean, float(low), float(high), int(data.size))


def paired_difference(
    new: Sequence[float],
    old: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """Mean of new - old over the same queries, with a bootstrap interval of that difference."""
    if len(new) != len(old):
        raise ValueError("paired values must cover the same queries")
    diff = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    return bootstrap_estimate(diff, resamples=resamples, seed=seed, confidence=confidence)
