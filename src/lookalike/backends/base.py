"""What a catalogue backend stores and answers. ``Catalog`` does the rest (models, pictures, ingest).

Two implementations: :class:`~lookalike.backends.embedded.EmbeddedBackend` (SQLite + FAISS in the
catalogue directory, the default) and :class:`~lookalike.backends.milvus.MilvusBackend` (Milvus Lite or a
Milvus cluster). The catalogue test suite runs against both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from lookalike.product import Filters, Product

__all__ = [
    "MAX_PICTURES",
    "CatalogBackend",
    "PictureHits",
    "ScoredProducts",
    "StoredPicture",
    "StoredState",
    "UpsertItem",
    "without_field",
]

ScoredProducts = list[tuple[Product, float]]
#: A search's hits for one query: (product, similarity of its best picture, that picture's position), best first.
PictureHits = list[tuple[Product, float, int]]
#: The most pictures a product keeps (its first ``MAX_PICTURES``; the embedded index numbers a product's
#: pictures ``product row id × MAX_PICTURES + position``).
MAX_PICTURES = 64


class StoredPicture(NamedTuple):
    """One stored picture of a product: where it came from, the SHA-256 of its bytes, its file in the
    catalogue's picture folder."""

    image: str | None
    image_sha: str | None
    image_file: str | None


@dataclass(frozen=True)
class StoredState:
    """What a backend remembers about a product, to decide whether re-ingest can skip it: its main picture
    (``image``, ``image_sha``, ``image_file``) and every picture in order (``pictures``)."""

    image: str | None
    image_sha: str | None
    meta_hash: str | None
    image_file: str | None
    pictures: tuple[StoredPicture, ...] = ()

    def all_pictures(self) -> tuple[StoredPicture, ...]:
        """``pictures``, or the main picture alone when the backend did not list them."""
        return self.pictures or (StoredPicture(self.image, self.image_sha, self.image_file),)


@dataclass
class UpsertItem:
    """A product to write; ``vector`` None means a metadata-only update of an existing product (its pictures
    and vectors kept). ``vector``: (dim,) for one picture or (n, dim), one row per picture in order;
    ``pictures``: each picture's source, hash and file (empty: one picture, ``image_sha`` and ``image_file``)."""

    product: Product
    vector: np.ndarray | None
    image_sha: str | None = None
    image_file: str | None = None
    pictures: Sequence[StoredPicture] = ()

    def vectors(self) -> np.ndarray | None:
        """The vectors as (n, dim) float32, or None for a metadata-only update."""
        if self.vector is None:
            return None
        vec = np.asarray(self.vector, dtype=np.float32)
        return vec[None, :] if vec.ndim == 1 else vec

    def picture_rows(self) -> list[StoredPicture]:
        """One :class:`StoredPicture` per vector row (the main picture first)."""
        vecs = self.vectors()
        n = 0 if vecs is None else vecs.shape[0]
        if self.pictures:
            rows = list(self.pictures)
        else:
            rows = [StoredPicture(self.product.image, self.image_sha, self.image_file)]
        if n and len(rows) != n:
            raise ValueError(f"product {self.product.id!r}: {n} vectors for {len(rows)} pictures")
        return rows


def without_field(filters: Filters | None, name: str) -> Filters | None:
    """``filters`` without the filter on ``name``: what the facet counts of ``name`` are over."""
    if filters is None or getattr(filters, name, None) in (None, "", ()):
        return filters
    return dataclasses.replace(filters, **{name: None})


@runtime_checkable
class CatalogBackend(Protocol):
    """Products, their vectors and filtered nearest-neighbour search."""

    dim: int

    def count(self, filters: Filters | None = None) -> int: ...

    def get(self, product_id: str) -> Product | None: ...

    def list(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]: ...

    def iter_ids(self) -> Any: ...

    def facets(self, fields: Sequence[str] = ..., filters: Filters | None = None) -> dict[str, list[tuple[Any, Any]]]:
        """Each field's values and counts over the products passing every filter but the field's own
        (``filters`` minus that field, see :func:`without_field`), and ``"price"``: the (min, max) over all."""

    def states(self, product_ids: Sequence[str]) -> dict[str, StoredState]: ...

    def vector_of(self, product_id: str) -> np.ndarray | None: ...

    def vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def image_file_of(self, product_id: str) -> str | None: ...

    def image_file_in_use(self, image_file: str) -> bool: ...

    def errors(self) -> list[dict[str, Any]]: ...

    def upsert(self, items: Sequence[UpsertItem], errors: Sequence[tuple[str, str | None, str]] = ()) -> None:
        """Write ``items`` (and record ingest ``errors``) atomically; searches then see them."""

    def delete(self, product_ids: Sequence[str]) -> tuple[int, list[str]]:
        """Delete products; returns (how many existed, their stored picture files)."""

    def search(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredProducts]:
        """Top-``k`` products per query by cosine similarity, filters applied inside the search."""

    def search_pictures(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[PictureHits]:
        """Top-``k`` products per query, each scored by its best-matching picture and listed once, with the
        position of that picture in :attr:`Product.images`."""

    def picture_vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Every picture's vector of each product, (n, dim) in picture order."""

    def picture_file_of(self, product_id: str, position: int) -> str | None:
        """The stored file of a product's picture at ``position`` (None: no such picture)."""

    def text_search(self, text: str, k: int, filters: Filters | None = None) -> ScoredProducts:
        """Top-``k`` products for ``text`` by their words (BM25, higher is better), filters applied; a
        backend without a word index returns ``[]`` (a text query is then answered by vectors alone)."""

    def verify(self) -> dict[str, Any]: ...

    def checkpoint(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
