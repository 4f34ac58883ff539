"""Pure metrics of EVALUATION.md task 3: the same kind of garment *and* the same colour.

Every function takes ranked gallery indices (best first, ``-1`` for padding) and labels, and returns plain
numbers; nothing here reads files or embeds pictures. A query's colour family ``multi`` (a patterned garment
with no main colour) counts for the type scores only: it is left out of the type+colour score, the colour
share and the per-family table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MULTI", "ColourScores", "colour_scores", "relevance_masks"]

#: The colour family of a garment with no main colour.
MULTI = "multi"


@dataclass(frozen=True)
class ColourScores:
    """Task 3's numbers at cut-off ``k``.

    ``type_colour``: mean P@k where relevant means right type and right colour family, over the queries whose
    family is not ``multi``; ``fine_type``: mean P@k of the right type alone, over all queries;
    ``colour_share``: of all right-type hits in the top k of the non-multi queries, the share with the right
    colour (pooled over queries); ``per_family``: mean type+colour P@k per query family; ``best``: the best
    mean type+colour P@k any ranking could reach (min(k, relevant) / k).
    """

    k: int
    type_colour: float
    fine_type: float
    colour_share: float
    best: float
    per_family: dict[str, float]
    family_counts: dict[str, int]
    colour_queries: int
    queries: int
    per_query_type_colour: np.ndarray = field(repr=False)
    per_query_type: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "type_colour": self.type_colour,
            "fine_type": self.fine_type,
            "colour_share": self.colour_share,
            "best": self.best,
            "per_family": self.per_family,
            "family_counts": self.family_counts,
            "colour_queries": self.colour_queries,
            "queries": self.queries,
        }


def relevance_masks(
    ranked: np.ndarray,
    query_types: Sequence[frozenset[str]],
    query_families: Sequence[str],
    gallery_types: Sequence[str],
    gallery_families: Sequence[str | None],
) -> tuple[np.ndarray, np.ndarray]:
    """(right type, right type and colour) for each ranked slot, as boolean arrays shaped like ``ranked``.

    A padding slot (-1) is never relevant; a gallery item without a family (``None``) never has the right
    colour.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2 or ranked.shape[0] != len(query_types) or len(query_types) != len(query_families):
        raise ValueError("ranked needs one row per query, and one type set and one family per query")
    if len(gallery_types) != len(gallery_families):
        raise ValueError("gallery_types and gallery_families need one entry per gallery item")
    g_types = np.asarray(gallery_types, dtype=object)
    g_fams = np.asarray([f if f is not None else "" for f in gallery_families], dtype=object)
    valid = ranked >= 0
    safe = np.where(valid, ranked, 0)
    right_type = np.zeros(ranked.shape, dtype=bool)
    right_colour = np.zeros(ranked.shape, dtype=bool)
    for i, (accepts, family) in enumerate(zip(query_types, query_families, strict=True)):
        row = safe[i]
        right_type[i] = np.fromiter((t in accepts for t in g_types[row]), dtype=bool, count=row.size)
        right_colour[i] = g_fams[row] == family
    right_type &= valid
    return right_type, right_type & right_colour


def colour_scores(
    ranked: np.ndarray,
    query_types: Sequence[frozenset[str]],
    query_families: Sequence[str],
    gallery_types: Sequence[str],
    gallery_families: Sequence[str | None],
    k: int = 10,
    exclude: Sequence[int] | None = None,
) -> ColourScores:
    """Task 3's metrics of a ranking (``ranked[i]``: gallery indices for query i, best first; at least ``k``
    columns, padded with -1). ``exclude[i]``: a gallery index query i may never get (itself), or -1; it does
    not count towards the best achievable."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2 or ranked.shape[1] < k:
        raise ValueError(f"ranked needs at least {k} columns")
    top = ranked[:, :k]
    right_type, right_both = relevance_masks(top, query_types, query_families, gallery_types, gallery_families)
    p_type = right_type.sum(axis=1) / k
    p_both = right_both.sum(axis=1) / k
    colour_q = np.array([f != MULTI for f in query_families], dtype=bool)

    g_types = list(gallery_types)
    fams = [f if f is not None else "" for f in gallery_families]
    best = []
    for i in np.flatnonzero(colour_q):
        accepts, family = query_types[i], query_families[i]
        n_rel = sum(1 for t, f in zip(g_types, fams, strict=True) if t in accepts and f == family)
        bad = -1 if exclude is None else int(exclude[i])
        if bad >= 0 and g_types[bad] in accepts and fams[bad] == family:
            n_rel -= 1
        best.append(min(k, n_rel) / k)

    typed_hits = int(right_type[colour_q].sum())
    per_family: dict[str, float] = {}
    counts: dict[str, int] = {}
    for fam in sorted({f for f in query_families if f != MULTI}):
        rows = np.array([f == fam for f in query_families], dtype=bool)
        per_family[fam] = float(p_both[rows].mean())
        counts[fam] = int(rows.sum())
    return ColourScores(
        k=k,
        type_colour=float(p_both[colour_q].mean()) if colour_q.any() else 0.0,
        fine_type=float(p_type.mean()) if p_type.size else 0.0,
        colour_share=float(right_both[colour_q].sum() / typed_hits) if typed_hits else 0.0,
        best=float(np.mean(best)) if best else 0.0,
        per_family=per_family,
        family_counts=counts,
        colour_queries=int(colour_q.sum()),
        queries=len(query_families),
        per_query_type_colour=np.where(colour_q, p_both, np.nan),
        per_query_type=p_type,
    )
