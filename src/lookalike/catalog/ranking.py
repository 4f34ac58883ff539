"""Ranking stages: how a query's candidate lists become its ranked hits.

A query is searched as one or more *views* (a picture and its mirror image; one vector for a product
or vector query), and each view gives a ranked list of candidates, best first. A
:class:`RankingStage` takes these lists and returns lists: a stage that re-scores (colour, say)
returns as many as it got, a stage that fuses (the mirror merge; text with pictures, later) returns
one. :func:`rank` runs the stages in order and takes the top ``k`` of the one list left.

Today there is one stage, :func:`merge_mirror_views`. A new stage is a function (or an object with
``__call__``) of this shape added to the ``stages`` a query runs with; what it needs to know about
the query goes into :class:`QueryContext`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lookalike.errors import CatalogError
from lookalike.product import Filters, Hit

__all__ = ["DEFAULT_STAGES", "QueryContext", "RankingStage", "merge_mirror_views", "merge_views", "rank"]


@dataclass(frozen=True)
class QueryContext:
    """What the stages know about the query: how many hits it wants and the filters it was run with."""

    k: int
    filters: Filters | None = None


class RankingStage(Protocol):
    """One step of the ranking: the query's ranked lists in, ranked lists out (one, for a fusing stage)."""

    def __call__(self, ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]: ...


def merge_views(hit_lists: Sequence[list[Hit]], k: int) -> list[Hit]:
    """The top ``k`` of several views of one query (a picture and its mirror image): each product
    scores its best view. Exact: the top ``k`` by best view lie in the union of each view's top ``k``."""
    if len(hit_lists) == 1:
        return hit_lists[0][:k]
    best: dict[str, Hit] = {}
    for hits in hit_lists:
        for hit in hits:
            known = best.get(hit.id)
            if known is None or hit.score > known.score:
                best[hit.id] = hit
    return sorted(best.values(), key=lambda h: -h.score)[:k]


def merge_mirror_views(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """The stage of :func:`merge_views`: the views' lists fused into one, each product at its best view."""
    return [merge_views(ranked, ctx.k)]


DEFAULT_STAGES: tuple[RankingStage, ...] = (merge_mirror_views,)


def rank(ctx: QueryContext, ranked: list[list[Hit]], stages: Sequence[RankingStage] = DEFAULT_STAGES) -> list[Hit]:
    """Run ``stages`` in order on a query's ranked lists (one per view); the top ``ctx.k`` hits."""
    for stage in stages:
        ranked = stage(ctx, ranked)
    if len(ranked) != 1:
        raise CatalogError(f"the ranking stages left {len(ranked)} lists of hits; the last must fuse them into one")
    return ranked[0][: ctx.k]
