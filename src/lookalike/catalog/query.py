"""Search: a query (picture, URL, product, vector or words) → its views → vectors → candidates → ranked hits.

A picture (or the picture at a URL) is decoded once and searched as its views: itself and, with the
host's ``query_flip``, its mirror image (one batch of the model). A product searches with its stored
vector, leaving itself out. Each view's vector gives a ranked list of candidates from the backend;
the ranking stages (:mod:`lookalike.catalog.ranking`) turn the lists into the hits. The functions
work on any :class:`QueryHost` (the :class:`~lookalike.catalog.Catalog`). A query with words is
:mod:`lookalike.catalog.words`' (it builds on the functions here).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from lookalike.backends.base import CatalogBackend
from lookalike.catalog.kinds import KindSeen, kind_branch_for, kind_plan, with_kind
from lookalike.catalog.ranking import DEFAULT_STAGES, PictureKeys, QueryContext, RankingStage, product_family, rank
from lookalike.colour.detect import ColourDetector, ColourEstimate
from lookalike.colour.families import FAMILIES
from lookalike.colour.ranking import (
    DEFAULT_KIND_WEIGHT,
    PREFERENCE_WEIGHT,
    PRODUCT_COLOUR_WEIGHT,
    preference_distribution,
)
from lookalike.errors import InvalidQueryError, LookalikeError, ProductNotFoundError
from lookalike.extractors import Extractor
from lookalike.extractors.base import with_mirror
from lookalike.imaging import DecodeLimits, FetchSettings, fetch_image_bytes, open_image_bytes, read_image_bytes
from lookalike.product import Filters, Hit, Product

__all__ = [
    "MAX_K",
    "ImageInput",
    "QueryHost",
    "SearchResult",
    "check_k",
    "embed_query",
    "embed_views",
    "image_bytes",
    "picture_keys",
    "picture_views",
    "product_vectors",
    "query_image",
    "query_vectors",
    "rank_filled",
    "search",
    "search_many",
    "search_vectors",
]

MAX_K = 1000
ImageInput = str | os.PathLike[str] | bytes | Image.Image


class QueryHost(Protocol):
    """What a search needs of a catalogue (read when used: ``query_flip`` may change between queries)."""

    dim: int
    decode_limits: DecodeLimits
    fetch_settings: FetchSettings
    backend: CatalogBackend
    query_flip: bool
    colour_rank: bool
    kind_rank: bool
    collapse_duplicates: bool
    colour_weight: float
    photo_kind_weight: float
    colour_candidates: int
    text_fusion: str
    text_weight: float
    image_text_weight: float
    words_colour_weight: float

    @property
    def extractor(self) -> Extractor: ...

    @property
    def colour_detector(self) -> ColourDetector: ...

    def query_vectors(self, image: ImageInput) -> np.ndarray: ...

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray | None: ...

    def article_types(self) -> tuple[str, ...]: ...

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filters: Filters | None = None,
        exclude: Sequence[set[str]] | None = None,
    ) -> list[list[Hit]]: ...


def check_k(k: int) -> None:
    """Refuse a ``k`` that is not an integer between 1 and :data:`MAX_K`."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_K:
        raise InvalidQueryError(f"k must be between 1 and {MAX_K}")


def _load_bytes(host: QueryHost, source: str) -> bytes:
    if source.lower().startswith(("http://", "https://")):
        data, _ = fetch_image_bytes(source, host.fetch_settings)
        return data
    return read_image_bytes(source, host.decode_limits)


def image_bytes(host: QueryHost, image: ImageInput) -> bytes:
    """The bytes of an image given as a path, URL, bytes or PIL image (a PIL image as PNG)."""
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        return buf.getvalue()
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    text = os.fspath(image)
    if text.lower().startswith(("http://", "https://")):
        return _load_bytes(host, text)
    return read_image_bytes(text, host.decode_limits)


def query_image(host: QueryHost, image: ImageInput) -> Image.Image:
    """The query picture, decoded within the host's limits (JPEG draft at the model's input size)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    size = host.extractor.preprocess_cfg.size if host.extractor.preprocess_cfg else None
    name = "image" if isinstance(image, bytes | bytearray | memoryview) else Path(os.fspath(image)).name
    return open_image_bytes(image_bytes(host, image), host.decode_limits, draft_size=size, name=name)


def embed_query(host: QueryHost, image: ImageInput) -> np.ndarray:
    """The vector of an image, as the catalogue's vectors are made."""
    return host.extractor.embed([query_image(host, image)])[0]


