"""Several pictures per product in a Milvus collection: one row per picture.

A collection made by this release has, besides the product fields, ``product`` (the product id),
``position`` (0 for the main picture), ``images`` (the product's picture sources, JSON) and ``stock`` (1 in
stock, 0 out of stock, -1 not known). Each picture's row carries the product's fields (so filters apply to
every picture) and its own ``image``, ``image_sha``, ``image_file`` and vector; its key is
:func:`~lookalike.backends.milvus_schema.picture_key` (the product id for the main picture). Product reads
(count, get, list, facets) look at main-picture rows only; a search groups the rows it finds by product, each
product at its best picture. A collection made by an earlier release (one row per product, no such fields)
still opens and searches; it takes one picture per product, and ``lookalike migrate`` moves it to a new one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from lookalike.backends.base import PictureHits, StoredPicture
from lookalike.backends.milvus_client import calling
from lookalike.backends.milvus_compat import decode_row, fields_nullable
from lookalike.backends.milvus_schema import (
    PICTURE_SEP,
    PRODUCT_FIELDS,
    VECTOR,
    _expressible,
    _product,
    filter_expression,
    fold,
    milvus_string,
)
from lookalike.errors import CatalogError, InvalidQueryError
from lookalike.product import Filters

__all__ = ["OLD_LAYOUT", "MilvusPictures", "value_counts"]

OLD_LAYOUT = (
    "this Milvus catalogue was made by an earlier lookalike (one picture per product, no stock): "
    "copy it to a new one with `lookalike migrate` to keep several pictures or stock"
)
_CHUNK = 500
_MAX_LIMIT = 16_384


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MilvusPictures:
    """The picture rows of :class:`~lookalike.backends.milvus_backend.MilvusBackend` (a mixin: it needs the
    backend's client, collection, ``_query``, ``dim``, ``index_config`` and ``consistency_level``)."""

    client: Any
    collection: str
    dim: int
    index_config: Any
    consistency_level: str
    _multi_until: float = 0.0
    _multi: bool = False
    _layout: bool | None = None
    _encoded: bool | None = None

    def _query(self, expr: str, fields: Sequence[str], **kwargs: Any) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    # --- layout --------------------------------------------------------------------------------
    @property
    def picture_rows_layout(self) -> bool:
        """Whether the collection has a row per picture (this release's layout)."""
        if self._layout is None:
            with calling(f"describe_collection {self.collection!r}"):
                desc = self.client.describe_collection(self.collection)
            self._layout = any(f.get("name") == "position" for f in desc.get("fields", []))
        return self._layout

    @property
    def nulls_encoded(self) -> bool:
        """Whether the collection's fields cannot be null (made on Milvus 2.3 or 2.4): missing values are stored
        as markers (:mod:`~lookalike.backends.milvus_compat`)."""
        if self._encoded is None:
            with calling(f"describe_collection {self.collection!r}"):
                self._encoded = not fields_nullable(self.client.describe_collection(self.collection))
        return self._encoded

    @property
    def product_fields(self) -> tuple[str, ...]:
        """The fields a product is read from (with its pictures' sources and its stock in this layout)."""
        return (*PRODUCT_FIELDS, "images", "stock") if self.picture_rows_layout else PRODUCT_FIELDS

    def _main(self, expr: str) -> str:
        """``expr`` restricted to main-picture rows (one per product)."""
        if not self.picture_rows_layout:
            return expr
        return f"({expr}) and position == 0" if expr else "position == 0"

    def _filter(self, filters: Filters | None) -> str:
        if filters is not None and filters.in_stock is not None and not self.picture_rows_layout:
            raise InvalidQueryError(OLD_LAYOUT)
        return filter_expression(filters)

    def _has_more_pictures(self) -> bool:
        """Whether some product has more than one picture (asked at most once a minute)."""
        if not self.picture_rows_layout:
            return False
        now = time.monotonic()
        if now >= self._multi_until:
            self._multi = bool(self._query("position >= 1", ["id"], limit=1))
            self._multi_until = now + 60.0
        return self._multi

    def _product_expr(self, ids: Sequence[str]) -> str:
        field = "product" if self.picture_rows_layout else "id"
        return f"{field} in [{', '.join(milvus_string(i) for i in ids)}]"

    # --- reads ---------------------------------------------------------------------------------
    @property
    def write_reads(self) -> str:
        """The consistency of the reads an ingest makes around its writes (stored states, rows to replace, errors
        to clear): ``Session``, which sees this client's own writes, where reads are ``Strong``. A ``Strong`` read
        waits for the server's next time tick (~0.2 s on Milvus 2.3, measured), several times per batch."""
        return "Session" if self.consistency_level == "Strong" else self.consistency_level

    def picture_rows(
        self, product_ids: Sequence[str], fields: Sequence[str], level: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Every picture row of each product, in picture order."""
        out: dict[str, list[dict[str, Any]]] = {}
        extra = ["product", "position"] if self.picture_rows_layout else []
        for chunk in _chunks(_expressible(product_ids)):
            for row in self._query(self._product_expr(chunk), ["id", *extra, *fields], level=level):
                out.setdefault(str(row.get("product") or row["id"]), []).append(row)
        for rows in out.values():
            rows.sort(key=lambda r: int(r.get("position") or 0))
        return out

    def picture_states(
        self, product_ids: Sequence[str], level: str | None = None
    ) -> dict[str, tuple[StoredPicture, ...]]:
        rows = self.picture_rows(product_ids, ["image", "image_sha", "image_file"], level)
        return {
            pid: tuple(StoredPicture(r.get("image"), r.get("image_sha"), r.get("image_file")) for r in found)
            for pid, found in rows.items()
        }

    def picture_vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.picture_rows(product_ids, [VECTOR])
        return {pid: np.asarray([r[VECTOR] for r in found], dtype=np.float32) for pid, found in rows.items()}

    def picture_file_of(self, product_id: str, position: int) -> str | None:
        rows = self.picture_rows([product_id], ["image_file"]).get(product_id, [])
        for row in rows:
            if int(row.get("position") or 0) == int(position):
                return row.get("image_file")  # type: ignore[no-any-return]
        return None

    def search_pictures(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[PictureHits]:
        """Top ``k`` products per query, each at its best picture (searched ``k`` × 4 deep when some product
        has several pictures, doubled while a list has fewer than ``k`` products)."""
        expr = self._filter(filters)
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        out: list[PictureHits] = []
        multi = self._has_more_pictures()
        for start in range(0, q.shape[0], 256):
            part = q[start : start + 256]
            depth = min(_MAX_LIMIT, k * 4) if multi else k
            while True:
                found = self._search(part, depth, expr)
                rows = [_grouped(hits, k) for hits in found]
                short = any(len(r) < k and len(h) >= depth for r, h in zip(rows, found, strict=True))
                if not multi or not short or depth >= _MAX_LIMIT:
                    break
                depth = min(_MAX_LIMIT, depth * 2)
            out.extend(rows)
        return out

    def _search(self, q: np.ndarray, limit: int, expr: str) -> list[list[dict[str, Any]]]:
        fields = [*self.product_fields, "product", "position"]
        with calling("search"):
            found = self.client.search(
                self.collection,
                data=q.tolist(),
                anns_field=VECTOR,
                limit=limit,
                filter=expr,
                output_fields=fields,
                search_params=self.index_config.for_search(limit),
                consistency_level=self.consistency_level,
            )
        return [[{**h, "entity": decode_row(h["entity"])} for h in hits] for hits in found]

    # --- writes --------------------------------------------------------------------------------
    def check_pictures(self, n: int, stock: bool) -> None:
        """Refuse what an earlier release's collection cannot hold: several pictures, or stock."""
        if (n > 1 or stock) and not self.picture_rows_layout:
            raise CatalogError(OLD_LAYOUT)

    def drop_pictures_from(self, product_id: str, count: int) -> None:
        """Delete a product's picture rows at positions ``count`` and after."""
        if not self.picture_rows_layout:
            return
        expr = f"product == {milvus_string(product_id)} and position >= {int(count)}"
        if self._query(expr, ["id"], limit=1):
            with calling(f"delete from {self.collection!r}"):
                self.client.delete(self.collection, filter=expr)

    def pictures_beyond(self, counts: dict[str, int]) -> list[str]:
        """The keys of each product's picture rows at positions ``counts[product]`` and after (to delete once the
        product is written with fewer pictures): one query per 500 products, not one per product (each query
        costs a server's consistency wait, ~0.2 s on Milvus 2.3)."""
        if not self.picture_rows_layout or not counts:
            return []
        doomed: list[str] = []
        for chunk in _chunks(_expressible(counts)):
            expr = f"({self._product_expr(chunk)}) and position >= 1"
            rows = self._query(expr, ["id", "product", "position"], level=self.write_reads)
            doomed += [str(r["id"]) for r in rows if int(r["position"]) >= counts.get(str(r["product"]), 1 << 30)]
        return doomed

    def delete_rows(self, keys: Sequence[str]) -> None:
        """Delete rows by primary key."""
        for chunk in _chunks(list(keys)):
            with calling(f"delete from {self.collection!r}"):
                self.client.delete(self.collection, filter=f"id in [{', '.join(milvus_string(i) for i in chunk)}]")

    def delete_products(self, product_ids: Sequence[str]) -> None:
        for chunk in _chunks(list(product_ids)):
            with calling(f"delete from {self.collection!r}"):
                self.client.delete(self.collection, filter=self._product_expr(chunk))


def _grouped(hits: list[dict[str, Any]], k: int) -> PictureHits:
    """The first ``k`` products of one query's picture hits, each at its best picture."""
    seen: set[str] = set()
    out: PictureHits = []
    for h in hits:
        entity = h["entity"]
        product = _product(entity)
        if product.id in seen:
            continue
        seen.add(product.id)
        position = entity.get("position")
        if position is None and PICTURE_SEP in str(entity.get("id", "")):
            position = int(str(entity["id"]).rsplit(PICTURE_SEP, 1)[1])
        out.append((product, float(h["distance"]), int(position or 0)))
        if len(out) >= k:
            break
    return out


def value_counts(
    rows: Iterable[dict[str, Any]], fields: Sequence[str], price: bool = False
) -> dict[str, list[tuple[Any, Any]]]:
    """``fields``' distinct values (folded) and counts over ``rows``, most common first;
    with ``price``, also ``"price"``: the price range of those rows."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in fields}
    spellings: dict[str, dict[str, Counter[str]]] = {name: {} for name in fields}
    low = high = None
    for row in rows:
        for name in fields:
            value = row.get(name)
            if value:
                key = fold(value)
                counts[name][key] += 1
                spellings[name].setdefault(key, Counter())[value] += 1
        cost = row.get("price")
        if cost is not None:
            low = cost if low is None else min(low, cost)
            high = cost if high is None else max(high, cost)
    out: dict[str, list[tuple[Any, Any]]] = {}
    for name in fields:
        pairs = [(spellings[name][key].most_common(1)[0][0], n) for key, n in counts[name].items()]
        out[name] = sorted(pairs, key=lambda p: (-p[1], p[0]))
    if price:
        out["price"] = [("min", low), ("max", high)] if low is not None else []
    return out
