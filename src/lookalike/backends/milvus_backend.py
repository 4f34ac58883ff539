""":class:`MilvusBackend`: a catalogue's products and vectors in one Milvus collection.

The layout (fields, manifest property, errors collection) is described in :mod:`lookalike.backends.milvus`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from lookalike.backends.base import MAX_PICTURES, ScoredProducts, StoredPicture, StoredState, UpsertItem, without_field
from lookalike.backends.milvus_client import IndexConfig, calling, redact
from lookalike.backends.milvus_compat import create_errors_collection, decode_row, encode_nulls, server_features
from lookalike.backends.milvus_pictures import MilvusPictures, value_counts
from lookalike.backends.milvus_schema import (
    ERRORS_SUFFIX,
    MANIFEST_PROPERTY,
    MAX_VARCHAR,
    NAME_RE,
    STATE_FIELDS,
    TEXT_FIELDS,
    VECTOR,
    _check_id,
    _expressible,
    _ids_expression,
    _product,
    _text,
    fold,
    milvus_string,
    picture_key,
)
from lookalike.errors import CatalogError, InvalidQueryError
from lookalike.product import FILTER_FIELDS, Filters, Product

__all__ = ["MilvusBackend"]

SCAN_BATCH = 10_000  # a Milvus server caps offset + limit at 16,384
ID_CHUNK = 500


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MilvusBackend(MilvusPictures):
    """Products and vectors in a Milvus collection; searches filter inside Milvus."""

    kind = "milvus"

    def __init__(
        self,
        client: Any,
        collection: str,
        dim: int,
        uri: str,
        index: IndexConfig | None = None,
        consistency_level: str = "Strong",
        partition_key: str | None = None,
    ) -> None:
        """Wrap an existing collection (see :meth:`create_collections` and :func:`open_milvus_catalog`)."""
        self.client = client
        self.collection = collection
        self.errors_collection = collection + ERRORS_SUFFIX
        self.dim = dim
        self.uri = uri
        self.index_config = index or IndexConfig()
        self.consistency_level = consistency_level
        self.partition_key = partition_key

    # --- schema --------------------------------------------------------------------------------
    @staticmethod
    def check_name(name: str) -> str:
        """Collection names: a letter or ``_`` then letters, digits, ``_`` (Milvus's rule), 200 at most."""
        if not NAME_RE.match(name):
            raise CatalogError(
                f"invalid Milvus collection name {name!r}: use letters, digits and '_', starting with a letter"
            )
        return name

    @classmethod
    def create_collections(
        cls,
        client: Any,
        collection: str,
        dim: int,
        manifest: dict[str, Any],
        uri: str,
        index: IndexConfig,
        partition_key: str | None = None,
        consistency_level: str = "Strong",
    ) -> MilvusBackend:
        """Create the product collection (and its errors collection) and return the backend; a server's version
        chooses the scalar indexes and whether fields may be null (:mod:`~lookalike.backends.milvus_compat`)."""
        from pymilvus import DataType

        cls.check_name(collection)
        features = server_features(client, uri)
        if partition_key is not None and partition_key not in FILTER_FIELDS:
            raise CatalogError(f"partition key must be one of {', '.join(FILTER_FIELDS)}, not {partition_key!r}")
        if partition_key is not None and not features.partition_key:
            raise CatalogError(f"a partition key needs Milvus 2.4 or newer (this server is {features.version})")
        schema = client.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=f"lookalike catalogue: {manifest['extractor']['name']} ({dim}-d)",
        )
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        for name in (*TEXT_FIELDS, *STATE_FIELDS):
            schema.add_field(name, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=features.nullable)
        schema.add_field("price", DataType.DOUBLE, nullable=features.nullable)
        schema.add_field("extra", DataType.JSON)
        for name in FILTER_FIELDS:
            is_key = name == partition_key
            schema.add_field(
                f"{name}_lc",
                DataType.VARCHAR,
                max_length=MAX_VARCHAR,
                nullable=features.nullable and not is_key,
                is_partition_key=is_key,
            )
        schema.add_field("product", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("position", DataType.INT64)
        schema.add_field("images", DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=features.nullable)
        schema.add_field("stock", DataType.INT64)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
        params = client.prepare_index_params()
        params.add_index(field_name=VECTOR, index_type=index.type, metric_type="COSINE", params=index.params)
        for name in (*(f"{f}_lc" for f in FILTER_FIELDS), "image_file", "product"):
            params.add_index(field_name=name, index_type=features.scalar_index)
        properties = {
            MANIFEST_PROPERTY: json.dumps(manifest, sort_keys=True),
            "lookalike.extractor": str(manifest["extractor"]["name"]),
            "lookalike.dim": str(dim),
        }
        backend = cls(client, collection, dim, uri, index, consistency_level, partition_key)
        backend._encoded = not features.nullable
        backend._create_errors_collection()
        with calling(f"creating collection {collection!r}"):
            client.create_collection(
                collection, schema=schema, consistency_level=consistency_level, properties=properties
            )
            client.create_index(collection, params, sync=False)  # pymilvus polls every 0.5 s otherwise
            client.load_collection(collection)
        return backend

    def _create_errors_collection(self) -> None:
        create_errors_collection(self.client, self.errors_collection, self.consistency_level, not self.nulls_encoded)

    def load(self) -> None:
        """Load both collections into memory (a no-op when they are loaded)."""
        self._create_errors_collection()
        for name in (self.collection, self.errors_collection):
            with calling(f"loading collection {name!r}"):
                state = self.client.get_load_state(name).get("state")
                if getattr(state, "name", str(state)) != "Loaded":
                    self.client.load_collection(name)

    # --- low-level reads -----------------------------------------------------------------------
    def _query(
        self,
        expr: str,
        fields: Sequence[str],
        limit: int | None = None,
        offset: int | None = None,
        ordered: bool = False,
        collection: str | None = None,
        level: str | None = None,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"consistency_level": level or self.consistency_level}
        if limit is not None:
            kwargs["limit"] = limit
        if offset:
            kwargs["offset"] = offset
        if ordered:
            kwargs["iterator"] = "True"  # results in primary-key order (what pymilvus's iterators use)
        with calling("query"):
            rows = self.client.query(collection or self.collection, filter=expr, output_fields=list(fields), **kwargs)
        return [decode_row(r) for r in rows]

    def _scan(self, fields: Sequence[str], expr: str = "", collection: str | None = None) -> Iterator[dict[str, Any]]:
        """Every matching row, in primary-key order, :data:`SCAN_BATCH` rows a request."""
        last: str | None = None
        while True:
            cursor = 'id >= ""' if last is None else f"id > {milvus_string(last)}"
            where = f"({expr}) and {cursor}" if expr else cursor
            rows = self._query(where, ["id", *fields], limit=SCAN_BATCH, ordered=True, collection=collection)
            if not rows:
                return
            yield from rows
            if len(rows) < SCAN_BATCH:
                return
            last = max(str(r["id"]) for r in rows)

    def _rows(self, product_ids: Iterable[str], fields: Sequence[str], level: str | None = None) -> dict[str, dict]:
        ids = _expressible(product_ids)
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids, ID_CHUNK):
            for row in self._query(_ids_expression(chunk), ["id", *fields], level=level):
                out[str(row["id"])] = row
        return out

    # --- reads ---------------------------------------------------------------------------------
    def count(self, filters: Filters | None = None) -> int:
        rows = self._query(self._main(self._filter(filters)), ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def get(self, product_id: str) -> Product | None:
        return self.get_many([product_id]).get(product_id)

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """Products by id (missing ids are left out)."""
        return {pid: _product(row) for pid, row in self._rows(product_ids, self.product_fields).items()}

    def list(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]:
        """A page of products in product-id order (the embedded backend pages in insertion order)."""
        if limit <= 0:
            return []
        expr = self._main(self._filter(filters))
        if offset + limit <= SCAN_BATCH:
            rows = self._query(expr or 'id >= ""', self.product_fields, limit=limit, offset=offset, ordered=True)
            return [_product(r) for r in rows]
        out: list[Product] = []
        for i, row in enumerate(self._scan(self.product_fields[1:], expr)):
            if i >= offset + limit:
                break
            if i >= offset:
                out.append(_product(row))
        return out

    def iter_ids(self) -> Iterator[str]:
        """Every product id, in id order."""
        for row in self._scan([], self._main("")):
            yield str(row["id"])

    def facets(
        self, fields: Sequence[str] = FILTER_FIELDS, filters: Filters | None = None
    ) -> dict[str, list[tuple[Any, Any]]]:
        """Distinct values (case-insensitive) and counts, and the price range, like ``ProductStore.facets``:
        a field's counts are over the products passing every filter but its own, the price range over all.

        Counted in Python over scans of the collection (one per filter expression: the active filters, and
        the active filters less each filtered field): fine for thousands of products, a full read for
        millions. A group's label is its most frequent spelling.
        """
        for name in fields:
            if name not in FILTER_FIELDS:
                raise InvalidQueryError(f"unknown facet field {name!r}")
        everything = self._main(self._filter(filters))
        by_expr: dict[str, list[str]] = {everything: []}  # expression -> the fields counted over it
        for name in fields:
            by_expr.setdefault(self._main(self._filter(without_field(filters, name))), []).append(name)
        out: dict[str, list[tuple[Any, Any]]] = {}
        price: list[tuple[Any, Any]] = []
        for expr, names in by_expr.items():
            counted = self._value_counts(names, expr, price=expr == everything)
            price = counted.pop("price", price)
            out.update(counted)
        stock: Counter[bool] = Counter()
        if self.picture_rows_layout:
            for row in self._scan(["stock"], self._main(self._filter(without_field(filters, "in_stock")))):
                if (row.get("stock") or -1) >= 0:
                    stock[bool(row["stock"])] += 1
        in_stock = [(v, stock[v]) for v in (True, False) if stock[v]]
        return {**{name: out[name] for name in fields}, "price": price, "in_stock": in_stock}

    def _value_counts(self, fields: Sequence[str], expr: str, price: bool = False) -> dict[str, list[tuple[Any, Any]]]:
        """``fields``' distinct values (folded) and counts over the rows matching ``expr``, most common first;
        with ``price``, also ``"price"``: the price range of those rows (:func:`value_counts`)."""
        return value_counts(self._scan([*fields, "price"] if price else fields, expr), fields, price)

    def states(self, product_ids: Sequence[str]) -> dict[str, StoredState]:
        rows = self._rows(product_ids, ["image", *STATE_FIELDS], self.write_reads)
        pictures = self.picture_states(list(rows), self.write_reads) if rows and self.picture_rows_layout else {}
        return {
            pid: StoredState(
                r.get("image"), r.get("image_sha"), r.get("meta_hash"), r.get("image_file"), pictures.get(pid, ())
            )
            for pid, r in rows.items()
        }

    def vector_of(self, product_id: str) -> np.ndarray | None:
        return self.vectors_of([product_id]).get(product_id)

    def vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._rows(product_ids, [VECTOR])
        return {pid: np.asarray(r[VECTOR], dtype=np.float32) for pid, r in rows.items()}

    def image_file_of(self, product_id: str) -> str | None:
        row = self._rows([product_id], ["image_file"]).get(product_id)
        return row.get("image_file") if row else None

    def image_file_in_use(self, image_file: str) -> bool:
        return bool(self._query(f"image_file == {milvus_string(image_file)}", ["id"], limit=1))

    def errors(self) -> list[dict[str, Any]]:
        rows = self._scan(["image", "error", "at"], collection=self.errors_collection)
        out = [{"id": r["id"], "image": r.get("image"), "error": r["error"], "at": r["at"]} for r in rows]
        return sorted(out, key=lambda e: (e["at"], e["id"]))

    # --- writes --------------------------------------------------------------------------------
    def upsert(self, items: Sequence[UpsertItem], errors: Sequence[tuple[str, str | None, str]] = ()) -> None:
        """Write products (a metadata-only item keeps the stored vector and picture) and ingest errors."""
        latest = {it.product.id: it for it in items}  # last one wins, as in one SQLite transaction
        meta_only = [pid for pid, it in latest.items() if it.vector is None]
        fields = [VECTOR, "image", "image_sha", "image_file"]
        stored = self.picture_rows(meta_only, fields, self.write_reads) if meta_only else {}
        rows = []
        for pid, item in latest.items():
            self.check_pictures(1 if item.vector is None else len(item.vectors()), item.product.in_stock is not None)  # type: ignore[arg-type]
            if item.vector is None:
                old = stored.get(pid)
                if not old:
                    raise CatalogError(f"product {pid!r} is new and has no embedding")
                pics = [StoredPicture(r.get("image"), r.get("image_sha"), r.get("image_file")) for r in old]
                vecs = [r[VECTOR] for r in old]
                product = item.product if item.product.images else _with_images(item.product, pics)
            else:
                pics, vecs, product = (
                    item.picture_rows()[:MAX_PICTURES],
                    list(item.vectors())[:MAX_PICTURES],
                    item.product,
                )  # type: ignore[arg-type]
            rows += [self._row(product, v, pic, i, pics) for i, (pic, v) in enumerate(zip(pics, vecs, strict=True))]
        kept = {pid: min(len(it.vectors()), MAX_PICTURES) for pid, it in latest.items() if it.vector is not None}
        doomed, stale = self.pictures_beyond(kept), self._errors_of(list(latest))  # type: ignore[arg-type]
        for chunk in _chunks(rows, 1000):  # (read first: a read after a write waits for the write to show)
            with calling(f"upsert into {self.collection!r}"):
                self.client.upsert(self.collection, encode_nulls(chunk) if self.nulls_encoded else list(chunk))
        self.delete_rows(doomed)
        if errors:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            latest_errors = {pid: (image, msg) for pid, image, msg in errors}
            error_rows = [
                {"id": _check_id(pid), "image": _text(image), "error": _text(msg) or "", "at": at, VECTOR: [0.0, 0.0]}
                for pid, (image, msg) in latest_errors.items()
            ]
            with calling("recording ingest errors"):
                self.client.upsert(
                    self.errors_collection, encode_nulls(error_rows, ["image"]) if self.nulls_encoded else error_rows
                )
        self._delete_errors(sorted(stale | (set(latest) & {pid for pid, _, _ in errors})))

    def _row(
        self, p: Product, vector: Any, picture: StoredPicture, position: int, pictures: Sequence[StoredPicture]
    ) -> dict[str, Any]:
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise CatalogError(f"embedding has dimension {vec.shape[0]}, catalogue expects {self.dim}")
        row: dict[str, Any] = {"id": picture_key(_check_id(p.id), position)}
        for name in TEXT_FIELDS:
            row[name] = _text(getattr(p, name))
        images = [pic.image for pic in pictures if pic.image] or list(p.images)
        if picture.image or position:
            row["image"] = _text(picture.image)
        row["price"] = None if p.price is None else float(p.price)
        row["extra"] = json.loads(json.dumps(p.extra or {}, default=str))
        row["image_sha"], row["image_file"], row["meta_hash"] = (
            picture.image_sha,
            _text(picture.image_file),
            p.metadata_hash(),
        )
        if self.picture_rows_layout:
            row["product"], row["position"] = p.id, position
            row["images"] = _text(json.dumps(images)) if len(images) > 1 else None
            row["stock"] = -1 if p.in_stock is None else int(p.in_stock)
        for name in FILTER_FIELDS:
            value = row[name]
            missing = "" if name == self.partition_key else None  # a partition key cannot be null
            row[f"{name}_lc"] = missing if value is None else fold(value)
        row[VECTOR] = vec.tolist()
        return row

    def _errors_of(self, product_ids: Sequence[str]) -> set[str]:
        """The products among ``product_ids`` with a recorded ingest error."""
        found: set[str] = set()
        for chunk in _chunks(_expressible(product_ids), ID_CHUNK):
            rows = self._query(
                _ids_expression(chunk), ["id"], collection=self.errors_collection, level=self.write_reads
            )
            found.update(str(r["id"]) for r in rows)
        return found

    def _delete_errors(self, product_ids: Sequence[str]) -> None:
        for chunk in _chunks(_expressible(product_ids), ID_CHUNK):
            with calling("clearing ingest errors"):
                self.client.delete(self.errors_collection, filter=_ids_expression(list(chunk)))

    def delete(self, product_ids: Sequence[str]) -> tuple[int, list[str]]:
        rows = self.picture_rows(product_ids, ["image_file"])
        self.delete_products(list(rows))
        self._delete_errors(sorted(self._errors_of(list(product_ids))))
        return len(rows), [r["image_file"] for found in rows.values() for r in found if r.get("image_file")]

    # --- search --------------------------------------------------------------------------------
    def text_search(self, text: str, k: int, filters: Filters | None = None) -> ScoredProducts:
        """No word index on Milvus (yet): ``[]``, so a text query is answered by the text tower's vector alone
        (Milvus 2.5's BM25 functions would need a new collection schema; see docs/quality.md, "Words")."""
        return []

    def search(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredProducts]:
        return [[(p, s) for p, s, _ in row] for row in self.search_pictures(queries, k, filters)]

    # --- housekeeping --------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Vectors are fields of the product rows, so they cannot drift: checks the index is there."""
        n = self.count()
        rows = self._query("", ["count(*)"]) if self.picture_rows_layout else [{"count(*)": n}]
        with calling("describe_index"):
            indexes = self.client.list_indexes(self.collection, field_name=VECTOR)
        return {
            "products": n,
            "pictures": int(rows[0]["count(*)"]) if rows else n,
            "vectors": int(rows[0]["count(*)"]) if rows else n,
            "missing_from_index": 0,
            "orphans_in_index": 0,
            "ok": bool(indexes),
        }

    def checkpoint(self) -> None:
        """Flush (seal) the collection's growing segments; Milvus has the rows in its log already."""
        with calling(f"flush of {self.collection!r}"):
            self.client.flush(self.collection)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "uri": redact(self.uri),
            "collection": self.collection,
            "pictures": self.verify()["pictures"],
            "index": self.index_config.type,
            "metric": "cosine",
            "consistency": self.consistency_level,
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _with_images(product: Product, pictures: Sequence[StoredPicture]) -> Product:
    """``product`` naming its stored pictures (a metadata-only update that names none keeps them)."""
    return Product(**{**product.to_dict(), "images": [p.image for p in pictures if p.image], "image": None})
