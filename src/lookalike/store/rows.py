"""The SQLite store's product rows read back into :class:`~lookalike.product.Product` objects, and the picture
hashes a search's rows brought along (so collapsing identical pictures asks the database nothing more).

A search reads its candidates' rows once (:data:`SEARCH_COLUMNS`: the product's fields and its picture's
hash, as plain tuples: a ``sqlite3.Row`` and a field-by-name dict cost more than the query) and
:class:`PictureHashes` remembers each one's hash for the store state it was read in, for
:func:`lookalike.catalog.ranking.collapse_duplicates` a moment later.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from lookalike.product import Product

__all__ = ["PRODUCT_COLUMNS", "SEARCH_COLUMNS", "PictureHashes", "product_of", "read_products", "row_to_product"]

PRODUCT_COLUMNS = (
    "id", "title", "brand", "category", "subcategory", "article_type", "colour", "gender", "price",
    "image", "url", "extra",
)  # fmt: skip
#: What a search reads of a product: its row id, :data:`PRODUCT_COLUMNS` and its picture's hash.
SEARCH_COLUMNS = ", ".join(("rowid", *PRODUCT_COLUMNS, "image_sha"))
_EXTRA = PRODUCT_COLUMNS.index("extra") + 1
_CHUNK = 500


def _extra(text: str | None) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    try:
        return json.loads(text)  # type: ignore[no-any-return]
    except ValueError:
        return {}


def row_to_product(row: sqlite3.Row) -> Product:
    """A product from a ``products`` row read with ``sqlite3.Row`` (``SELECT *``)."""
    data = {c: row[c] for c in PRODUCT_COLUMNS}
    data["extra"] = _extra(data["extra"])
    return Product(**data)


def product_of(values: Sequence[Any]) -> Product:
    """A product from a tuple of :data:`SEARCH_COLUMNS` (row id first, picture hash last)."""
    return Product(*values[1:_EXTRA], _extra(values[_EXTRA]))  # type: ignore[arg-type]


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _tuples(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = None
    return cur


def read_products(conn: sqlite3.Connection, rowids: list[int], seq: int, hashes: PictureHashes) -> dict[int, Product]:
    """The products of ``rowids`` that exist, by row id, read at store state ``seq`` (read before them): their
    picture hashes go to ``hashes``."""
    out: dict[int, Product] = {}
    cur = _tuples(conn)
    for chunk in _chunks(rowids):
        marks = ",".join("?" * len(chunk))
        found = cur.execute(f"SELECT {SEARCH_COLUMNS} FROM products WHERE rowid IN ({marks})", chunk).fetchall()
        out.update((int(r[0]), product_of(r)) for r in found)
        hashes.remember(seq, [(r[1], r[-1]) for r in found])
    return out


class PictureHashes:
    """Product id → picture hash (None: none stored) of the rows searches read, for one store state at a time
    (``seq``; another state forgets them all), at most ``max_ids`` of them. Thread-safe."""

    def __init__(self, max_ids: int = 20_000) -> None:
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._seq = -1
        self._hashes: dict[str, str | None] = {}

    def remember(self, seq: int, pairs: Iterable[tuple[str, str | None]]) -> None:
        """Keep the (id, hash) pairs read at store state ``seq`` (read before the rows: never older than it)."""
        with self._lock:
            if seq != self._seq or len(self._hashes) > self.max_ids:
                self._seq, self._hashes = seq, {}
            self._hashes.update(pairs)

    def known(self, seq: int, ids: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
        """(the hashes known at state ``seq`` of ``ids``, the ids not known)."""
        with self._lock:
            if seq != self._seq:
                return {}, list(ids)
            found = {i: self._hashes[i] for i in ids if i in self._hashes}
        return found, [i for i in ids if i not in found]

    def lookup(self, conn: sqlite3.Connection, seq: int, ids: list[str]) -> dict[str, str | None]:
        """The hash of each of ``ids`` that exists, at store state ``seq``: from memory, else from ``conn``."""
        found, missing = self.known(seq, ids)
        cur = _tuples(conn)
        for chunk in _chunks(missing):
            marks = ",".join("?" * len(chunk))
            found.update(cur.execute(f"SELECT id, image_sha FROM products WHERE id IN ({marks})", chunk))
        return found
