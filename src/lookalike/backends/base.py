"""What a catalogue backend stores and answers. ``Catalog`` does the rest (models, pictures, ingest).

Two implementations: :class:`~lookalike.backends.embedded.EmbeddedBackend` (SQLite + FAISS in the
catalogue directory, the default) and :class:`~lookalike.backends.milvus.MilvusBackend` (Milvus Lite or a
Milvus cluster). The catalogue test suite runs against both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lookalike.product import Filters, Product

__all__ = ["CatalogBackend", "ScoredProducts", "StoredState", "UpsertItem", "without_field"]

ScoredProducts = list[tuple[Product, float]]


@dataclass(frozen=True)
class StoredState:
    """What a backend remembers about a product, to decide whether re-ingest can skip it."""

    image: str | None
    image_sha: str | None
    meta_hash: str | None
    image_file: str | None


@dataclass
class UpsertItem:
    """A product to write; ``vector`` None means a metadata-only update of an existing product."""

    product: Product
    vector: np.ndarray | None
    image_sha: str | None = None
    image_file: str | None = None


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

    def text_search(self, text: str, k: int, filters: Filters | None = None) -> ScoredProducts:
        """Top-``k`` products for ``text`` by their words (BM25, higher is better), filters applied; a
        backend without a word index returns ``[]`` (a text query is then answered by vectors alone)."""

    def verify(self) -> dict[str, Any]: ...

    def checkpoint(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
