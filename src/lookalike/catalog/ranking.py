"""Ranking stages: how a query's candidate lists become its ranked hits.

A query is searched as one or more *views* (a picture and its mirror image; one vector for a product
or vector query), and each view gives a ranked list of candidates, best first. A
:class:`RankingStage` takes these lists and returns lists: a stage that re-scores (colour, say)
returns as many as it got, a stage that fuses (the mirror merge; text with pictures, later) returns
one. :func:`rank` runs the stages in order and takes the top ``k`` of the one list left.

The stages, in order: :func:`merge_mirror_views` (the views fused, each product at its best view), then
:func:`colour_stage` (candidates re-ranked by similarity plus colour agreement, when the query has a colour),
then :func:`collapse_duplicates` (products with the very same picture shown once, at the best-ranked of them).
Candidate lists hold ``ctx.candidates`` hits (more than ``k`` when a later stage re-ranks), and :func:`rank`
cuts to ``k`` at the end. A new stage is a function (or an object with ``__call__``) of this shape added to
the ``stages`` a query runs with; what it needs to know about the query goes into :class:`QueryContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lookalike.colour.families import family_index
from lookalike.colour.ranking import DEFAULT_COLOUR_WEIGHT, DEFAULT_KIND_WEIGHT, colour_kind_order
from lookalike.errors import CatalogError
from lookalike.product import PREDICTED_COLOUR, Filters, Hit, Product

__all__ = [
    "COLOUR_CANDIDATES",
    "DEFAULT_STAGES",
    "FACET_WEIGHT",
    "PREDICTED_COLOUR",
    "TEXT_STAGES",
    "PictureKeys",
    "QueryContext",
    "RankingStage",
    "collapse_duplicates",
    "colour_stage",
    "facet_stage",
    "merge_mirror_views",
    "merge_views",
    "product_family",
    "rank",
]

#: How many candidates the colour stage re-ranks (measured: docs/quality.md, "Colour-aware ranking").
COLOUR_CANDIDATES = 200
#: Bonus per facet (article type, gender) of a product that the query's words name (docs/quality.md, "Words").
FACET_WEIGHT = 0.05
#: Product ids → the content hash of each one's stored picture (None or absent: not known).
PictureKeys = Callable[[Sequence[str]], dict[str, str | None]]


@dataclass(frozen=True)
class QueryContext:
    """What the stages know about the query: how many hits it wants, the filters it was run with, how many
    candidates each list holds, and the colour it looks for (a distribution over
    :data:`lookalike.colour.FAMILIES`, or None) with the weight of colour agreement."""

    k: int
    filters: Filters | None = None
    candidates: int = 0
    colour: np.ndarray | None = None
    colour_weight: float = DEFAULT_COLOUR_WEIGHT
    kind_weight: float = DEFAULT_KIND_WEIGHT
    #: Facets the query's words name (a words query, or a picture plus words): a gender and article types.
    gender: str | None = None
    article_types: tuple[str, ...] = ()
    facet_weight: float = FACET_WEIGHT
    #: The picture hashes of candidates (one call per list), for :func:`collapse_duplicates`; None: no collapse.
    pictures: PictureKeys | None = None
    #: Whether a product's colour predicted from its picture at ingest counts for the colour agreement (False: only
    #: the product's own colour field does; for words alone, whose vector reads the colour better than the
    #: prediction: docs/quality.md, "Words").
    predicted_colours: bool = True

    @property
    def depth(self) -> int:
        """How many hits a candidate list keeps: ``candidates`` when a stage re-ranks, else ``k``."""
        return max(self.k, self.candidates)


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
    return [merge_views(ranked, ctx.depth)]


def product_family(product: Product, predicted: bool = True) -> int:
    """A product's colour family (index into :data:`lookalike.colour.FAMILIES`, -1 unknown): from its own
    colour field, else (``predicted``) the family the ingest predicted from its picture."""
    own = family_index(product.colour) if isinstance(product.colour, str) else -1
    if own >= 0 or not predicted:
        return own
    guess = (product.extra or {}).get(PREDICTED_COLOUR)
    return family_index(guess) if isinstance(guess, str) else -1


def colour_stage(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list re-ranked by ``score + kind_weight × kind vote + colour_weight × agreement`` with the query's
    colour (:mod:`lookalike.colour.ranking`: the vote keeps the kind the nearest products share, the agreement
    brings the query's colour up); unchanged when the query has no colour. Hits keep their similarity
    as ``score`` and carry ``colour_match`` (the agreement) and ``rank_score`` (what they are ordered by)."""
    if ctx.colour is None or ctx.colour_weight == 0:
        return ranked
    out = []
    predicted = ctx.predicted_colours
    for hits in ranked:
        if not hits:
            out.append(hits)
            continue
        fams = np.fromiter((product_family(h.product, predicted) for h in hits), dtype=np.int64, count=len(hits))
        scores = np.fromiter((h.score for h in hits), dtype=np.float32, count=len(hits))
        kinds = [h.product.article_type for h in hits]
        order, keys, agree = colour_kind_order(scores, kinds, fams, ctx.colour, ctx.colour_weight, ctx.kind_weight)
        agree_list, key_list = agree.tolist(), keys.tolist()
        out.append(
            [
                Hit(
                    hits[i].id,
                    hits[i].score,
                    hits[i].product,
                    agree_list[i],
                    key,
                    matched_image=hits[i].matched_image,
                )
                for i, key in zip(order.tolist(), key_list, strict=True)
            ]
        )
    return out


