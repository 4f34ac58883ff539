"""Feedback: "more like these, less like those" as a query of its own.

A search may carry the ids of products the shopper liked (``positive``) and disliked (``negative``), with a
picture, a URL, a product, a vector or words, or alone (liked products only: "more like these"). Empty lists are
a plain search. The judged products are read once (:func:`judge`: every picture's vector, their kinds and colour
families); the candidates are searched with the query's views and their Rocchio vectors (the ``best`` strategy:
also every liked picture), fused into one list ordered by the feedback similarity, and ranked by the stages (colour,
with the liked products' agreed colour family as the colour preference unless one was asked for, else the query's
colour less the disliked families; then :func:`lookalike.catalog.ranking.feedback_stage`, with the arithmetic of
:mod:`lookalike.catalog.feedback_rank`; then the exact picture first and the collapse of twins). Liked products come
back (first), disliked ones go to the end.

Bad input: more than :data:`MAX_JUDGED` ids, or an id in both lists: :class:`InvalidQueryError` (422); ids not
in the catalogue: :class:`ProductNotFoundError` (404) naming them, unless ``ignore_missing`` (a product deleted
between two rounds of a shopper's page): then they are left out and listed in :attr:`SearchResult.ignored`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from lookalike.catalog import words
from lookalike.catalog.feedback_rank import (
    FeedbackQuery,
    FeedbackWeights,
    Judgements,
    agreed_family,
    best_by_owner,
    family_shares,
    feedback_keys,
    kind_pairs,
    kind_shares,
    product_means,
    rocchio,
)
from lookalike.catalog.kinds import kind_plan, with_kind
from lookalike.catalog.query import (
    MAX_K,
    ImageInput,
    QueryHost,
    SearchResult,
    _colour_plan,
    _context,
    check_k,
    picture_views,
    query_image,
    rank_filled,
)
from lookalike.catalog.query import product_vectors as _product_vectors
from lookalike.catalog.query import search as plain_search
from lookalike.catalog.ranking import DEFAULT_STAGES, QueryContext, RankingStage, product_family
from lookalike.catalog.spelling import correct_query
from lookalike.catalog.text_query import check_text, move_by_words, read_intent
from lookalike.colour.families import FAMILIES
from lookalike.errors import InvalidQueryError, ProductNotFoundError
from lookalike.product import FILTER_FIELDS, Filters, Hit, Product, validate_product_id

__all__ = ["MAX_JUDGED", "check_judged", "judge", "passes", "search"]

#: At most this many judged ids (liked and disliked together) in one query.
MAX_JUDGED = 100
#: The ``best`` strategy searches with at most this many liked pictures (the first liked products').
BEST_ROWS = 20
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_judged(positive: Sequence[str] | None, negative: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The liked and disliked ids, each once in the order given; :class:`InvalidQueryError` for a bad id, more
    than :data:`MAX_JUDGED` ids together, or an id in both lists."""
    lists = []
    for name, ids in (("positive", positive), ("negative", negative)):
        if ids is None:
            ids = []
        if isinstance(ids, str):
            raise InvalidQueryError(f"{name} must be a list of product ids, not one string")
        try:
            lists.append(list(dict.fromkeys(validate_product_id(i) for i in ids)))
        except InvalidQueryError as exc:
            raise InvalidQueryError(f"{name}: {exc}") from None
    liked, disliked = lists
    if len(liked) + len(disliked) > MAX_JUDGED:
        raise InvalidQueryError(f"at most {MAX_JUDGED} judged products (positive and negative together)")
    both = [i for i in liked if i in set(disliked)]
    if both:
        raise InvalidQueryError(f"liked and disliked at once: {', '.join(repr(i) for i in both[:10])}")
    return liked, disliked


def _products(host: QueryHost, ids: Sequence[str]) -> dict[str, Product]:
    many = getattr(host.backend, "get_many", None)
    if many is not None:
        return dict(many(list(ids)))
    found = {}
    for pid in ids:
        product = host.backend.get(pid)
        if product is not None:
            found[pid] = product
    return found


def _vectors_of(host: QueryHost, ids: Sequence[str]) -> dict[str, np.ndarray]:
    many = getattr(host.backend, "picture_vectors_of", None)
    if many is not None:
        return {pid: np.asarray(v, dtype=np.float32) for pid, v in many(list(ids)).items()}
    return {pid: np.asarray(v, dtype=np.float32)[None, :] for pid, v in host.backend.vectors_of(list(ids)).items()}


