"""Ranking stages: how a query's candidate lists become its ranked hits.

A query is searched as one or more *views* (a picture and its mirror image; one vector for a product
or vector query), and each view gives a ranked list of candidates, best first. A
:class:`RankingStage` takes these lists and returns lists: a stage that re-scores (colour, say)
returns as many as it got, a stage that fuses (the mirror merge; text with pictures, later) returns
one. :func:`rank` runs the stages in order and takes the top ``k`` of the one list left.

The stages, in order: :func:`merge_mirror_views` (the views fused, each product at its best view), then
:func:`colour_stage` (candidates re-ranked by similarity plus colour agreement, when the query has a colour), then
:func:`feedback_stage` (what the liked and disliked products share, when the query has feedback), then
:func:`kind_stage` (the kind the query picture looks like, or the kind chosen, up; each likely kind keeping places
on the first page), then :func:`exact_first` (an exact or near-exact picture of a product first, whatever the stages
did), then :func:`collapse_duplicates` (products with the very same picture shown once, at the best-ranked of them).
Candidate lists hold ``ctx.candidates`` hits (more than ``k`` when a later stage re-ranks), and :func:`rank`
cuts to ``k`` at the end. A new stage is a function (or an object with ``__call__``) of this shape added to
the ``stages`` a query runs with; what it needs to know about the query goes into :class:`QueryContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lookalike.catalog.feedback_rank import FeedbackQuery, spread
from lookalike.colour.families import family_index
from lookalike.colour.ranking import DEFAULT_COLOUR_WEIGHT, DEFAULT_KIND_WEIGHT, colour_kind_order
from lookalike.errors import CatalogError
from lookalike.kind.ranking import KindPrior, kind_order
from lookalike.product import PREDICTED_COLOUR, Filters, Hit, Product

__all__ = [
    "COLOUR_CANDIDATES",
    "DEFAULT_STAGES",
    "EXACT_SIMILARITY",
    "FACET_WEIGHT",
    "PREDICTED_COLOUR",
    "TEXT_STAGES",
    "PictureKeys",
    "QueryContext",
    "RankingStage",
    "collapse_duplicates",
    "colour_stage",
    "exact_first",
    "facet_stage",
    "feedback_stage",
    "kind_stage",
    "merge_mirror_views",
    "merge_views",
    "product_family",
    "rank",
]

#: How many candidates the colour stage re-ranks (measured: docs/quality.md, "Colour-aware ranking").
COLOUR_CANDIDATES = 200
#: Bonus per facet (article type, gender) of a product that the query's words name (docs/quality.md, "Words").
FACET_WEIGHT = 0.05
#: A query picture's similarity at or above which a product counts as its very picture (as stored: 1.0; re-encoded
#: as a JPEG: 0.97-0.99): ranked first whatever the other stages do. Shoppers' photos reach 0.886 at most
#: (docs/quality.md, "Exact pictures first").
EXACT_SIMILARITY = 0.97
#: Order keys within this of each other are a tie (twins' similarities differ in the last bits between backends).
TIE = 1e-5
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
    #: The liked and disliked products of a feedback query (:mod:`lookalike.catalog.feedback`); None: no feedback.
    feedback: FeedbackQuery | None = None
    #: :func:`exact_first`'s threshold on the similarity (above 1: off).
    exact_similarity: float = EXACT_SIMILARITY
    #: What kind the query looks like, or the kind chosen (:mod:`lookalike.catalog.kinds`); None: no kind stage.
    kind: KindPrior | None = None

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
    """The stage of :func:`merge_views`: the views' lists fused into one, each product at its best view (one list
    stays as it was fetched: a feedback query's holds more than ``ctx.depth``, the products it explores)."""
    return ranked if len(ranked) == 1 else [merge_views(ranked, ctx.depth)]


