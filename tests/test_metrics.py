"""The retrieval metrics against hand-worked examples and brute-force versions on seeded random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.evaluate import metrics as M


# --- brute-force reference versions (written from the definitions, loop by loop) ---------------------
def bf_precision(rel: list[bool], k: int) -> float:
    return sum(1 for i in range(k) if i < len(rel) and rel[i]) / k


def bf_recall(rel: list[bool], k: int, total: int) -> float:
    if total == 0:
        return 0.0
    return sum(1 for i in range(min(k, len(rel))) if rel[i]) / total


def bf_average_precision(rel: list[bool], k: int, total: int) -> float:
    if total == 0:
        return 0.0
    score = 0.0
    for i in range(min(k, len(rel))):
        if rel[i]:
            score += bf_precision(rel, i + 1)
    return score / min(k, total)


def bf_ndcg(rel: list[bool], k: int, total: int) -> float:
    if total == 0:
        return 0.0
    # the whole gallery's relevance: the list, then the relevant items it missed
    full = list(rel) + [True] * (total - sum(rel))

    def dcg(r: list[bool]) -> float:
        return sum((1.0 if r[i] else 0.0) / math.log2(i + 2) for i in range(min(k, len(r))))

    return dcg(list(rel)) / dcg(sorted(full, reverse=True))


ranked = st.lists(st.booleans(), max_size=30)
ks = st.integers(min_value=1, max_value=40)
missed = st.integers(min_value=0, max_value=12)


# --- hand-worked examples -----------------------------------------------------------------------------
def test_hand_worked_example():
    rel = [1, 0, 1, 0, 0]  # 3 relevant in the gallery, 2 of them ranked 1 and 3
    assert M.precision_at_k(rel, 5) == pytest.approx(2 / 5)
    assert M.precision_at_k(rel, 1) == 1.0
    assert M.precision_at_k(rel, 2) == 0.5
    assert M.recall_at_k(rel, 5, n_relevant=3) == pytest.approx(2 / 3)
    assert M.average_precision_at_k(rel, 5, n_relevant=3) == pytest.approx((1 / 1 + 2 / 3) / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(rel, 5, n_relevant=3) == pytest.approx((1 + 1 / math.log2(4)) / ideal)


def test_average_precision_is_normalised_by_min_k_and_relevant():
    # 20 relevant in the gallery, the first 10 ranks all relevant: a perfect top 10
    assert M.average_precision_at_k([True] * 10, 10, n_relevant=20) == pytest.approx(1.0)
    # 2 relevant, both found at ranks 1 and 2: also perfect, even though 8 of 10 ranks are wrong
    assert M.average_precision_at_k([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 10, n_relevant=2) == pytest.approx(1.0)
    # the only relevant item at rank 4
    assert M.average_precision_at_k([0, 0, 0, 1], 10, n_relevant=1) == pytest.approx(0.25)


def test_no_relevant_items_score_zero():
    rel = [False] * 10
    assert M.precision_at_k(rel, 10) == 0.0
    assert M.recall_at_k(rel, 10, n_relevant=0) == 0.0
    assert M.average_precision_at_k(rel, 10, n_relevant=0) == 0.0
    assert M.ndcg_at_k(rel, 10, n_relevant=0) == 0.0


def test_k_larger_than_the_list_counts_missing_ranks_as_wrong():
    assert M.precision_at_k([True, True], 10) == pytest.approx(0.2)
    assert M.recall_at_k([True, True], 10) == 1.0
    assert M.average_precision_at_k([True, True], 10) == 1.0
    assert M.ndcg_at_k([True, True], 10) == pytest.approx(1.0)
    assert M.ndcg_at_k([False, True], 10) == pytest.approx((1 / math.log2(3)) / 1.0)


def test_empty_list_scores_zero():
    for fn in (M.precision_at_k, M.recall_at_k, M.average_precision_at_k, M.ndcg_at_k):
        assert fn([], 10) == 0.0
    assert M.recall_at_k([], 10, n_relevant=4) == 0.0
    assert M.average_precision_at_k([], 10, n_relevant=4) == 0.0


def test_only_the_first_k_ranks_count():
    rel = [0, 0, 1, 1, 1]
    assert M.precision_at_k(rel, 2) == 0.0
    assert M.recall_at_k(rel, 2) == 0.0
    assert M.average_precision_at_k(rel, 2) == 0.0
    assert M.ndcg_at_k(rel, 2) == 0.0


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_is_refused(k):
    with pytest.raises(ValueError, match="k must be"):
        M.precision_at_k([True], k)


def test_n_relevant_below_the_hits_in_the_list_is_refused():
    with pytest.raises(ValueError, match="n_relevant"):
        M.recall_at_k([True, True], 5, n_relevant=1)
    with pytest.raises(ValueError, match="n_relevant"):
        M.average_precision_at_k_batch(np.ones((2, 3), bool), 3, np.array([3, 2]))


def test_mean_and_macro_average_of_nothing_are_nan():
    assert math.isnan(M.mean_over_queries([]))
    assert math.isnan(M.macro_average([], []))


def test_macro_average_weighs_every_label_the_same():
    values = [1.0, 1.0, 1.0, 0.0]
    labels = ["T-Shirt", "T-Shirt", "T-Shirt", "Hat"]
    assert M.mean_over_queries(values) == pytest.approx(0.75)
    assert M.macro_average(values, labels) == pytest.approx(0.5)
    assert M.per_label_means(values, labels) == {"Hat": 0.0, "T-Shirt": 1.0}


def test_per_label_means_needs_one_label_per_value():
    with pytest.raises(ValueError):
        M.per_label_means([1.0, 0.0], ["a"])


# --- against brute force ------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(rel=ranked, k=ks, extra=missed)
def test_scalar_metrics_match_brute_force(rel, k, extra):
    total = sum(rel) + extra
    assert M.precision_at_k(rel, k) == pytest.approx(bf_precision(rel, k))
    assert M.recall_at_k(rel, k, total) == pytest.approx(bf_recall(rel, k, total))
    assert M.average_precision_at_k(rel, k, total) == pytest.approx(bf_average_precision(rel, k, total))
    assert M.ndcg_at_k(rel, k, total) == pytest.approx(bf_ndcg(rel, k, total))


@settings(max_examples=200, deadline=None)
@given(rel=ranked, k=ks, extra=missed)
def test_metrics_stay_in_the_unit_interval(rel, k, extra):
    total = sum(rel) + extra
    for value in (
        M.precision_at_k(rel, k),
        M.recall_at_k(rel, k, total),
        M.average_precision_at_k(rel, k, total),
        M.ndcg_at_k(rel, k, total),
    ):
        assert 0.0 <= value <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(n_rel=st.integers(min_value=1, max_value=15), k=ks)
def test_a_perfect_ranking_scores_one(n_rel, k):
    rel = [True] * n_rel + [False] * 20
    assert M.average_precision_at_k(rel, k) == pytest.approx(1.0)
    assert M.ndcg_at_k(rel, k) == pytest.approx(1.0)
    assert M.precision_at_k(rel, k) == pytest.approx(min(k, n_rel) / k)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10, 25])
def test_batched_metrics_match_the_scalar_ones(seed, k):
    rng = np.random.default_rng(seed)
    rel = rng.random((200, 12)) < rng.random((200, 1))  # a different hit rate per query
    total = rel.sum(axis=1) + rng.integers(0, 6, size=200) * (rng.random(200) < 0.8)
    pairs = [
        (M.precision_at_k_batch(rel, k), [M.precision_at_k(r, k) for r in rel]),
        (
            M.recall_at_k_batch(rel, k, total),
            [M.recall_at_k(r, k, t) for r, t in zip(rel, total, strict=True)],
        ),
        (
            M.average_precision_at_k_batch(rel, k, total),
            [M.average_precision_at_k(r, k, t) for r, t in zip(rel, total, strict=True)],
        ),
        (M.ndcg_at_k_batch(rel, k, total), [M.ndcg_at_k(r, k, t) for r, t in zip(rel, total, strict=True)]),
    ]
    for batched, scalar in pairs:
        np.testing.assert_allclose(batched, scalar, rtol=1e-12, atol=1e-12)


def test_batched_default_n_relevant_is_the_hits_in_each_row():
    rel = np.array([[1, 0, 1], [0, 0, 0]], dtype=bool)
    np.testing.assert_allclose(M.recall_at_k_batch(rel, 3), [1.0, 0.0])
    np.testing.assert_allclose(M.average_precision_at_k_batch(rel, 3), [(1 + 2 / 3) / 2, 0.0])


def test_batched_metrics_refuse_a_flat_list():
    with pytest.raises(ValueError, match="2-d"):
        M.precision_at_k_batch(np.array([True, False]), 1)