def _gender_fits(wanted: str, product: str | None) -> bool:
    return product is not None and (
        product.casefold() == wanted.casefold() or (wanted in ("Men", "Women") and product == "Unisex")
    )


def facet_stage(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list re-ranked by what it was ordered by (``rank_score``, else ``score``) plus ``facet_weight``
    for a product whose article type is one the words name and again for one whose gender fits the words'
    (Men and Women also take Unisex). Soft: nothing is dropped. Unchanged when the words name no facet."""
    if (ctx.gender is None and not ctx.article_types) or ctx.facet_weight == 0:
        return ranked
    types = {t.casefold() for t in ctx.article_types}
    out = []
    for hits in ranked:
        keyed = []
        for h in hits:
            bonus = float((h.product.article_type or "").casefold() in types)
            bonus += float(ctx.gender is not None and _gender_fits(ctx.gender, h.product.gender))
            if bonus:  # a new Hit, field by field (dataclasses.replace costs more than the stage)
                key = h.order_key + ctx.facet_weight * bonus
                h = Hit(h.id, h.score, h.product, h.colour_match, key, h.duplicates, h.matched_image)
            keyed.append(h)
        out.append(sorted(keyed, key=lambda h: -h.order_key))  # stable: ties keep the order they had
    return out


def collapse_duplicates(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list with the products whose pictures are byte-identical (the same content hash,
    ``ctx.pictures``) shown once: the best-ranked of them stays where it was and lists the others' ids in
    :attr:`Hit.duplicates` (in rank order); the others leave the list. Order is kept otherwise; a product
    whose hash is unknown stays. Unchanged when ``ctx.pictures`` is None. Near-identical pictures (vector
    cosine at or above 0.995) are not collapsed: on the 224-px catalogue every such pair is byte-identical
    already, and the pairs just below it are different products (docs/quality.md, "Duplicate pictures")."""
    if ctx.pictures is None:
        return ranked
    out = []
    for hits in ranked:
        keys = ctx.pictures([h.id for h in hits]) if hits else {}
        first: dict[str, Hit] = {}
        kept: list[Hit] = []
        for hit in hits:
            key = keys.get(hit.id)
            lead = first.get(key) if key is not None else None
            if lead is not None:
                lead.duplicates.extend([hit.id, *hit.duplicates])
                continue
            # a copy, so the caller's hits stay as they were
            hit = Hit(
                hit.id,
                hit.score,
                hit.product,
                hit.colour_match,
                hit.rank_score,
                list(hit.duplicates),
                hit.matched_image,
            )
            if key is not None:
                first[key] = hit
            kept.append(hit)
        out.append(kept)
    return out


DEFAULT_STAGES: tuple[RankingStage, ...] = (merge_mirror_views, colour_stage, collapse_duplicates)
#: The stages of a query with words: the mirror merge and colour, the facet bonus of what the words name, then
#: the collapse of identical pictures.
TEXT_STAGES: tuple[RankingStage, ...] = (merge_mirror_views, colour_stage, facet_stage, collapse_duplicates)


def rank(ctx: QueryContext, ranked: list[list[Hit]], stages: Sequence[RankingStage] = DEFAULT_STAGES) -> list[Hit]:
    """Run ``stages`` in order on a query's ranked lists (one per view); the top ``ctx.k`` hits."""
    for stage in stages:
        ranked = stage(ctx, ranked)
    if len(ranked) != 1:
        raise CatalogError(f"the ranking stages left {len(ranked)} lists of hits; the last must fuse them into one")
    return ranked[0][: ctx.k]
