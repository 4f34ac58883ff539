"""The SQLite store's product rows read back into :class:`~lookalike.product.Product` objects, and the memory of
the rows searches read (so the next search at the same store state, and the collapse of identical pictures a
moment later, ask the database nothing more).

A search reads its candidates' rows (:data:`SEARCH_COLUMNS`: the product's fields and its picture's hash, as
plain tuples: a ``sqlite3.Row`` and a field-by-name dict cost more than the query). :class:`SearchRows` keeps the
tuples read at one store state (``seq``; every write bumps it, and another state forgets them all), at most
``max_rows`` of them: a colour-ranked search reads about 220 candidates, and between writes most of them were
read by an earlier search already. Each search builds its own :class:`Product` objects from the tuples, so a
caller that changes a hit's product changes nothing for the next search.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from lookalike.product import Product

__all__ = [
    "PRODUCT_COLUMNS",
    "SEARCH_COLUMNS",
    "SearchRows",
    "images_text",
    "product_of",
    "read_products",
    "row_to_product",
]

PRODUCT_COLUMNS = (
    "id", "title", "brand", "category", "subcategory", "article_type", "colour", "gender", "price",
    "image", "url", "extra", "images", "in_stock",
)  # fmt: skip
#: What a search reads of a product: its row id, :data:`PRODUCT_COLUMNS` and its picture's hash.
SEARCH_COLUMNS = ", ".join(("rowid", *PRODUCT_COLUMNS, "image_sha"))
_EXTRA = PRODUCT_COLUMNS.index("extra") + 1
_CHUNK = 500
_SCALARS = (str, int, float, bool, type(None))


@lru_cache(maxsize=4096)
def _flat_extra(text: str) -> tuple[tuple[str, Any], ...] | None:
    """The items of an ``extra`` JSON object whose values are all scalars (catalogue rows repeat a few such
    objects: season, usage, year), else None (parsed afresh each time, so no two products share a list)."""
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    if all(isinstance(v, _SCALARS) for v in data.values()):
        return tuple(data.items())
    return None


def _extra(text: str | None) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    flat = _flat_extra(text)
    if flat is not None:
        return dict(flat)
    return json.loads(text)  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def _images(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(i) for i in data) if isinstance(data, list) else ()


def images_text(images: Sequence[str]) -> str | None:
    """How the ``images`` column stores a product's picture sources (None for at most one: ``image`` says it)."""
    return json.dumps(list(images)) if len(images) > 1 else None


def _stock(value: Any) -> bool | None:
    return None if value is None else bool(value)


def row_to_product(row: sqlite3.Row) -> Product:
    """A product from a ``products`` row read with ``sqlite3.Row`` (``SELECT *``)."""
    data = {c: row[c] for c in PRODUCT_COLUMNS}
    data["extra"] = _extra(data["extra"])
    data["images"] = list(_images(data["images"]))
    data["in_stock"] = _stock(data["in_stock"])
    return Product(**data)


def product_of(values: Sequence[Any]) -> Product:
    """A product from a tuple of :data:`SEARCH_COLUMNS` (row id first, picture hash last)."""
    return Product(
        *values[1:_EXTRA],
        _extra(values[_EXTRA]),  # type: ignore[arg-type]
        list(_images(values[_EXTRA + 1])),
        _stock(values[_EXTRA + 2]),
    )


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _tuples(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = None
    return cur


def read_products(conn: sqlite3.Connection, rowids: list[int], seq: int, memory: SearchRows) -> dict[int, Product]:
    """The products of ``rowids`` that exist, by row id, at store state ``seq`` (read before them): the rows
    ``memory`` kept for that state, the others read from ``conn`` (and kept)."""
    rows, missing = memory.rows(seq, rowids)
    cur = _tuples(conn)
    for chunk in _chunks(missing):
        marks = ",".join("?" * len(chunk))
        found = cur.execute(f"SELECT {SEARCH_COLUMNS} FROM products WHERE rowid IN ({marks})", chunk).fetchall()
        rows.extend(found)
        memory.remember(seq, found)
    return {int(r[0]): product_of(r) for r in rows}


class SearchRows:
    """The :data:`SEARCH_COLUMNS` tuples searches read, for one store state at a time (``seq``; another state
    forgets them all), at most ``max_rows`` of them (then it starts again), and from them each product id's
    picture hash (None: none stored). Thread-safe."""

    def __init__(self, max_rows: int = 20_000) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._seq = -1
        self._rows: dict[int, tuple[Any, ...]] = {}
        self._hashes: dict[str, str | None] = {}

    def remember(self, seq: int, rows: Iterable[Sequence[Any]]) -> None:
        """Keep ``rows`` (tuples of :data:`SEARCH_COLUMNS`) read at store state ``seq`` (read before the rows:
        never older than it)."""
        with self._lock:
            if seq != self._seq or len(self._rows) > self.max_rows:
                self._seq, self._rows, self._hashes = seq, {}, {}
            for row in rows:
                self._rows[int(row[0])] = tuple(row)
                self._hashes[row[1]] = row[-1]

    def rows(self, seq: int, rowids: Iterable[int]) -> tuple[list[tuple[Any, ...]], list[int]]:
        """(the rows kept at state ``seq`` of ``rowids``, the row ids not kept)."""
        with self._lock:
            if seq != self._seq:
                return [], list(rowids)
            kept, missing = [], []
            for r in rowids:
                row = self._rows.get(r)
                if row is None:
                    missing.append(r)
                else:
                    kept.append(row)
        return kept, missing

    def known(self, seq: int, ids: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
        """(the picture hashes known at state ``seq`` of product ``ids``, the ids not known)."""
        with self._lock:
            if seq != self._seq:
                return {}, list(ids)
            found = {i: self._hashes[i] for i in ids if i in self._hashes}
        return found, [i for i in ids if i not in found]

    def lookup(self, conn: sqlite3.Connection, seq: int, ids: list[str]) -> dict[str, str | None]:
        """The picture hash of each of ``ids`` that exists, at store state ``seq``: from memory, else from
        ``conn``."""
        found, missing = self.known(seq, ids)
        cur = _tuples(conn)
        for chunk in _chunks(missing):
            marks = ",".join("?" * len(chunk))
            found.update(cur.execute(f"SELECT id, image_sha FROM products WHERE id IN ({marks})", chunk))
        return found