def query_vectors(host: QueryHost, image: ImageInput) -> np.ndarray:
    """The vectors of a picture's views: (1, dim), or with ``query_flip`` (2, dim), the picture's and
    its mirror image's (one batch of the model)."""
    return _views(host, query_image(host, image))


def _views(host: QueryHost, img: Image.Image) -> np.ndarray:
    return host.extractor.embed(with_mirror(img) if host.query_flip else [img])


def picture_views(host: QueryHost, img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(the vectors of a picture's views, as :func:`query_vectors`; the kind branch's probabilities of the same
    views, or None where the catalogue's model has no kind branch or the kind stage is off)."""
    views = with_mirror(img) if host.query_flip else [img]
    branch = kind_branch_for(host)
    if branch is None:
        return host.extractor.embed(views), None
    return branch.read(np.stack([branch.preprocess(v) for v in views]))


def embed_views(host: QueryHost, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """One query's preprocessed views as one batch of the model: (vectors, the kind branch's probabilities or
    None). The branch's graph is the catalogue's model with a second output: its vectors are the model's."""
    branch = kind_branch_for(host)
    if branch is None:
        return host.extractor.embed_preprocessed(np.stack(arrays)), None
    return branch.read(np.stack(arrays))


@dataclass
class SearchResult:
    """The hits of a search and the colour it ranked by: ``colour`` (a family of
    :data:`lookalike.colour.FAMILIES`, or None when no colour stage ran), where it came from
    (``colour_source``: "detected" from the picture, "preference" as asked, "product" from the product's
    colour, "liked" the liked products' agreed colour), and ``detected``: the query picture's colour as seen
    (also when a preference overrides it)."""

    hits: list[Hit]
    colour: str | None = None
    colour_source: str | None = None
    detected: ColourEstimate | None = None
    understood: str | None = None  # the words as corrected, when a misspelt word was (catalog.spelling)
    #: Judged ids left out because no product has them now (a feedback search with ``ignore_missing``).
    ignored: list[str] = field(default_factory=list)
    #: The kinds the query picture looks like and the kind the page is ranked by (:mod:`lookalike.catalog.kinds`).
    kind: KindSeen | None = None


def _colour_plan(
    host: QueryHost,
    img: Image.Image | None,
    product: Product | None,
    colour: str | None,
    colour_rank: bool | None,
) -> tuple[np.ndarray | None, float, SearchResult]:
    """(the distribution the colour stage ranks by or None, its weight, a result holding what was used)."""
    on = host.colour_rank if colour_rank is None else colour_rank
    detected = host.colour_detector.detect(img) if img is not None and (on or colour is not None) else None
    if colour is not None:
        try:
            dist = preference_distribution(colour)
        except ValueError as exc:
            raise InvalidQueryError(str(exc)) from None
        return dist, PREFERENCE_WEIGHT, SearchResult([], FAMILIES[int(dist.argmax())], "preference", detected)
    if not on:
        return None, 0.0, SearchResult([], None, None, detected)
    if detected is not None:
        return detected.probabilities, host.colour_weight, SearchResult([], detected.family, "detected", detected)
    fam = product_family(product) if product is not None else -1
    if fam >= 0:
        dist = np.zeros(len(FAMILIES), dtype=np.float32)
        dist[fam] = 1.0
        return dist, PRODUCT_COLOUR_WEIGHT, SearchResult([], FAMILIES[fam], "product", None)
    return None, 0.0, SearchResult([], None, None, None)


def picture_keys(backend: CatalogBackend) -> PictureKeys:
    """The picture hashes of product ids, as the backend stored them at ingest: its ``picture_hashes`` where it
    has one (the embedded store's: those its search just read, from memory), else one ``states`` call."""
    hashes = getattr(backend, "picture_hashes", None)
    if hashes is not None:
        return hashes  # type: ignore[no-any-return]

    def keys(ids: Sequence[str]) -> dict[str, str | None]:
        return {pid: state.image_sha for pid, state in backend.states(list(ids)).items()}

    return keys


def _context(
    host: QueryHost,
    k: int,
    filters: Filters | None,
    dist: np.ndarray | None,
    weight: float,
    collapse: bool | None = None,
    picture: bool = False,
) -> QueryContext:
    """The stages' context (collapsing identical pictures asks for no more candidates: :func:`rank_filled`
    fetches more when it left fewer than ``k``); ``picture``: the query has a picture (its kind vote weighs
    :attr:`QueryHost.photo_kind_weight`)."""
    candidates = host.colour_candidates if dist is not None else 0
    collapse = host.collapse_duplicates if collapse is None else collapse
    pictures = picture_keys(host.backend) if collapse else None
    kind = host.photo_kind_weight if picture else DEFAULT_KIND_WEIGHT
    return QueryContext(k, filters, min(MAX_K, max(k, candidates)), dist, weight, kind, pictures=pictures)


def rank_filled(
    ctx: QueryContext, fetch: Callable[[int], list[list[Hit]]], stages: Sequence[RankingStage]
) -> list[Hit]:
    """:func:`~lookalike.catalog.ranking.rank` of ``fetch(ctx.depth)`` (the candidate lists at that depth);
    when collapsing identical pictures left fewer than ``k`` hits while a list was full, the candidates are
    fetched again twice as deep (up to :data:`MAX_K`), so a query has ``k`` hits when the catalogue has ``k``
    distinct pictures that pass its filters."""
    depth = ctx.depth
    while True:
        found = fetch(depth)
        hits = rank(replace(ctx, candidates=depth), found, stages)
        full = any(len(f) >= depth for f in found)
        if len(hits) >= ctx.k or ctx.pictures is None or not full or depth >= MAX_K:
            return hits
        depth = min(MAX_K, 2 * depth)


def search(
    host: QueryHost,
    image: ImageInput | None = None,
    *,
    url: str | None = None,
    product_id: str | None = None,
    vector: np.ndarray | None = None,
    k: int = 10,
    filters: Filters | None = None,
    stages: Sequence[RankingStage] = DEFAULT_STAGES,
    colour: str | None = None,
    colour_rank: bool | None = None,
    collapse: bool | None = None,
    kind: str | None = None,
) -> SearchResult:
    """Products most like the query (:meth:`lookalike.catalog.Catalog.search` documents it), with the colour
    and the kind it was ranked by; ``collapse`` (default: the host's ``collapse_duplicates``) shows identical
    pictures once; ``kind``: rank by this kind of the catalogue's (a chip) instead of the one the picture shows."""
    check_k(k)
    given = [x is not None for x in (image, url, product_id, vector)]
    if sum(given) != 1:
        raise InvalidQueryError("give exactly one of image, url, product_id or vector")
    exclude: set[str] = set()
    product = None
    if product_id is not None:
        vec = product_vectors(host.backend, product_id)  # every picture of the product: each a view
        exclude.add(product_id)
        product = host.backend.get(product_id)
    elif url is not None or image is not None:
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise InvalidQueryError("url must start with http:// or https://")
        img = query_image(host, url if url is not None else image)  # type: ignore[arg-type]
        dist, weight, result = _colour_plan(host, img, None, colour, colour_rank)
        views, read = picture_views(host, img)
        prior, result.kind = kind_plan(host, views, kind, read)
        ctx = with_kind(_context(host, k, filters, dist, weight, collapse, picture=True), prior, host.colour_candidates)
        result.hits = rank_filled(ctx, lambda d: host.search_vectors(views, k=d, filters=filters), stages)
        return result
    else:
        vec = np.asarray(vector, dtype=np.float32)
    dist, weight, result = _colour_plan(host, None, product, colour, colour_rank)
    prior, result.kind = kind_plan(host, None, kind)
    ctx = with_kind(_context(host, k, filters, dist, weight, collapse), prior, host.colour_candidates)
    query = vec if vec.ndim == 2 else vec[None, :]
    skip = [exclude] * query.shape[0]
    result.hits = rank_filled(ctx, lambda d: host.search_vectors(query, k=d, filters=filters, exclude=skip), stages)
    return result


def product_vectors(backend: CatalogBackend, product_id: str) -> np.ndarray:
    """The vectors of every picture of a product, (n, dim) (the main picture's alone where the backend cannot
    list them); :class:`ProductNotFoundError` for an unknown id."""
    many = getattr(backend, "picture_vectors_of", None)
    vecs = many([product_id]).get(product_id) if many is not None else None
    if vecs is None:
        one = backend.vector_of(product_id)
        if one is None:
            raise ProductNotFoundError(f"no product with id {product_id!r}")
        vecs = one[None, :]
    return np.asarray(vecs, dtype=np.float32)


def search_vectors(
    host: QueryHost,
    vectors: np.ndarray,
    k: int = 10,
    filters: Filters | None = None,
    exclude: Sequence[set[str]] | None = None,
) -> list[list[Hit]]:
    """Search a batch of query vectors; ``exclude[i]`` lists product ids to leave out of query i."""
    check_k(k)
    q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, host.dim)
    if not np.all(np.isfinite(q)):
        raise InvalidQueryError("query vector has NaN or infinite values")
    extra = max((len(e) for e in exclude), default=0) if exclude else 0
    found = host.backend.search_pictures(q, k + extra, filters)
    out: list[list[Hit]] = []
    for qi, row in enumerate(found):
        skip = exclude[qi] if exclude else set()
        hits = [Hit(p.id, score, p, matched_image=pos) for p, score, pos in row if p.id not in skip][:k]
        out.append(hits)
    return out


def search_many(
    host: QueryHost,
    images: Sequence[ImageInput],
    k: int = 10,
    filters: Filters | None = None,
    batch_size: int = 32,
    stages: Sequence[RankingStage] = DEFAULT_STAGES,
    colour: str | None = None,
    colour_rank: bool | None = None,
    kind: str | None = None,
) -> list[SearchResult | LookalikeError]:
    """Search many query images at once (batched embedding); a query that fails gives its error (``kind``: as
    :func:`search`'s, for every query)."""
    check_k(k)
    results: list[SearchResult | LookalikeError] = [InvalidQueryError("not run")] * len(images)

    def prep(image: ImageInput) -> tuple[list[np.ndarray], QueryContext, SearchResult] | LookalikeError:
        try:
            img = query_image(host, image)
            dist, weight, result = _colour_plan(host, img, None, colour, colour_rank)
            arrays = [host.extractor.preprocess(v) for v in (with_mirror(img) if host.query_flip else [img])]
            return arrays, _context(host, k, filters, dist, weight, picture=True), result
        except LookalikeError as exc:
            return exc
        except Exception as exc:
            return InvalidQueryError(f"unexpected {type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) + 2)) as pool:
        for start in range(0, len(images), batch_size):
            chunk = list(pool.map(prep, images[start : start + batch_size]))
            good = [(i, a) for i, a in enumerate(chunk) if isinstance(a, tuple)]
            for i, a in enumerate(chunk):
                if isinstance(a, LookalikeError):
                    results[start + i] = a
            if good:
                # each query's views as one batch of the model, as a single search embeds them: an FP32 graph's
                # row depends on its place in the batch (1 ulp), and then a batch would not equal its searches
                embedded = [embed_views(host, a[0]) for _, a in good]
                vecs = np.concatenate([v for v, _ in embedded])
                depth = max(max(ctx.depth, host.colour_candidates) for _, (_, ctx, _) in good)
                found = host.search_vectors(vecs, k=depth, filters=filters)
                row = 0
                for (i, (views, base, result)), (_, read) in zip(good, embedded, strict=True):
                    mine = vecs[row : row + len(views)]
                    try:
                        prior, result.kind = kind_plan(host, mine, kind, read)
                    except LookalikeError as exc:
                        results[start + i], row = exc, row + len(views)
                        continue
                    ctx = with_kind(base, prior, host.colour_candidates)
                    first = [f[: ctx.depth] for f in found[row : row + len(views)]]
                    row += len(views)

                    def fetch(
                        d: int, mine: np.ndarray = mine, first: list[list[Hit]] = first, known: int = ctx.depth
                    ) -> list[list[Hit]]:
                        return first if d <= known else host.search_vectors(mine, d, filters)

                    result.hits = rank_filled(ctx, fetch, stages)
                    results[start + i] = result
    return results