def judge(
    host: QueryHost,
    liked: Sequence[str],
    disliked: Sequence[str],
    ignore_missing: bool = False,
    saturation: int | None = None,
) -> tuple[Judgements, dict[str, Product], tuple[str, ...]]:
    """(what the judged products are, the judged products by id, the ids not in the catalogue); the disliked
    kinds and families as counts over ``saturation`` (:attr:`FeedbackWeights.saturation`). Raises
    :class:`ProductNotFoundError` naming the missing ids unless ``ignore_missing``."""
    ids = [*liked, *disliked]
    products = _products(host, ids)
    vectors = _vectors_of(host, [i for i in ids if i in products])
    missing = tuple(i for i in ids if i not in products or i not in vectors)
    if missing and not ignore_missing:
        err = ProductNotFoundError(f"no product with id {', '.join(repr(i) for i in missing[:20])}")
        err.ids = list(missing)  # type: ignore[attr-defined]
        raise err
    liked = [i for i in liked if i not in missing]
    disliked = [i for i in disliked if i not in missing]

    def side(which: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        blocks = [vectors[i] for i in which]
        owner = [np.full(len(b), n, dtype=np.int64) for n, b in enumerate(blocks)]
        if not blocks:
            return np.zeros((0, host.dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.concatenate(blocks).astype(np.float32), np.concatenate(owner)

    lv, lo = side(liked)
    dv, do = side(disliked)
    kinds = {i: products[i].article_type for i in ids if i in products}
    fams = {i: product_family(products[i]) for i in ids if i in products}
    judged = Judgements(
        tuple(liked),
        tuple(disliked),
        lv,
        lo,
        dv,
        do,
        kind_shares([kinds[i] for i in liked]),
        kind_shares([kinds[i] for i in disliked], saturation),
        family_shares([fams[i] for i in liked]),
        family_shares([fams[i] for i in disliked], saturation),
        kind_pairs([kinds[i] for i in liked], [fams[i] for i in liked]),
        kind_pairs([kinds[i] for i in disliked], [fams[i] for i in disliked]),
    )
    return judged, products, missing


def _nocase(value: object) -> str:
    return str(value).translate(_ASCII_LOWER)  # as SQLite's NOCASE: ASCII letters only


def passes(product: Product, filters: Filters | None) -> bool:
    """Whether ``product`` passes ``filters`` as the store's query does (equality ignoring ASCII case, any of a
    tuple; the price range; stock): for judged products a search did not bring back."""
    if filters is None or filters.is_empty():
        return True
    for name in FILTER_FIELDS:
        want = getattr(filters, name)
        if want in (None, "", ()):
            continue
        values = {_nocase(v) for v in ((want,) if isinstance(want, str) else want)}
        have = getattr(product, name)
        if have is None or _nocase(have) not in values:
            return False
    price = product.price
    if filters.min_price is not None and (price is None or price < filters.min_price):
        return False
    if filters.max_price is not None and (price is None or price > filters.max_price):
        return False
    if filters.in_stock is not None:
        return product.in_stock is not False if filters.in_stock else product.in_stock is False
    return True


def _other_kinds(host: QueryHost, judged: Judgements, filters: Filters | None) -> Filters | None:
    """``filters`` narrowed to the catalogue's kinds that no disliked product has (or a liked one has too); None
    when nothing is disliked or no kind is left."""
    avoid = {k for k in judged.disliked_kinds if k not in judged.liked_kinds}
    if not avoid:
        return None
    wanted = filters.article_type if filters is not None else None
    kinds = host.article_types() if wanted in (None, "", ()) else ((wanted,) if isinstance(wanted, str) else wanted)
    keep = tuple(k for k in kinds if k and k.casefold() not in avoid)
    return replace(filters or Filters(), article_type=keep) if keep and len(keep) < len(kinds) else None


def _fetch(
    host: QueryHost,
    fb: FeedbackQuery,
    views: np.ndarray | None,
    judged_products: dict[str, Product],
    depth: int,
    filters: Filters | None,
    exclude: set[str],
) -> list[list[Hit]]:
    """One candidate list: the union of the searches (``depth`` deep) of the query's views and its feedback
    vectors, of the nearest products of the kinds no disliked product is (``explore`` of them) and of the liked
    products that pass the filters, ordered by :func:`feedback_keys`' similarity (no kind or colour terms yet); a
    hit's ``score`` is its similarity to the query's views (to the feedback vector for feedback alone)."""
    judged, w = fb.judged, fb.weights
    means = [
        product_means(vecs, owner, len(ids)).mean(axis=0) if ids else None
        for vecs, owner, ids in (
            (judged.liked, judged.liked_owner, judged.liked_ids),
            (judged.disliked, judged.disliked_owner, judged.disliked_ids),
        )
    ]
    moved = rocchio(views, means[0], means[1], w.liked, w.disliked)
    rows = [moved] if views is None else [views, moved]
    if w.strategy == "best" and len(judged.liked):
        rows.append(judged.liked[:BEST_ROWS])
    queries = np.concatenate(rows)
    found = host.search_vectors(queries, k=depth, filters=filters, exclude=[exclude] * len(queries))
    other = _other_kinds(host, judged, filters) if w.explore > 0 else None
    if other is not None:  # the nearest of the kinds the disliked products are not
        found += host.search_vectors(moved, k=min(w.explore, MAX_K), filters=other, exclude=[exclude] * len(moved))
    pool: dict[str, Product] = {}
    for row in found:
        for hit in row:
            pool.setdefault(hit.id, hit.product)
    for pid in judged.liked_ids:
        product = judged_products[pid]
        if pid not in pool and pid not in exclude and passes(product, filters):
            pool[pid] = product
    ids = list(pool)
    pictures, owner = fb.pictures_of(ids)
    keep = np.isin(np.arange(len(ids)), owner)
    if not keep.all():  # a product gone since the search: left out
        ids = [pid for pid, ok in zip(ids, keep, strict=True) if ok]
        pictures, owner = fb.pictures_of(ids)
    n = len(ids)
    none = np.zeros(n, dtype=bool)
    plain = replace(w, liked_kind=0.0, disliked_kind=0.0, disliked_colour=0.0, liked_pair=0.0, disliked_pair=0.0)
    plain = replace(plain, judged=0.0)
    sim = feedback_keys(pictures, owner, views, judged, plain, [None] * n, np.full(n, -1), none, none)
    base = moved if views is None else views
    score, row = best_by_owner((pictures @ base.T).max(axis=1), owner, n)
    starts = np.searchsorted(owner, np.arange(n))  # rows are grouped by owner, in order
    order = np.argsort(-sim, kind="stable").tolist()  # every candidate: the explored ones are further away
    return [[Hit(ids[i], float(score[i]), pool[ids[i]], matched_image=int(row[i] - starts[i])) for i in order]]


def search(
    host: QueryHost,
    image: ImageInput | None = None,
    *,
    url: str | None = None,
    product_id: str | None = None,
    vector: np.ndarray | None = None,
    text: str | None = None,
    k: int = 10,
    filters: Filters | None = None,
    stages: Sequence[RankingStage] = DEFAULT_STAGES,
    colour: str | None = None,
    colour_rank: bool | None = None,
    collapse: bool | None = None,
    positive: Sequence[str] | None = None,
    negative: Sequence[str] | None = None,
    ignore_missing: bool = False,
    weights: FeedbackWeights | None = None,
    kind: str | None = None,
) -> SearchResult:
    """A search with feedback (the module's docstring); with no judged ids, the plain search of the query.
    ``kind``: rank by this kind of the catalogue's (a chip); with feedback, the kind the picture shows is reported
    but not ranked by (the judged products say more)."""
    liked, disliked = check_judged(positive, negative)
    ignored: tuple[str, ...] = ()
    judged = products = None
    w = weights if weights is not None else getattr(host, "feedback_weights", None) or FeedbackWeights()
    if liked or disliked:
        check_k(k)
        judged, products, ignored = judge(host, liked, disliked, ignore_missing, w.saturation)
        if not judged.liked_ids and not judged.disliked_ids:
            judged = None  # every judged product is gone: a plain search
    given = sum(x is not None for x in (image, url, product_id, vector))
    if judged is None or products is None:
        if text is not None:
            result = words.search_words(
                host, text, image, url, product_id, vector, k, filters, stages, colour, colour_rank, None, collapse,
                kind=kind,
            )  # fmt: skip
        else:
            result = plain_search(
                host, image, url=url, product_id=product_id, vector=vector, k=k, filters=filters, stages=stages,
                colour=colour, colour_rank=colour_rank, collapse=collapse, kind=kind,
            )  # fmt: skip
        result.ignored = list(ignored)
        return result
    if given > 1:
        raise InvalidQueryError("give at most one of image, url, product_id or vector")
    if given == 0 and text is None and not judged.liked_ids:
        raise InvalidQueryError("feedback alone needs a liked product (positive); add a query to only dislike")
    ctx, views, exclude, result, stages, read = _query(host, image, url, product_id, vector, text, k, filters,
                                                       stages, colour, colour_rank, collapse)  # fmt: skip
    fb = FeedbackQuery(judged, w, views, lambda ids: _vectors_of(host, ids), ignored=ignored)
    ctx = _liked_colour(host, ctx, result, fb, colour, colour_rank)
    if w.kind_vote is not None:
        ctx = replace(ctx, kind_weight=w.kind_vote)
    ctx = replace(ctx, candidates=max(ctx.candidates, min(w.candidates, MAX_K)), feedback=fb)
    prior, result.kind = kind_plan(host, views if image is not None or url is not None else None, kind, read)
    ctx = with_kind(ctx, prior if kind is not None else None, host.colour_candidates)
    if given == 0:  # words or liked products alone: no query picture to be exactly
        ctx = replace(ctx, exact_similarity=float("inf"))
    result.hits = rank_filled(ctx, lambda d: _fetch(host, fb, views, products, d, filters, exclude), stages)
    result.ignored = list(ignored)
    return result


def _query(
    host: QueryHost,
    image: ImageInput | None,
    url: str | None,
    product_id: str | None,
    vector: np.ndarray | None,
    text: str | None,
    k: int,
    filters: Filters | None,
    stages: Sequence[RankingStage],
    colour: str | None,
    colour_rank: bool | None,
    collapse: bool | None,
) -> tuple[QueryContext, np.ndarray | None, set[str], SearchResult, Sequence[RankingStage], np.ndarray | None]:
    """(the stages' context, the query's views or None, ids left out, the result with the colour used, stages, the
    kind branch's reading of the picture's views or None)."""
    img = None
    product = None
    exclude: set[str] = set()
    views: np.ndarray | None = None
    read: np.ndarray | None = None
    if url is not None or image is not None:
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise InvalidQueryError("url must start with http:// or https://")
        img = query_image(host, url if url is not None else image)  # type: ignore[arg-type]
        views, read = picture_views(host, img)
    elif product_id is not None:
        views = _product_vectors(host.backend, product_id)
        exclude.add(product_id)
        product = host.backend.get(product_id)
    elif vector is not None:
        views = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    if text is None:
        dist, weight, result = _colour_plan(host, img, product, colour, colour_rank)
        ctx = _context(host, k, filters, dist, weight, collapse, picture=img is not None)
        return ctx, views, exclude, result, stages, read
    typed = check_text(text)
    text = correct_query(host, typed)
    intent = read_intent(text, host.article_types())
    vecs = host.text_vectors([text])
    if vecs is not None:
        views = vecs[:1] if views is None else move_by_words(views, vecs[0], host.image_text_weight)
    dist, weight, result = words._words_colour(host, intent, img, product, colour, colour_rank)
    ctx = words._words_context(host, k, filters, dist, weight, intent, collapse, picture=img is not None)
    result.understood = None if text == typed else text
    return ctx, views, exclude, result, words.text_stages(stages), read


def _liked_colour(
    host: QueryHost,
    ctx: QueryContext,
    result: SearchResult,
    fb: FeedbackQuery,
    colour: str | None,
    colour_rank: bool | None,
) -> QueryContext:
    """The colour the stage ranks by, after feedback: the liked products' agreed colour family as the colour
    preference (source "liked"); else the query's colour with the families of the disliked products (that no
    liked one has) taken out by ``colour_shift`` × their share, the rest made whole again (the colour reported
    is then the likeliest left). Unchanged when a colour was asked for (``colour``, or words naming one) or
    colour ranking is off."""
    on = host.colour_rank if colour_rank is None else colour_rank
    if colour is not None or result.colour_source in ("preference", "words") or not on:
        return ctx
    w = fb.weights
    fam = agreed_family(fb.judged.liked_families, w.agree)
    if fam >= 0 and w.liked_colour > 0:
        dist = np.zeros(len(FAMILIES), dtype=np.float32)
        dist[fam] = 1.0
        result.colour, result.colour_source = FAMILIES[fam], "liked"
        return replace(ctx, colour=dist, colour_weight=w.liked_colour)
    if ctx.colour is None or w.colour_shift <= 0:
        return ctx
    away = np.where(fb.judged.liked_families > 0, 0.0, fb.judged.disliked_families)
    dist = np.asarray(ctx.colour, dtype=np.float32) * (1.0 - np.clip(w.colour_shift * away, 0.0, 1.0))
    if dist.sum() <= 0:
        return replace(ctx, colour=None)
    dist = (dist / dist.sum()).astype(np.float32)
    result.colour = FAMILIES[int(dist.argmax())]
    return replace(ctx, colour=dist)
