"""Retrieval metrics as small pure functions with explicit edge cases.

Every function takes the *binary relevance of a ranked list*: ``relevance[i]`` is true when the item at
rank ``i + 1`` is relevant to the query. ``n_relevant`` is how many relevant items the whole gallery
holds for that query (they may lie beyond the ranked list); it defaults to the number of relevant items
in ``relevance`` itself.

Conventions (the same in the scalar and in the batched versions):

* ``k`` must be a positive integer; a list shorter than ``k`` counts its missing ranks as not relevant.
* precision@k = relevant in the first k / k (so an empty list scores 0).
* recall@k = relevant in the first k / ``n_relevant``; 0 when ``n_relevant`` is 0.
* AP@k = sum over relevant ranks i <= k of precision@i, divided by ``min(k, n_relevant)``; 0 when
  ``n_relevant`` is 0. A perfect ranking scores 1 even when fewer than k items are relevant.
* nDCG@k with binary gains: sum of 1 / log2(i + 1) over relevant ranks i <= k, divided by the same sum
  for an ideal ranking of ``min(k, n_relevant)`` relevant items; 0 when ``n_relevant`` is 0.
* The mean over an empty set of queries, and a macro average with no labels, is NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "average_precision_at_k",
    "average_precision_at_k_batch",
    "macro_average",
    "mean_over_queries",
    "ndcg_at_k",
    "ndcg_at_k_batch",
    "per_label_means",
    "precision_at_k",
    "precision_at_k_batch",
    "recall_at_k",
    "recall_at_k_batch",
]

Relevance = Sequence[bool] | Sequence[int] | np.ndarray


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _top(relevance: Relevance, k: int) -> np.ndarray:
    rel = np.asarray(relevance, dtype=bool).reshape(-1)
    return rel[: _check_k(k)]


def _n_relevant(relevance: Relevance, n_relevant: int | None) -> int:
    in_list = int(np.count_nonzero(np.asarray(relevance, dtype=bool)))
    if n_relevant is None:
        return in_list
    if n_relevant < in_list:
        raise ValueError(f"n_relevant={n_relevant} is smaller than the {in_list} relevant items in the list")
    return int(n_relevant)


def precision_at_k(relevance: Relevance, k: int) -> float:
    """Fraction of the first ``k`` ranks that hold a relevant item."""
    top = _top(relevance, k)
    return float(np.count_nonzero(top)) / k


def recall_at_k(relevance: Relevance, k: int, n_relevant: int | None = None) -> float:
    """Fraction of all relevant items that appear in the first ``k`` ranks (0 if there are none)."""
    top = _top(relevance, k)
    total = _n_relevant(relevance, n_relevant)
    return float(np.count_nonzero(top)) / total if total else 0.0


def average_precision_at_k(relevance: Relevance, k: int, n_relevant: int | None = None) -> float:
    """AP@k normalised by ``min(k, n_relevant)`` (0 if there are no relevant items)."""
    top = _top(relevance, k)
    total = _n_relevant(relevance, n_relevant)
    if total == 0:
        return 0.0
    hits = np.cumsum(top)
    ranks = np.arange(1, top.size + 1)
    return float(np.sum((hits / ranks)[top])) / min(k, total)


def ndcg_at_k(relevance: Relevance, k: int, n_relevant: int | None = None) -> float:
    """Binary-gain nDCG@k (0 if there are no relevant items)."""
    top = _top(relevance, k)
    total = _n_relevant(relevance, n_relevant)
    if total == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(discounts[: top.size][top]))
    idcg = float(np.sum(discounts[: min(k, total)]))
    return dcg / idcg


# --- batched versions: rows are queries -------------------------------------------------------------
def _top_batch(relevance: np.ndarray, k: int) -> np.ndarray:
    rel = np.asarray(relevance, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"batched relevance must be 2-d (queries, ranks), got shape {rel.shape}")
    return rel[:, : _check_k(k)]


def _n_relevant_batch(relevance: np.ndarray, n_relevant: np.ndarray | None) -> np.ndarray:
    in_list = np.count_nonzero(np.asarray(relevance, dtype=bool), axis=1)
    if n_relevant is None:
        return in_list
    total = np.asarray(n_relevant, dtype=np.int64).reshape(-1)
    if total.shape[0] != in_list.shape[0]:
        raise ValueError(f"{total.shape[0]} n_relevant values for {in_list.shape[0]} queries")
    if np.any(total < in_list):
        raise ValueError("n_relevant is smaller than the relevant items in the list for some query")
    return total


def precision_at_k_batch(relevance: np.ndarray, k: int) -> np.ndarray:
    """:func:`precision_at_k` for each row of a (queries, ranks) relevance matrix."""
    top = _top_batch(relevance, k)
    return np.count_nonzero(top, axis=1) / float(k)


def recall_at_k_batch(relevance: np.ndarray, k: int, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """:func:`recall_at_k` for each row."""
    top = _top_batch(relevance, k)
    total = _n_relevant_batch(relevance, n_relevant)
    hits = np.count_nonzero(top, axis=1).astype(np.float64)
    return np.divide(hits, total, out=np.zeros_like(hits), where=total > 0)


def average_precision_at_k_batch(relevance: np.ndarray, k: int, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """:func:`average_precision_at_k` for each row."""
    top = _top_batch(relevance, k)
    total = _n_relevant_batch(relevance, n_relevant)
    ranks = np.arange(1, top.shape[1] + 1, dtype=np.float64)
    summed = np.sum(np.where(top, np.cumsum(top, axis=1) / ranks, 0.0), axis=1)
    denom = np.minimum(k, total).astype(np.float64)
    return np.divide(summed, denom, out=np.zeros_like(summed), where=denom > 0)


def ndcg_at_k_batch(relevance: np.ndarray, k: int, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """:func:`ndcg_at_k` for each row."""
    top = _top_batch(relevance, k)
    total = _n_relevant_batch(relevance, n_relevant)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = np.sum(np.where(top, discounts[: top.shape[1]], 0.0), axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(k, total)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


# --- averages ---------------------------------------------------------------------------------------
def mean_over_queries(values: Sequence[float] | np.ndarray) -> float:
    """Plain mean of per-query values; NaN for no queries."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return float(arr.mean()) if arr.size else float("nan")


def per_label_means(values: Sequence[float] | np.ndarray, labels: Sequence[Hashable]) -> dict[Hashable, float]:
    """Mean of the per-query values of each label, labels in sorted order."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != len(labels):
        raise ValueError(f"{arr.size} values for {len(labels)} labels")
    groups: dict[Hashable, list[float]] = {}
    for value, label in zip(arr.tolist(), labels, strict=True):
        groups.setdefault(label, []).append(value)
    return {label: float(np.mean(groups[label])) for label in sorted(groups, key=str)}


def macro_average(values: Sequence[float] | np.ndarray, labels: Sequence[Hashable]) -> float:
    """Mean over labels of the per-label mean, so every label weighs the same; NaN for no labels."""
    means = per_label_means(values, labels)
    return float(np.mean(list(means.values()))) if means else float("nan")
