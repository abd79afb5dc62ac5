"""Ranking metrics against hand-computed values; bootstrap determinism."""

import math

import pytest

from search.evaluation.metrics import (
    bootstrap_estimate,
    ndcg_at_k,
    paired_difference,
    query_metrics,
    recall_at_k,
    reciprocal_rank,
)


def test_recall_at_k_counts_relevant_in_the_first_k():
    ranking = [5, 1, 7, 2, 9]
    relevant = frozenset({1, 2, 3, 4})
    assert recall_at_k(ranking, relevant, 1) == 0.0
    assert recall_at_k(ranking, relevant, 2) == 0.25
    assert recall_at_k(ranking, relevant, 5) == 0.5
    assert recall_at_k(ranking, frozenset(), 5) == 0.0


def test_reciprocal_rank_is_one_over_first_relevant_position():
    assert reciprocal_rank([5, 1, 7], frozenset({7, 1})) == 0.5
    assert reciprocal_rank([5, 6], frozenset({7})) == 0.0
    assert reciprocal_rank([7], frozenset({7})) == 1.0


def test_ndcg_hand_computed_with_grades():
    # ranking: grade 1, grade 3, nothing; ideal: 3, 1
    grades = {10: 1, 20: 3, 30: 0}
    dcg = (2**1 - 1) / math.log2(2) + (2**3 - 1) / math.log2(3)
    idcg = (2**3 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert ndcg_at_k([10, 20, 30], grades, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k([20, 10], grades, 10) == pytest.approx(1.0)
    assert ndcg_at_k([30, 40], grades, 10) == 0.0
    # Cut at k: the relevant product at position 3 does not count for k = 2.
    assert ndcg_at_k([1, 2, 20], grades, 2) == 0.0


def test_query_metrics_zero_result_and_binary_ndcg():
    values = query_metrics([], {1: 1})
    assert values["zero_result"] == 1.0
    assert values["mrr"] == 0.0
    got = query_metrics([2, 1], {1: 1, 2: 0})
    assert got["zero_result"] == 0.0
    assert got["mrr"] == 0.5
    assert got["recall@1"] == 0.0
    assert got["recall@5"] == 1.0
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(3))


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_mean():
    values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.75, 1.0]
    a = bootstrap_estimate(values, resamples=500, seed=7)
    b = bootstrap_estimate(values, resamples=500, seed=7)
    c = bootstrap_estimate(values, resamples=500, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.mean == pytest.approx(sum(values) / len(values))
    assert a.low <= a.mean <= a.high
    assert 0.0 <= a.low < a.high <= 1.0
    assert a.n == 8


def test_bootstrap_of_constant_values_has_no_width_and_empty_is_zero():
    assert bootstrap_estimate([0.5] * 10, seed=1).low == pytest.approx(0.5)
    assert bootstrap_estimate([0.5] * 10, seed=1).high == pytest.approx(0.5)
    assert bootstrap_estimate([]).n == 0


def test_paired_difference_detects_a_consistent_gain():
    old = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    new = [v + 0.2 for v in old]
    diff = paired_difference(new, old, seed=0)
    assert diff.mean == pytest.approx(0.2)
    assert diff.low > 0
    with pytest.raises(ValueError, match="same queries"):
        paired_difference([1.0], [1.0, 2.0])
