"""A catalogue: products, their embeddings and pictures, searchable by image, URL or product.

By default a catalogue is a directory: ``manifest.json``, ``products.db`` (SQLite), ``index.<seq>.faiss``
and ``images/`` (a copy of every product picture, content-addressed); see
:mod:`lookalike.backends.embedded` for how the index and the store stay in step. With
``backend="milvus"`` the products and vectors live in a Milvus collection instead
(:mod:`lookalike.backends.milvus`). :class:`Catalog` owns what both share: the extractor, the ingest
pipeline, the pictures and the search API.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.backends.base import CatalogBackend, UpsertItem
from lookalike.backends.embedded import EmbeddedBackend
from lookalike.catalog import feedback, look, product_pictures, query, words
from lookalike.catalog.backend_choice import create_catalog, embedded_backend, open_catalog, record_index
from lookalike.catalog.check import catalog_info, verify_backend
from lookalike.catalog.ingest import IngestProgress, IngestReport, add_product, keep_predicted_colour
from lookalike.catalog.ingest import ingest as run_ingest
from lookalike.catalog.ingest_lock import ingest_lock
from lookalike.catalog.model_files import load_extractor
from lookalike.catalog.pictures import PictureStore
from lookalike.catalog.query import ImageInput, SearchResult
from lookalike.catalog.ranking import COLOUR_CANDIDATES, DEFAULT_STAGES, RankingStage
from lookalike.catalog.text_query import FUSION, IMAGE_TEXT_WEIGHT, TEXT_BM25_WEIGHT, WORDS_COLOUR_WEIGHT
from lookalike.colour.detect import ColourDetector, default_colour_detector
from lookalike.colour.ranking import DEFAULT_COLOUR_WEIGHT, PHOTO_KIND_WEIGHT
from lookalike.errors import LookalikeError, ModelMismatchError, ProductNotFoundError
from lookalike.extractors import Extractor
from lookalike.extractors.identity import model_family
from lookalike.imaging import DecodeLimits, FetchSettings
from lookalike.index import IndexPolicy
from lookalike.manifest import embedded_root
from lookalike.product import FILTER_FIELDS, Filters, Hit, Product
from lookalike.sources import IngestRecord

__all__ = ["Catalog", "IngestProgress", "IngestReport"]


class Catalog(look.LookMixin):
    """A searchable product catalogue in one directory."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        backend: CatalogBackend | None = None,
        extractor: Extractor | None = None,
        decode_limits: DecodeLimits | None = None,
        fetch_settings: FetchSettings | None = None,
        images_dir: Path | None = None,
        index_policy: IndexPolicy | None = None,
        query_flip: bool = True,
        colour_rank: bool = True,
        collapse_duplicates: bool = True,
    ) -> None:
        """Use :meth:`create` or :meth:`open`. ``path`` is the catalogue directory (embedded) or the
        collection name (Milvus); pictures go to ``images_dir`` (default ``path/images``). The embedded
        index follows ``index_policy`` (default: the one in the manifest). ``query_flip``: a search
        picture is embedded with its mirror image and each product scores the better of the two
        similarities (:func:`~lookalike.extractors.base.with_mirror`); catalogue vectors are never flipped.
        ``colour_rank``: the top :attr:`colour_candidates` are re-ranked by similarity plus
        :attr:`colour_weight` × agreement with the query's colour (detected in a picture, or a product's own).
        ``collapse_duplicates``: products with byte-identical pictures show as one hit, the best-ranked, listing
        the others in :attr:`Hit.duplicates <lookalike.product.Hit>`. :attr:`ranking_stages` turn each query's
        candidate lists into its hits, in order (:mod:`lookalike.catalog.ranking`)."""
        self.path = path
        self.query_flip = query_flip
        self.colour_rank = colour_rank
        self.collapse_duplicates = collapse_duplicates
        self.colour_weight = DEFAULT_COLOUR_WEIGHT
        self.photo_kind_weight = PHOTO_KIND_WEIGHT  # the nearest products' vote, where the kind head cannot read
        self.kind_rank = True  # a query picture's kind (the kind head) ranks up its kind: catalog.kinds
        self.colour_candidates = COLOUR_CANDIDATES
        self._colour_detector: ColourDetector | None = None
        self.text_fusion = FUSION
        self.text_weight = TEXT_BM25_WEIGHT
        self.image_text_weight = IMAGE_TEXT_WEIGHT
        self.words_colour_weight = WORDS_COLOUR_WEIGHT
        self._text_encoder: Any = None
        self._article_types: tuple[int, tuple[str, ...]] | None = None
        self.ranking_stages: tuple[RankingStage, ...] = DEFAULT_STAGES
        self.manifest = manifest
        self.dim = int(manifest["extractor"]["dim"])
        self.decode_limits = decode_limits or DecodeLimits()
        self.fetch_settings = fetch_settings or FetchSettings()
        self._extractor = extractor
        self._extractor_lock = threading.Lock()
        if backend is None:
            backend = embedded_backend(path, manifest, index_policy)
        self.backend: CatalogBackend = backend
        self.pictures = PictureStore(images_dir if images_dir is not None else path / "images")
        self.pictures.remove_leftovers()  # temp files of picture writes a killed process left behind

    @property
    def store(self) -> CatalogBackend:
        """The backend (kept under this name for the product-store reads: count, get, facets...)."""
        return self.backend

    @property
    def index(self) -> Any:
        """The embedded backend's FAISS index."""
        return getattr(self.backend, "index", None)

    # --- opening -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        extractor: str | Extractor | None = None,
        exist_ok: bool = False,
        backend: str = "embedded",
        uri: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> Catalog:
        """Create a catalogue at ``path`` for ``extractor`` (or open it when it exists and ``exist_ok``).

        With ``backend="milvus"``, ``path`` names the collection and ``uri`` the Milvus server
        (``http://host:19530``) or a local Milvus Lite file (``./catalog.db``). No ``extractor``: the
        default model, or its INT8 variant when that was measured within 0.01 mP@10 of it
        (:func:`lookalike.extractors.quantize.preferred_extractor`).
        """
        return create_catalog(cls, path, extractor, exist_ok, backend, uri, token, **kwargs)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        extractor: str | Extractor | None = None,
        backend: str = "embedded",
        uri: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> Catalog:
        """Open an existing catalogue. Passing ``extractor`` checks it is the one the catalogue uses."""
        return open_catalog(cls, path, extractor, backend, uri, token, **kwargs)

    @property
    def extractor(self) -> Extractor:
        """The catalogue's extractor, loaded on first use."""
        if self._extractor is None:
            with self._extractor_lock:
                if self._extractor is None:
                    root = embedded_root(self.path)
                    ext = load_extractor(self.manifest["extractor"], root, str(self.path))
                    if ext.dim != self.dim:
                        raise ModelMismatchError(
                            f"extractor {ext.name!r} now gives {ext.dim}-d vectors; the catalogue holds {self.dim}-d"
                        )
                    self._extractor = ext
        return self._extractor

    @property
    def extractor_name(self) -> str:
        return str(self.manifest["extractor"]["name"])

    def __len__(self) -> int:
        return self.store.count()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Checkpoint the index if it moved, record its type in the manifest, and close the backend."""
        with contextlib.suppress(LookalikeError, OSError, sqlite3.DatabaseError):  # a damaged store still closes
            self._record_index()
        self.backend.close()

    # --- consistency ------------------------------------------------------------------------------
    def sync(self) -> None:
        """See other processes' writes now (searches do this by themselves)."""
        sync = getattr(self.backend, "sync", None)
        if sync is not None:
            sync()

    def checkpoint(self) -> None:
        """Persist the index (embedded backend); a no-op where the backend persists by itself."""
        self.backend.checkpoint()
        self._record_index()

    def _record_index(self) -> None:
        record_index(self.path, self.manifest, self.backend)

    def verify(self) -> dict[str, Any]:
        """Check that the index and the store hold the same products and (embedded) that the store's pages are
        sound (SQLite's quick_check): ``ok``, ``problems`` (:func:`~lookalike.catalog.check.verify_backend`)."""
        return verify_backend(self.backend)

    # --- images --------------------------------------------------------------------------------
    @property
    def images_dir(self) -> Path:
        """The folder of the catalogue's pictures (:class:`~lookalike.catalog.pictures.PictureStore`)."""
        return self.pictures.root

    def image_path(self, product_id: str, position: int = 0) -> Path:
        """A product's stored picture: its main one, or the one at ``position`` (inside the picture folder)."""
        if position:
            return product_pictures.picture_path(self, product_id, position)
        return self.pictures.image_path(self.store, product_id)

    def add_picture(self, product_id: str, image: ImageInput) -> int:
        """Add a picture to a product (after its others; :mod:`~lookalike.catalog.product_pictures`)."""
        name = None if isinstance(image, bytes | bytearray | memoryview | Image.Image) else os.fspath(image)
        return product_pictures.add_picture(self, product_id, self._image_bytes(image), name)

    def remove_picture(self, product_id: str, position: int) -> None:
        product_pictures.remove_picture(self, product_id, position)

    # --- ingest --------------------------------------------------------------------------------
    def ingest(
        self,
        records: Iterable[IngestRecord],
        batch_size: int = 64,
        workers: int | None = None,
        refresh: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        processes: bool | None = None,
    ) -> IngestReport:
        """Add or update products in batches; each batch is one transaction (resumable): unchanged products
        (same pictures, same metadata) are skipped without decoding; a product whose pictures cannot be read is
        reported in ``IngestReport.failed`` (some of them: ``IngestReport.partial``) and the rest goes on. The
        pipeline (worker processes or threads, the model's bulk twin, the writer thread, ``progress`` after each
        commit) is :func:`lookalike.catalog.ingest.ingest`'s. One ingest per catalogue at a time
        (:class:`~lookalike.errors.CatalogBusyError` at once when another holds it)."""
        with ingest_lock(self.images_dir):  # one ingest per catalogue at a time (CatalogBusyError)
            return run_ingest(self, records, batch_size, workers, refresh, progress, processes)

    def upsert(self, product: Product, image: ImageInput | None = None) -> str:
        """Add or update one product. With no ``image``, only its metadata changes (it must exist)."""
        if image is None:
            if self.store.get(product.id) is None:
                raise ProductNotFoundError(f"no product with id {product.id!r}; a new product needs an image")
            self.backend.upsert([UpsertItem(keep_predicted_colour(self.backend, product), None)])
            return "updated"
        return add_product(self, product, self._image_bytes(image))

    def delete(self, product_ids: Sequence[str]) -> int:
        """Delete products by id; returns how many existed. Their pictures go when no product uses them."""
        with self.pictures.locked():
            n, files = self.backend.delete(list(product_ids))
            self.pictures.remove_unused(files, self.backend.image_file_in_use)
        return n

    # --- search --------------------------------------------------------------------------------
    def _image_bytes(self, image: ImageInput) -> bytes:
        return query.image_bytes(self, image)

    def embed_query(self, image: ImageInput) -> np.ndarray:
        """The vector of an image (path, URL, bytes or PIL image), as the catalogue's vectors are made."""
        return query.embed_query(self, image)

    def query_vectors(self, image: ImageInput) -> np.ndarray:
        """What a search with this image looks for: (1, dim), or with :attr:`query_flip` (2, dim) with its mirror's."""
        return query.query_vectors(self, image)

    @property
    def colour_detector(self) -> ColourDetector:
        """The detector of a query picture's colour (the shipped segmenter and colour head, loaded once)."""
        if self._colour_detector is None:
            self._colour_detector = default_colour_detector()
        return self._colour_detector

    @property
    def text_encoder(self) -> Any:
        """The text tower (:func:`lookalike.text.default_text_encoder`), or None when its vectors do not
        live in this catalogue's space (another image model): words are then searched by BM25 alone."""
        if self._text_encoder is None:
            from lookalike.text import default_text_encoder

            enc = default_text_encoder()
            fits = enc.dim == self.dim and model_family(self.extractor_name) == model_family(enc.image_model)
            self._text_encoder = enc if fits else False
        return self._text_encoder or None

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        """The text tower's vectors of ``texts`` (n, dim) in the catalogue's space, or None (:attr:`text_encoder`)."""
        enc = self.text_encoder
        return None if enc is None else enc.encode(list(texts))

    def article_types(self) -> tuple[str, ...]:
        """The catalogue's article types (the words a query may name), remembered per store state."""
        # Milvus: its facets read every row, so once a minute
        embedded = isinstance(self.backend, EmbeddedBackend)
        seq = self.backend.seq() if embedded else -int(time.monotonic() // 60) - 1  # type: ignore[union-attr]
        if self._article_types is None or self._article_types[0] != seq:
            types = tuple(str(v) for v, _ in self.backend.facets(("article_type",)).get("article_type", []))
            self._article_types = (seq, types)
        return self._article_types[1]

    def search(
        self,
        image: ImageInput | None = None,
        *,
        url: str | None = None,
        product_id: str | None = None,
        vector: np.ndarray | None = None,
        k: int = 10,
        filters: Filters | None = None,
        colour: str | None = None,
        colour_rank: bool | None = None,
        text: str | None = None,
        collapse: bool | None = None,
        positive: Sequence[str] | None = None,
        negative: Sequence[str] | None = None,
        ignore_missing: bool = False,
        region: look.RegionInput | None = None,
        kind: str | None = None,
    ) -> list[Hit]:
        """Products most like the query: an image (path, bytes, PIL), an image ``url``, a catalogue
        ``product_id`` ("more like this": the product itself is left out) or a ``vector``; or ``text``
        ("navy blue shirt for men"), alone or with one of them ("this, but in red"): :mod:`~.catalog.words`.
        Ranked by similarity and, unless ``colour_rank`` (default: :attr:`colour_rank`) is off, by agreement
        with the query's colour or the ``colour`` preference (not a filter). ``collapse`` (default:
        :attr:`collapse_duplicates`): products sharing one picture show once. ``positive`` / ``negative``: ids of
        liked / disliked products (feedback, also alone: :mod:`lookalike.catalog.feedback`). ``region``: search a part
        of the picture, (x0, y0, x1, y1) in fractions of its width and height (:mod:`lookalike.catalog.look`). A
        picture's kind (the kind head) ranks up its kind, or ``kind``, a catalogue kind: :mod:`~.catalog.kinds`."""
        return self.search_result(
            image, url=url, product_id=product_id, vector=vector, k=k, filters=filters, colour=colour,
            colour_rank=colour_rank, text=text, collapse=collapse, positive=positive, negative=negative,
            ignore_missing=ignore_missing, region=region, kind=kind,
        ).hits  # fmt: skip

    def search_result(
        self,
        image: ImageInput | None = None,
        *,
        url: str | None = None,
        product_id: str | None = None,
        vector: np.ndarray | None = None,
        k: int = 10,
        filters: Filters | None = None,
        colour: str | None = None,
        colour_rank: bool | None = None,
        text: str | None = None,
        collapse: bool | None = None,
        positive: Sequence[str] | None = None,
        negative: Sequence[str] | None = None,
        ignore_missing: bool = False,
        region: look.RegionInput | None = None,
        kind: str | None = None,
    ) -> SearchResult:
        """:meth:`search` with the colour and kind it ranked by, the query picture's detected colour and kinds, and
        the judged ids ignored (not in the catalogue, with ``ignore_missing``)."""
        image, url = look.with_region(self, image, url, region)  # a region: its crop is the picture searched
        return feedback.search(
            self, image, url=url, product_id=product_id, vector=vector, text=text, k=k, filters=filters,
            stages=self.ranking_stages, colour=colour, colour_rank=colour_rank, collapse=collapse, positive=positive,
            negative=negative, ignore_missing=ignore_missing, kind=kind,
        )  # fmt: skip

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filters: Filters | None = None,
        exclude: Sequence[set[str]] | None = None,
    ) -> list[list[Hit]]:
        """Search a batch of query vectors; ``exclude[i]`` lists product ids to leave out of query i."""
        return query.search_vectors(self, vectors, k, filters, exclude)

    def search_many(
        self,
        images: Sequence[ImageInput],
        k: int = 10,
        filters: Filters | None = None,
        batch_size: int = 32,
        colour: str | None = None,
        colour_rank: bool | None = None,
        kind: str | None = None,
    ) -> list[list[Hit] | LookalikeError]:
        """Search many query images at once (batched embedding); a query that fails gives its error."""
        return [
            r if isinstance(r, LookalikeError) else r.hits
            for r in self.search_many_results(images, k, filters, batch_size, colour, colour_rank, kind)
        ]

    def search_many_results(
        self,
        images: Sequence[ImageInput],
        k: int = 10,
        filters: Filters | None = None,
        batch_size: int = 32,
        colour: str | None = None,
        colour_rank: bool | None = None,
        kind: str | None = None,
    ) -> list[SearchResult | LookalikeError]:
        """:meth:`search_many` with each query's colour and kinds (as :meth:`search_result`)."""
        return query.search_many(
            self, images, k, filters, batch_size, self.ranking_stages, colour=colour, colour_rank=colour_rank, kind=kind
        )

    def search_texts(
        self,
        texts: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        colour: str | None = None,
        colour_rank: bool | None = None,
    ) -> list[SearchResult | LookalikeError]:
        """Search many phrases at once (one batch of the text tower); a phrase that fails gives its error."""
        return words.search_texts(self, texts, k, filters, self.ranking_stages, colour, colour_rank)

    # --- browsing ------------------------------------------------------------------------------
    def get(self, product_id: str) -> Product:
        product = self.store.get(product_id)
        if product is None:
            raise ProductNotFoundError(f"no product with id {product_id!r}")
        return product

    def products(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]:
        return self.store.list(filters, offset=offset, limit=limit)

    def count(self, filters: Filters | None = None) -> int:
        return self.backend.count(filters)

    def facets(
        self, fields: Sequence[str] = FILTER_FIELDS, filters: Filters | None = None
    ) -> dict[str, list[tuple[Any, Any]]]:
        """Values and counts of the filter fields and the price range (``filters``: each but the field's own)."""
        return self.backend.facets(fields, filters)

    def info(self) -> dict[str, Any]:
        """What ``lookalike info`` prints: path, counts, model, backend, errors, bytes on disk, versions."""
        return catalog_info(self)