def product_family(product: Product, predicted: bool = True) -> int:
    """A product's colour family (index into :data:`lookalike.colour.FAMILIES`, -1 unknown): from its own
    colour field, else (``predicted``) the family the ingest predicted from its picture."""
    own = family_index(product.colour) if isinstance(product.colour, str) else -1
    if own >= 0 or not predicted:
        return own
    guess = (product.extra or {}).get(PREDICTED_COLOUR)
    return family_index(guess) if isinstance(guess, str) else -1


def _rekeyed(hit: Hit, key: float, colour_match: float | None = None) -> Hit:
    """``hit`` ordered by ``key`` (a new Hit, field by field: dataclasses.replace costs more than a stage)."""
    match = hit.colour_match if colour_match is None else colour_match
    return Hit(hit.id, hit.score, hit.product, match, key, list(hit.duplicates), hit.matched_image)


def feedback_stage(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list re-ranked by the feedback key of :mod:`lookalike.catalog.feedback_rank` plus what the earlier
    stages added to the similarity (the colour agreement and kind vote, by the colour the feedback chose): the
    similarity to the query moved towards the liked products and away from the disliked (Rocchio, or the best
    score), liked kinds up, disliked kinds and colours (that no liked product has) down, the liked products
    themselves first and the disliked last. Hits keep their similarity to the query as ``score``; ``rank_score``
    is the key. Unchanged when the query has no feedback (``ctx.feedback``)."""
    fb = ctx.feedback
    if fb is None:
        return ranked
    out = []
    for hits in ranked:
        if not hits:
            out.append(hits)
            continue
        fams = np.fromiter(
            (product_family(h.product, ctx.predicted_colours) for h in hits), dtype=np.int64, count=len(hits)
        )
        kinds = [h.product.article_type for h in hits]
        added = np.fromiter((h.order_key - h.score for h in hits), dtype=np.float32, count=len(hits))
        keys = (fb.keys([h.id for h in hits], kinds, fams) + added).tolist()
        order = sorted(range(len(hits)), key=lambda i: -keys[i])  # stable: ties keep the incoming order
        if fb.weights.spread and not fb.judged.liked_ids:  # nothing liked yet: a page of several kinds and colours
            order = spread(order, kinds, fams, fb.weights.spread, int(fb.weights.spread_keep * ctx.k))
        out.append([_rekeyed(hits[i], keys[i]) for i in order])
    return out


def colour_stage(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list re-ranked by ``key + kind_weight × kind vote + colour_weight × agreement`` with the query's
    colour (:mod:`lookalike.colour.ranking`: the vote keeps the kind the nearest products share, the agreement
    brings the query's colour up), ``key`` being what the list was ordered by (the similarity, or the feedback
    key); unchanged when the query has no colour. Hits keep their similarity as ``score`` and carry
    ``colour_match`` (the agreement) and ``rank_score`` (what they are ordered by)."""
    if ctx.colour is None or ctx.colour_weight == 0:
        return ranked
    out = []
    predicted = ctx.predicted_colours
    for hits in ranked:
        if not hits:
            out.append(hits)
            continue
        fams = np.fromiter((product_family(h.product, predicted) for h in hits), dtype=np.int64, count=len(hits))
        scores = np.fromiter((h.order_key for h in hits), dtype=np.float32, count=len(hits))
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


def kind_stage(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list re-ranked by what it was ordered by plus ``weight × P(kind)`` of :attr:`QueryContext.kind` (the
    kind head's reading of the query picture, or the kind chosen), its first ``k`` keeping places for each likely
    kind unless the query has feedback (:mod:`lookalike.kind.ranking`). Unchanged when the query has no prior."""
    prior = ctx.kind
    if prior is None:
        return ranked
    if ctx.feedback is not None and prior.spread:
        prior = KindPrior(prior.dist, prior.weight, spread=False)
    out = []
    for hits in ranked:
        keys = np.fromiter((h.order_key for h in hits), dtype=np.float32, count=len(hits))
        order, new = kind_order(keys, [h.product.article_type for h in hits], prior, ctx.k)
        out.append([_rekeyed(hits[i], key) for i, key in zip(order.tolist(), new.tolist(), strict=True)])
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


def exact_first(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list with the products whose similarity to the query (``score``) is at least
    ``ctx.exact_similarity`` (:data:`EXACT_SIMILARITY`: the query is their very picture, re-encoded or resized)
    first, best similarity first, whatever the earlier stages made of them (a disliked one stays where it is);
    their ``rank_score`` is raised above every other hit's so the order figure stays monotonic. Unchanged when
    none reaches it or no stage re-ranked (the list is then in similarity order already)."""
    disliked = set(ctx.feedback.judged.disliked_ids) if ctx.feedback is not None else set()
    out = []
    for hits in ranked:
        exact = [h for h in hits if h.score >= ctx.exact_similarity and h.id not in disliked]
        if not exact or all(h.rank_score is None for h in hits):
            out.append(hits)
            continue
        top = max(h.order_key for h in hits)
        lifted = sorted(exact, key=lambda h: -h.score)
        ids = {h.id for h in lifted}
        first = [_rekeyed(h, top + 1e-3 + (h.score - ctx.exact_similarity)) for h in lifted]
        out.append(first + [h for h in hits if h.id not in ids])
    return out


def collapse_duplicates(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
    """Each list with the products whose pictures are byte-identical (the same content hash,
    ``ctx.pictures``) shown once, where the best-ranked of them was, listing the others' ids in
    :attr:`Hit.duplicates` (in rank order); the others leave the list. The one shown is the best-ranked, or among
    those ranked level with it (within :data:`TIE`: twins' similarities differ in the last bits between backends)
    the smallest id, so the embedded and Milvus backends show the same product. Order is kept otherwise; a
    product whose hash is unknown stays. Unchanged when ``ctx.pictures`` is None. Near-identical pictures (vector
    cosine at or above 0.995) are not collapsed: on the 224-px catalogue every such pair is byte-identical
    already, and the pairs just below it are different products (docs/quality.md, "Duplicate pictures")."""
    if ctx.pictures is None:
        return ranked
    out = []
    for hits in ranked:
        keys = ctx.pictures([h.id for h in hits]) if hits else {}
        groups: dict[str, list[Hit]] = {}
        for hit in hits:
            key = keys.get(hit.id)
            if key is not None:
                groups.setdefault(key, []).append(hit)
        kept: list[Hit] = []
        for hit in hits:
            key = keys.get(hit.id)
            members = groups.pop(key, None) if key is not None else [hit]
            if members is None:
                continue  # a twin of a product already shown
            best = members[0].order_key
            lead = min((m for m in members if m.order_key >= best - TIE), key=lambda m: m.id)
            others = [x for m in members if m is not lead for x in (m.id, *m.duplicates)]
            # a copy, so the caller's hits stay as they were
            kept.append(
                Hit(
                    lead.id,
                    lead.score,
                    lead.product,
                    lead.colour_match,
                    lead.rank_score,
                    [*lead.duplicates, *others],
                    lead.matched_image,
                )
            )
        out.append(kept)
    return out


DEFAULT_STAGES: tuple[RankingStage, ...] = (
    merge_mirror_views,
    colour_stage,
    feedback_stage,
    kind_stage,
    exact_first,
    collapse_duplicates,
)
#: The stages of a query with words: the mirror merge, feedback and colour, the facet bonus of what the words name,
#: then the exact picture first and the collapse of identical pictures.
TEXT_STAGES: tuple[RankingStage, ...] = (
    merge_mirror_views,
    colour_stage,
    feedback_stage,
    facet_stage,
    kind_stage,
    exact_first,
    collapse_duplicates,
)


def rank(ctx: QueryContext, ranked: list[list[Hit]], stages: Sequence[RankingStage] = DEFAULT_STAGES) -> list[Hit]:
    """Run ``stages`` in order on a query's ranked lists (one per view); the top ``ctx.k`` hits."""
    for stage in stages:
        ranked = stage(ctx, ranked)
    if len(ranked) != 1:
        raise CatalogError(f"the ranking stages left {len(ranked)} lists of hits; the last must fuse them into one")
    return ranked[0][: ctx.k]
