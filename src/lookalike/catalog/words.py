"""Search with words: alone (the text tower's vector fused with the backend's BM25), or moving a picture's,
a product's or a vector's search, with the words' colour as the colour preference and their facets as a
bonus (:mod:`lookalike.catalog.text_query` has the pure parts and the method; docs/quality.md, "Words").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from lookalike.catalog.kinds import kind_plan, with_kind
from lookalike.catalog.query import (
    ImageInput,
    QueryHost,
    SearchResult,
    _colour_plan,
    _context,
    check_k,
    picture_views,
    product_vectors,
    query_image,
    rank_filled,
)
from lookalike.catalog.ranking import (
    DEFAULT_STAGES,
    QueryContext,
    RankingStage,
    collapse_duplicates,
    exact_first,
    facet_stage,
)
from lookalike.catalog.spelling import correct_query
from lookalike.catalog.text_query import TextIntent, check_text, fuse_ranked, move_by_words, read_intent
from lookalike.errors import InvalidQueryError, LookalikeError
from lookalike.product import Filters, Hit, Product

__all__ = ["TEXT_CANDIDATES", "search_texts", "search_words", "text_stages"]

#: How many candidates a words query's lists hold before the fusion: the vector list at least this many (more
#: when the colour stage re-ranks), the BM25 list this many.
TEXT_CANDIDATES = 50


def text_stages(stages: Sequence[RankingStage]) -> tuple[RankingStage, ...]:
    """``stages`` with the facet bonus of the words (:func:`~lookalike.catalog.ranking.facet_stage`) last, or
    just before the exact picture first and the collapse of identical pictures."""
    if facet_stage in stages:
        return tuple(stages)
    tail = 0
    while tail < len(stages) and stages[len(stages) - 1 - tail] in (exact_first, collapse_duplicates):
        tail += 1
    cut = len(stages) - tail
    return (*stages[:cut], facet_stage, *stages[cut:])


def _words_colour(
    host: QueryHost,
    intent: TextIntent,
    img: Image.Image | None,
    product: Product | None,
    colour: str | None,
    colour_rank: bool | None,
) -> tuple[np.ndarray | None, float, SearchResult]:
    """The colour plan of a query with words: a stated ``colour`` first, then the words' colour (source
    "words"; weighted as a stated preference with a picture or product, by ``words_colour_weight`` for words
    alone), else the picture's or product's as without words."""
    alone = img is None and product is None
    if colour is None and intent.colour is not None and (host.words_colour_weight > 0 or not alone):
        dist, weight, result = _colour_plan(host, img, product, intent.colour, colour_rank)
        result.colour_source = "words"
        return dist, host.words_colour_weight if alone else weight, result
    return _colour_plan(host, img, product, colour, colour_rank)


def _words_context(
    host: QueryHost,
    k: int,
    filters: Filters | None,
    dist: np.ndarray | None,
    weight: float,
    intent: TextIntent,
    collapse: bool | None,
    picture: bool = False,
) -> QueryContext:
    base = _context(host, k, filters, dist, weight, collapse, picture)
    return replace(
        base, candidates=max(base.candidates, TEXT_CANDIDATES), gender=intent.gender, article_types=intent.article_types
    )


def search_words(
    host: QueryHost,
    text: str,
    image: ImageInput | None,
    url: str | None,
    product_id: str | None,
    vector: np.ndarray | None,
    k: int,
    filters: Filters | None,
    stages: Sequence[RankingStage],
    colour: str | None,
    colour_rank: bool | None,
    words_vec: np.ndarray | None = None,
    collapse: bool | None = None,
    kind: str | None = None,
) -> SearchResult:
    """A search with words: alone (vector fused with BM25), or moving a picture's, product's or vector (give
    at most one of ``image``, ``url``, ``product_id`` and ``vector``); ``words_vec``: the words' vector when
    known (a batch); ``collapse``: identical pictures once (default: the host's ``collapse_duplicates``); ``kind``:
    a kind chosen (a chip) to rank by; a picture's own kind counts unless the words name kinds.
    Misspelt words are corrected first (:mod:`lookalike.catalog.spelling`); the result's ``understood`` says so."""
    check_k(k)
    if sum(x is not None for x in (image, url, product_id, vector)) > 1:
        raise InvalidQueryError("give text alone or with one of image, url, product_id or vector")
    typed = check_text(text)
    text = correct_query(host, typed)  # misspelt words corrected (catalog.spelling)
    understood = None if text == typed else text
    intent = read_intent(text, host.article_types())
    if words_vec is None:
        vecs = host.text_vectors([text])
        words_vec = None if vecs is None else vecs[0]
    stages = text_stages(stages)
    img = None
    read: np.ndarray | None = None
    product = None
    exclude: set[str] = set()
    if url is not None or image is not None:
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise InvalidQueryError("url must start with http:// or https://")
        img = query_image(host, url if url is not None else image)  # type: ignore[arg-type]
        base, read = picture_views(host, img)
    elif product_id is not None:
        base = product_vectors(host.backend, product_id)  # every picture of the product
        exclude.add(product_id)
        product = host.backend.get(product_id)
    elif vector is not None:
        base = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    else:
        result = _words_alone(host, text, words_vec, intent, k, filters, stages, colour, colour_rank, collapse, kind)
        result.understood = understood
        return result
    dist, weight, result = _words_colour(host, intent, img, product, colour, colour_rank)
    ctx = _words_context(host, k, filters, dist, weight, intent, collapse, picture=img is not None)
    prior, result.kind = kind_plan(host, base if img is not None else None, kind, read)
    if kind is None and intent.article_types and result.kind is not None:
        prior = None  # the words name the kind ("this, but as a skirt"): the facet stage ranks by it
        result.kind = replace(result.kind, used=None, source=None)
    ctx = with_kind(ctx, prior, host.colour_candidates)
    views = base if words_vec is None else move_by_words(base, words_vec, host.image_text_weight)
    skip = [exclude] * len(views)
    result.hits = rank_filled(ctx, lambda d: host.search_vectors(views, k=d, filters=filters, exclude=skip), stages)
    result.understood = understood
    return result


def _words_alone(
    host: QueryHost,
    text: str,
    words_vec: np.ndarray | None,
    intent: TextIntent,
    k: int,
    filters: Filters | None,
    stages: Sequence[RankingStage],
    colour: str | None,
    colour_rank: bool | None,
    collapse: bool | None,
    kind: str | None = None,
) -> SearchResult:
    dist, weight, result = _words_colour(host, intent, None, None, colour, colour_rank)
    prior, result.kind = kind_plan(host, None, kind)
    ctx = with_kind(_words_context(host, k, filters, dist, weight, intent, collapse), prior, TEXT_CANDIDATES)
    ctx = replace(ctx, exact_similarity=float("inf"))  # fused scores are no picture's similarity: no exact_first
    if result.colour_source == "words" and words_vec is not None:
        # the words' vector already looks for their colour, and reads a picture's colour better than the
        # colour the ingest predicted for it: only products' own colour fields count here
        ctx = replace(ctx, predicted_colours=False)

    def cosine_of(ids: list[str]) -> dict[str, float]:
        if words_vec is None:
            return {}
        many = getattr(host.backend, "picture_vectors_of", None)
        if many is None:
            return {i: float(v @ words_vec) for i, v in host.backend.vectors_of(ids).items()}
        return {i: float((v @ words_vec).max()) for i, v in many(ids).items()}  # each product's best picture

    def fetch(depth: int) -> list[list[Hit]]:
        vector_hits: list[Hit] = []
        if words_vec is not None:
            vector_hits = host.search_vectors(words_vec[None, :], k=depth, filters=filters)[0]
        bm25 = host.backend.text_search(text, min(depth, TEXT_CANDIDATES), filters)
        word_hits = [(Hit(p.id, s, p), s) for p, s in bm25]
        return [fuse_ranked(vector_hits, word_hits, cosine_of, depth, host.text_fusion, host.text_weight)]

    result.hits = rank_filled(ctx, fetch, stages)
    return result


def search_texts(
    host: QueryHost,
    texts: Sequence[str],
    k: int = 10,
    filters: Filters | None = None,
    stages: Sequence[RankingStage] = DEFAULT_STAGES,
    colour: str | None = None,
    colour_rank: bool | None = None,
) -> list[SearchResult | LookalikeError]:
    """Search many phrases (one batch of the text tower); a phrase that fails gives its error."""
    check_k(k)
    clean: list[str | LookalikeError] = []
    for t in texts:
        try:
            clean.append(check_text(t))
        except LookalikeError as exc:
            clean.append(exc)
    good = [t for t in clean if isinstance(t, str)]
    vecs = host.text_vectors([correct_query(host, t) for t in good]) if good else None  # as search_words reads them
    row = iter(range(len(good)))
    out: list[SearchResult | LookalikeError] = []
    for t in clean:
        if isinstance(t, LookalikeError):
            out.append(t)
            continue
        vec = None if vecs is None else vecs[next(row)]
        try:
            out.append(search_words(host, t, None, None, None, None, k, filters, stages, colour, colour_rank, vec))
        except LookalikeError as exc:
            out.append(exc)
    return out
