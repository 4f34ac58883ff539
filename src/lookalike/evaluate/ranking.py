"""Exact ranking of a task's gallery for its queries, and scoring a ranking under a relevance criterion.

Ranking is exact cosine similarity (a float32 matrix product of L2-normalised rows) with ties broken by
gallery order, so the numbers are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.evaluate import metrics as M
from lookalike.evaluate.datasets import Criterion

__all__ = ["CriterionResult", "rank_exact", "score_ranking"]


# --- ranking ------------------------------------------------------------------------------------------
def rank_exact(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    exclude: Sequence[int] | np.ndarray | None = None,
    chunk: int = 512,
    mirrored: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` gallery indices and cosine scores per query, best first, ties by gallery order.

    ``exclude[i]`` (>= 0) is a gallery index never returned for query i. Rows with fewer than ``k``
    candidates are padded with index -1 and score -inf. ``mirrored``: vectors of the queries' mirror
    images; a gallery item then scores the better of its two similarities (as a catalogue search).
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    nq, ng = q.shape[0], g.shape[0]
    excl = np.full(nq, -1, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
    top_idx = np.full((nq, k), -1, dtype=np.int64)
    top_score = np.full((nq, k), -np.inf, dtype=np.float32)
    for start in range(0, nq, chunk):
        sims = q[start : start + chunk] @ g.T
        if mirrored is not None:
            np.maximum(sims, np.asarray(mirrored, dtype=np.float32)[start : start + chunk] @ g.T, out=sims)
        for r in range(sims.shape[0]):
            row = sims[r]
            bad = excl[start + r]
            if 0 <= bad < ng:
                row[bad] = -np.inf
            n_cand = ng - (1 if 0 <= bad < ng else 0)
            take = min(k, n_cand)
            if take == 0:
                continue
            kth = np.partition(row, ng - take)[ng - take]
            cand = np.flatnonzero(row >= kth)
            if 0 <= bad < ng:
                cand = cand[cand != bad]
            order = np.lexsort((cand, -row[cand]))[:take]
            top_idx[start + r, :take] = cand[order]
            top_score[start + r, :take] = row[cand[order]]
    return top_idx, top_score


# --- scoring ------------------------------------------------------------------------------------------
@dataclass
class CriterionResult:
    """The metrics of one relevance criterion (means over queries, macro over query labels)."""

    name: str
    metrics: dict[str, float]
    per_label: dict[str, float]
    label_counts: dict[str, int]
    relevance: np.ndarray = field(repr=False)
    per_query: dict[str, np.ndarray] = field(repr=False)
    queries_without_relevant: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {m: round(v, 6) for m, v in self.metrics.items()},
            "per_label": {
                lab: {"P@k": round(v, 6), "queries": self.label_counts[lab]} for lab, v in self.per_label.items()
            },
            "queries_without_relevant": self.queries_without_relevant,
        }


def score_ranking(
    top_idx: np.ndarray,
    criterion: Criterion,
    query_groups: Sequence[str],
    exclude: Sequence[int],
    k: int,
) -> CriterionResult:
    """Score a ranking (gallery indices, -1 = empty) under ``criterion``."""
    codes: dict[str, int] = {}
    g_codes = np.fromiter((codes.setdefault(lab, len(codes)) for lab in criterion.gallery_labels), np.int64)
    counts = np.bincount(g_codes, minlength=len(codes)) if len(g_codes) else np.zeros(len(codes), np.int64)
    set_ids: dict[frozenset[str], int] = {}
    q_set = np.fromiter((set_ids.setdefault(a, len(set_ids)) for a in criterion.query_accepts), np.int64)
    accept = np.zeros((max(1, len(set_ids)), max(1, len(codes))), dtype=bool)
    for labels, s in set_ids.items():
        for lab in labels:
            if lab in codes:
                accept[s, codes[lab]] = True
    nq = top_idx.shape[0]
    safe = np.where(top_idx >= 0, top_idx, 0)
    if nq and len(g_codes):
        relevance = (top_idx >= 0) & accept[q_set[:, None], g_codes[safe]]
        n_rel = (accept[q_set].astype(np.int64) @ counts).astype(np.int64)
    else:
        relevance = np.zeros(top_idx.shape, dtype=bool)
        n_rel = np.zeros(nq, dtype=np.int64)
    excl = np.asarray(exclude, dtype=np.int64)
    self_hit = excl >= 0
    if self_hit.any():
        rows = np.flatnonzero(self_hit)
        n_rel[rows] -= accept[q_set[rows], g_codes[excl[rows]]]
    n_cand = len(g_codes) - self_hit.astype(np.int64)
    per_query = {
        "P@1": M.precision_at_k_batch(relevance, 1),
        f"P@{k}": M.precision_at_k_batch(relevance, k),
        f"R@{k}": M.recall_at_k_batch(relevance, k, n_rel),
        f"AP@{k}": M.average_precision_at_k_batch(relevance, k, n_rel),
        f"nDCG@{k}": M.ndcg_at_k_batch(relevance, k, n_rel),
    }
    chance = np.divide(n_rel, n_cand, out=np.zeros(nq), where=n_cand > 0)
    ceiling = np.minimum(n_rel, k) / k
    groups = list(query_groups)
    metrics = {f"m{name}": M.mean_over_queries(v) for name, v in per_query.items()}
    metrics[f"macroP@{k}"] = M.macro_average(per_query[f"P@{k}"], groups)
    metrics[f"chanceP@{k}"] = M.mean_over_queries(chance)
    metrics[f"ceilingP@{k}"] = M.mean_over_queries(ceiling)
    per_label = {str(lab): v for lab, v in M.per_label_means(per_query[f"P@{k}"], groups).items()}
    label_counts = {lab: groups.count(lab) for lab in per_label}
    return CriterionResult(
        name=criterion.name,
        metrics=metrics,
        per_label=per_label,
        label_counts=label_counts,
        relevance=relevance,
        per_query=per_query,
        queries_without_relevant=int(np.count_nonzero(n_rel == 0)),
    )
