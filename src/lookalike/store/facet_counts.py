"""Facet counts of the SQLite store: each filter field's values, the price range and the stock counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from lookalike.backends.base import without_field
from lookalike.errors import InvalidQueryError
from lookalike.product import FILTER_FIELDS, Filters

__all__ = ["facet_counts"]

Where = Callable[[Filters | None], tuple[str, list[Any]]]


def facet_counts(
    conn: sqlite3.Connection, where_of: Where, fields: Sequence[str], filters: Filters | None
) -> dict[str, list[tuple[Any, Any]]]:
    """Each field's distinct values (case-insensitive, most common first) with counts, and the price range.

    With ``filters``, a field's counts are over the products that pass every filter but that field's own
    (so the other values of a filtered field stay on offer); the price range is over all of them.

    ``"in_stock"``: how many products are known in stock (True) and out of stock (False), over the products
    passing every filter but the stock one (empty when the catalogue says nothing of stock)."""
    for name in fields:
        if name not in FILTER_FIELDS:
            raise InvalidQueryError(f"unknown facet field {name!r}")
    out: dict[str, list[tuple[Any, Any]]] = {}
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # one consistent snapshot for every count
    try:
        for name in fields:
            where, params = where_of(without_field(filters, name))
            present = f"{name} IS NOT NULL AND {name} != ''"
            where = f"{where} AND {present}" if where else f"WHERE {present}"
            rows = conn.execute(
                f"SELECT {name}, COUNT(*) AS n FROM products {where} "
                f"GROUP BY {name} COLLATE NOCASE ORDER BY n DESC, {name}",
                params,
            )
            out[name] = [(r[0], int(r[1])) for r in rows]
        where, params = where_of(filters)
        row = conn.execute(f"SELECT MIN(price), MAX(price) FROM products {where}", params).fetchone()
        where, params = where_of(without_field(filters, "in_stock"))
        known = f"{where} AND in_stock IS NOT NULL" if where else "WHERE in_stock IS NOT NULL"
        stock = conn.execute(
            f"SELECT in_stock != 0, COUNT(*) FROM products {known} GROUP BY in_stock != 0 ORDER BY 1 DESC", params
        ).fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    out["price"] = [("min", row[0]), ("max", row[1])] if row[0] is not None else []
    out["in_stock"] = [(bool(r[0]), int(r[1])) for r in stock]
    return out
