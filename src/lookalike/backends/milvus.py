"""The Milvus backend: a catalogue's products and vectors in one Milvus collection.

The URI is either a local file ending in ``.db`` (Milvus Lite, embedded in this process: development,
tests, small catalogues) or a server, ``http://host:19530`` (Milvus standalone or a distributed
cluster; ``token`` is ``user:password`` or an API key). The catalogue name is the collection name.

One row per product: ``id`` (VARCHAR primary key), the metadata (``title``, ``brand``, ``category``,
``subcategory``, ``article_type``, ``colour``, ``gender``, ``price`` nullable DOUBLE, ``image``, ``url``,
``extra`` JSON), the ingest state (``image_sha``, ``image_file``, ``meta_hash``), lower-cased shadow
copies of the filter fields (``colour_lc``...) that filters compare against (case-insensitive equality,
ASCII folding like SQLite's ``NOCASE`` in the embedded backend) and ``vector`` (FLOAT_VECTOR, COSINE).
The vector lives in the product's row, so the two cannot drift apart. The catalogue manifest (JSON,
with the extractor name and dimension) is a collection property, ``lookalike.manifest``; ingest errors
live in a small second collection, ``<name>__lookalike_errors``.

Filters become Milvus boolean expressions. Milvus Lite refuses ``filter_params`` templates, so every
string literal goes through :func:`milvus_string` (backslashes and double quotes escaped, control
characters refused) and every number through :func:`milvus_number`; nothing from a request is pasted
into an expression unescaped.

Index: exact ``FLAT`` by default on Milvus Lite (results match the embedded FAISS index), ``HNSW``
(``M=16, efConstruction=200``, ``ef=max(128, k)`` at search time) on a server. Choose another with
``index_type=``/``index_params=``/``search_params=`` at creation (or ``LOOKALIKE_MILVUS_INDEX``,
``LOOKALIKE_MILVUS_INDEX_PARAMS`` and ``LOOKALIKE_MILVUS_SEARCH_PARAMS``, JSON); see docs/scaling.md.

Pictures stay on a file system: beside a Milvus Lite file in ``<file>.images/<collection>/``; for a
server, in ``images_dir=`` (that exact folder) or ``$LOOKALIKE_IMAGES_DIR/<collection>/``, a folder every
lookalike process of the deployment can read (shared storage).

Costs to know on big collections: ``facets()`` and ``iter_ids()`` read every row (in primary-key
order, 10,000 rows a request), and ``list()`` is in product-id order, not insertion order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from lookalike.backends.base import ScoredProducts, StoredState, UpsertItem
from lookalike.errors import (
    CatalogError,
    CatalogExistsError,
    CatalogNotFoundError,
    InvalidQueryError,
)
from lookalike.product import FILTER_FIELDS, Filters, Product

__all__ = [
    "IndexConfig",
    "MilvusBackend",
    "connect",
    "create_milvus_catalog",
    "filter_expression",
    "is_lite_uri",
    "milvus_number",
    "milvus_string",
    "open_milvus_catalog",
]

MANIFEST_PROPERTY = "lookalike.manifest"
ERRORS_SUFFIX = "__lookalike_errors"
VECTOR = "vector"
TEXT_FIELDS = ("title", "brand", "category", "subcategory", "article_type", "colour", "gender", "image", "url")
STATE_FIELDS = ("image_sha", "image_file", "meta_hash")
PRODUCT_FIELDS = ("id", *TEXT_FIELDS, "price", "extra")
MAX_VARCHAR = 65535
SCAN_BATCH = 10_000  # a Milvus server caps offset + limit at 16,384
ID_CHUNK = 500
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
NO_URI = "the milvus backend needs a URI: a Milvus Lite file (./lookalike.db) or http://host:19530"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# --- expressions -----------------------------------------------------------------------------------
def milvus_string(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal; control characters are refused."""
    if not isinstance(value, str):
        raise InvalidQueryError(f"expected a string, got {type(value).__name__}")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InvalidQueryError(f"{value!r} contains a control character ({ord(ch):#04x})")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def milvus_number(value: float) -> str:
    """A finite number as a Milvus float literal."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidQueryError(f"{value!r} is not a number") from exc
    if not math.isfinite(number):
        raise InvalidQueryError(f"{value!r} is not a finite number")
    return repr(number)


def fold(value: str) -> str:
    """Lower-case ASCII letters only, like SQLite's ``NOCASE`` (the embedded backend's filters)."""
    return value.translate(_ASCII_LOWER)


def filter_expression(filters: Filters | None) -> str:
    """The Milvus boolean expression for ``filters`` (``""`` when there is no filter)."""
    if filters is None or filters.is_empty():
        return ""
    clauses: list[str] = []
    for name in FILTER_FIELDS:
        value = getattr(filters, name)
        if value in (None, "", ()):
            continue
        values = [value] if isinstance(value, str) else list(value)
        literals = ", ".join(milvus_string(fold(str(v))) for v in values)
        clauses.append(f"{name}_lc in [{literals}]")
    if filters.min_price is not None:
        clauses.append(f"price >= {milvus_number(filters.min_price)}")
    if filters.max_price is not None:
        clauses.append(f"price <= {milvus_number(filters.max_price)}")
    return " and ".join(clauses)


def _ids_expression(ids: Sequence[str]) -> str:
    return f"id in [{', '.join(milvus_string(i) for i in ids)}]"


def _expressible(ids: Iterable[str]) -> list[str]:
    """The ids that can be written in an expression (others cannot be stored, so are absent)."""
    out: list[str] = []
    for pid in dict.fromkeys(ids):
        with contextlib.suppress(InvalidQueryError):
            milvus_string(pid)
            out.append(pid)
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- connection ------------------------------------------------------------------------------------
def is_lite_uri(uri: str) -> bool:
    """A local Milvus Lite file (rather than a server URL)?"""
    return "://" not in uri and not uri.startswith("unix:")


def redact(uri: str) -> str:
    """The URI without credentials, for messages and ``info``."""
    if is_lite_uri(uri):
        return uri
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return parts._replace(netloc=netloc).geturl()
    return uri


@contextlib.contextmanager
def calling(what: str) -> Iterator[None]:
    """Turn pymilvus errors into :class:`CatalogError` (one line, no traceback)."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise CatalogError(f"Milvus {what} failed: {message}") from exc


# gRPC settings for a Milvus Lite server (local, in this process). pymilvus pings every 10 s even
# with no call in flight; Milvus Lite's gRPC server keeps gRPC's default abuse policy (no pings without
# calls, at most one per 5 minutes), so an idle client collects "too many pings" strikes and the server
# drops the connection (GOAWAY), failing the next call with UNAVAILABLE "Too many pings". A local
# connection needs no keepalive; a local subchannel pool lets a recovered channel connect afresh
# instead of reusing the dropped one.
LITE_GRPC_OPTIONS: dict[str, Any] = {
    "grpc.keepalive_time_ms": 2**31 - 1,
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.use_local_subchannel_pool": 1,
}


def connect(uri: str | None, token: str | None = None, create: bool = False) -> Any:
    """A ``MilvusClient`` for ``uri``: a Milvus Lite ``.db`` file (made when ``create``) or a server."""
    if not uri:
        raise CatalogError(NO_URI)
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise CatalogError(f"the milvus backend needs pymilvus (pip install 'lookalike[milvus]'): {exc}") from exc
    if is_lite_uri(uri):
        path = Path(uri).expanduser().resolve()
        if path.suffix != ".db":
            raise CatalogError(f"a Milvus Lite URI is a file ending in .db, not {uri!r}")
        if not path.exists():
            if not create:
                raise CatalogNotFoundError(f"no Milvus Lite database at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
        uri = str(path)
    lite = is_lite_uri(uri)
    options = {"grpc_options": LITE_GRPC_OPTIONS} if lite else {}
    for attempt in range(2 if lite else 1):
        try:
            with calling(f"connection to {redact(uri)}"):
                client = MilvusClient(uri=uri, token=token or "", **options)
            break
        except CatalogError as exc:
            if not lite:
                raise
            if attempt == 0:  # a dropped local connection recovers on a fresh channel
                time.sleep(0.5)
                continue
            # the usual cause: Milvus Lite serves a file to one process at a time
            raise CatalogError(f"{exc} (is another process using this Milvus Lite file?)") from exc
    if client is None:  # pragma: no cover - pymilvus raises rather than return None
        raise CatalogError(f"cannot connect to Milvus at {redact(uri)}")
    return client


def _json_env(name: str) -> dict[str, Any] | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise CatalogError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CatalogError(f"{name} must be a JSON object")
    return value


@dataclass
class IndexConfig:
    """The vector index of a collection: ``FLAT`` (exact), ``HNSW``, ``IVF_FLAT``, ``IVF_PQ``..."""

    type: str = "FLAT"
    params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls, lite: bool) -> IndexConfig:
        """Exact search on Milvus Lite; HNSW on a server."""
        if lite:
            return cls()
        return cls("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 128})

    @classmethod
    def resolve(
        cls,
        lite: bool,
        index_type: str | None = None,
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
    ) -> IndexConfig:
        """Arguments first, then ``LOOKALIKE_MILVUS_INDEX*`` variables, then :meth:`default`."""
        index_type = index_type or os.environ.get("LOOKALIKE_MILVUS_INDEX") or None
        index_params = index_params if index_params is not None else _json_env("LOOKALIKE_MILVUS_INDEX_PARAMS")
        search_params = search_params if search_params is not None else _json_env("LOOKALIKE_MILVUS_SEARCH_PARAMS")
        base = cls.default(lite)
        if index_type is not None and index_type.upper() != base.type:
            base = cls(index_type.upper())
        return cls(
            base.type,
            dict(index_params) if index_params is not None else base.params,
            dict(search_params) if search_params is not None else base.search_params,
        )

    def for_search(self, k: int) -> dict[str, Any]:
        """Search parameters for a top-``k`` search (HNSW needs ``ef >= k``)."""
        params = dict(self.search_params)
        if self.type.startswith("HNSW"):
            params["ef"] = max(int(params.get("ef", 64)), k)
        return {"metric_type": "COSINE", "params": params}

    def to_manifest(self) -> dict[str, Any]:
        return {"type": self.type, "params": self.params, "search_params": self.search_params}


# --- the backend -----------------------------------------------------------------------------------
class MilvusBackend:
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
        """Create the product collection (and its errors collection) and return the backend."""
        from pymilvus import DataType

        cls.check_name(collection)
        if partition_key is not None and partition_key not in FILTER_FIELDS:
            raise CatalogError(f"partition key must be one of {', '.join(FILTER_FIELDS)}, not {partition_key!r}")
        schema = client.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=f"lookalike catalogue: {manifest['extractor']['name']} ({dim}-d)",
        )
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        for name in (*TEXT_FIELDS, *STATE_FIELDS):
            schema.add_field(name, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
        schema.add_field("price", DataType.DOUBLE, nullable=True)
        schema.add_field("extra", DataType.JSON)
        for name in FILTER_FIELDS:
            is_key = name == partition_key
            schema.add_field(
                f"{name}_lc", DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=not is_key, is_partition_key=is_key
            )
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
        params = client.prepare_index_params()
        params.add_index(field_name=VECTOR, index_type=index.type, metric_type="COSINE", params=index.params)
        for name in (*(f"{f}_lc" for f in FILTER_FIELDS), "image_file"):
            params.add_index(field_name=name, index_type="INVERTED")
        properties = {
            MANIFEST_PROPERTY: json.dumps(manifest, sort_keys=True),
            "lookalike.extractor": str(manifest["extractor"]["name"]),
            "lookalike.dim": str(dim),
        }
        backend = cls(client, collection, dim, uri, index, consistency_level, partition_key)
        backend._create_errors_collection()
        with calling(f"creating collection {collection!r}"):
            client.create_collection(
                collection, schema=schema, consistency_level=consistency_level, properties=properties
            )
            client.create_index(collection, params, sync=False)  # pymilvus polls every 0.5 s otherwise
            client.load_collection(collection)
        return backend

    def _create_errors_collection(self) -> None:
        from pymilvus import DataType

        with calling(f"creating collection {self.errors_collection!r}"):
            if self.client.has_collection(self.errors_collection):
                return
            schema = self.client.create_schema(
                auto_id=False, enable_dynamic_field=False, description="lookalike ingest errors"
            )
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
            schema.add_field("image", DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
            schema.add_field("error", DataType.VARCHAR, max_length=MAX_VARCHAR)
            schema.add_field("at", DataType.VARCHAR, max_length=32)
            schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
            params = self.client.prepare_index_params()
            params.add_index(field_name=VECTOR, index_type="FLAT", metric_type="L2")
            self.client.create_collection(
                self.errors_collection, schema=schema, consistency_level=self.consistency_level
            )
            self.client.create_index(self.errors_collection, params, sync=False)
            self.client.load_collection(self.errors_collection)

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
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"consistency_level": self.consistency_level}
        if limit is not None:
            kwargs["limit"] = limit
        if offset:
            kwargs["offset"] = offset
        if ordered:
            kwargs["iterator"] = "True"  # results in primary-key order (what pymilvus's iterators use)
        with calling("query"):
            rows = self.client.query(collection or self.collection, filter=expr, output_fields=list(fields), **kwargs)
        return [dict(r) for r in rows]

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

    def _rows(self, product_ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        ids = _expressible(product_ids)
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids, ID_CHUNK):
            for row in self._query(_ids_expression(chunk), ["id", *fields]):
                out[str(row["id"])] = row
        return out

    # --- reads ---------------------------------------------------------------------------------
    def count(self, filters: Filters | None = None) -> int:
        rows = self._query(filter_expression(filters), ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def get(self, product_id: str) -> Product | None:
        return self.get_many([product_id]).get(product_id)

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """Products by id (missing ids are left out)."""
        return {pid: _product(row) for pid, row in self._rows(product_ids, PRODUCT_FIELDS).items()}

    def list(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]:
        """A page of products in product-id order (the embedded backend pages in insertion order)."""
        if limit <= 0:
            return []
        expr = filter_expression(filters)
        if offset + limit <= SCAN_BATCH:
            rows = self._query(expr or 'id >= ""', PRODUCT_FIELDS, limit=limit, offset=offset, ordered=True)
            return [_product(r) for r in rows]
        out: list[Product] = []
        for i, row in enumerate(self._scan(PRODUCT_FIELDS[1:], expr)):
            if i >= offset + limit:
                break
            if i >= offset:
                out.append(_product(row))
        return out

    def iter_ids(self) -> Iterator[str]:
        """Every product id, in id order."""
        for row in self._scan([]):
            yield str(row["id"])

    def facets(self, fields: Sequence[str] = FILTER_FIELDS) -> dict[str, list[tuple[Any, Any]]]:
        """Distinct values (case-insensitive) and counts, and the price range, like ``ProductStore.facets``.

        Counted in Python over a scan of the collection: fine for thousands of products, a full read
        for millions. A group's label is its most frequent spelling.
        """
        for name in fields:
            if name not in FILTER_FIELDS:
                raise InvalidQueryError(f"unknown facet field {name!r}")
        counts: dict[str, Counter[str]] = {name: Counter() for name in fields}
        spellings: dict[str, dict[str, Counter[str]]] = {name: {} for name in fields}
        low = high = None
        for row in self._scan([*fields, "price"]):
            for name in fields:
                value = row.get(name)
                if value:
                    key = fold(value)
                    counts[name][key] += 1
                    spellings[name].setdefault(key, Counter())[value] += 1
            price = row.get("price")
            if price is not None:
                low = price if low is None else min(low, price)
                high = price if high is None else max(high, price)
        out: dict[str, list[tuple[Any, Any]]] = {}
        for name in fields:
            pairs = [(spellings[name][key].most_common(1)[0][0], n) for key, n in counts[name].items()]
            out[name] = sorted(pairs, key=lambda p: (-p[1], p[0]))
        out["price"] = [("min", low), ("max", high)] if low is not None else []
        return out

    def states(self, product_ids: Sequence[str]) -> dict[str, StoredState]:
        rows = self._rows(product_ids, ["image", *STATE_FIELDS])
        return {
            pid: StoredState(r.get("image"), r.get("image_sha"), r.get("meta_hash"), r.get("image_file"))
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
        stored = self._rows(meta_only, [VECTOR, "image_sha", "image_file"]) if meta_only else {}
        rows = []
        for pid, item in latest.items():
            if item.vector is None:
                old = stored.get(pid)
                if old is None:
                    raise CatalogError(f"product {pid!r} is new and has no embedding")
                rows.append(self._row(item.product, old[VECTOR], old.get("image_sha"), old.get("image_file")))
            else:
                rows.append(self._row(item.product, item.vector, item.image_sha, item.image_file))
        for chunk in _chunks(rows, 1000):
            with calling(f"upsert into {self.collection!r}"):
                self.client.upsert(self.collection, list(chunk))
        if errors:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            latest_errors = {pid: (image, msg) for pid, image, msg in errors}
            error_rows = [
                {"id": _check_id(pid), "image": _text(image), "error": _text(msg) or "", "at": at, VECTOR: [0.0, 0.0]}
                for pid, (image, msg) in latest_errors.items()
            ]
            with calling("recording ingest errors"):
                self.client.upsert(self.errors_collection, error_rows)
        self._clear_errors(list(latest))

    def _row(self, p: Product, vector: Any, image_sha: str | None, image_file: str | None) -> dict[str, Any]:
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise CatalogError(f"embedding has dimension {vec.shape[0]}, catalogue expects {self.dim}")
        row: dict[str, Any] = {"id": _check_id(p.id)}
        for name in TEXT_FIELDS:
            row[name] = _text(getattr(p, name))
        row["price"] = None if p.price is None else float(p.price)
        row["extra"] = json.loads(json.dumps(p.extra or {}, default=str))
        row["image_sha"], row["image_file"], row["meta_hash"] = image_sha, _text(image_file), p.metadata_hash()
        for name in FILTER_FIELDS:
            value = row[name]
            missing = "" if name == self.partition_key else None  # a partition key cannot be null
            row[f"{name}_lc"] = missing if value is None else fold(value)
        row[VECTOR] = vec.tolist()
        return row

    def _clear_errors(self, product_ids: Sequence[str]) -> None:
        ids = _expressible(product_ids)
        for chunk in _chunks(ids, ID_CHUNK):
            found = self._query(_ids_expression(chunk), ["id"], collection=self.errors_collection)
            if found:
                with calling("clearing ingest errors"):
                    self.client.delete(self.errors_collection, filter=_ids_expression([str(r["id"]) for r in found]))

    def delete(self, product_ids: Sequence[str]) -> tuple[int, list[str]]:
        rows = self._rows(product_ids, ["image_file"])
        for chunk in _chunks(list(rows), ID_CHUNK):
            with calling(f"delete from {self.collection!r}"):
                self.client.delete(self.collection, filter=_ids_expression(chunk))
        self._clear_errors(list(product_ids))
        return len(rows), [r["image_file"] for r in rows.values() if r.get("image_file")]

    # --- search --------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredProducts]:
        expr = filter_expression(filters)
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        out: list[ScoredProducts] = []
        for start in range(0, q.shape[0], 256):
            with calling("search"):
                found = self.client.search(
                    self.collection,
                    data=q[start : start + 256].tolist(),
                    anns_field=VECTOR,
                    limit=k,
                    filter=expr,
                    output_fields=list(PRODUCT_FIELDS),
                    search_params=self.index_config.for_search(k),
                    consistency_level=self.consistency_level,
                )
            for hits in found:
                out.append([(_product(h["entity"]), float(h["distance"])) for h in hits])
        return out

    # --- housekeeping --------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Vectors are fields of the product rows, so they cannot drift: checks the index is there."""
        n = self.count()
        with calling("describe_index"):
            indexes = self.client.list_indexes(self.collection, field_name=VECTOR)
        return {
            "products": n,
            "vectors": n,
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
            "index": self.index_config.type,
            "metric": "cosine",
            "consistency": self.consistency_level,
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_VARCHAR:
        raise CatalogError(f"value too long for Milvus ({len(text)} characters): {text[:40]!r}...")
    return text


def _check_id(product_id: str) -> str:
    try:
        milvus_string(product_id)
    except InvalidQueryError as exc:
        raise CatalogError(f"product id {product_id!r} has a control character; Milvus catalogues refuse it") from exc
    return str(_text(product_id))


def _product(row: dict[str, Any]) -> Product:
    extra = row.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    return Product(
        id=str(row["id"]),
        **{name: row.get(name) for name in TEXT_FIELDS},
        price=row.get("price"),
        extra=dict(extra),
    )


# --- catalogue entry points (called by Catalog.create / Catalog.open) -------------------------------
def _images_dir(uri: str, collection: str, images_dir: str | os.PathLike[str] | None) -> Path:
    if images_dir is not None:
        return Path(images_dir)
    if is_lite_uri(uri):
        return Path(str(Path(uri).expanduser().resolve()) + ".images") / collection
    root = os.environ.get("LOOKALIKE_IMAGES_DIR")
    if root:
        return Path(root).expanduser() / collection
    raise CatalogError(
        "a catalogue on a Milvus server keeps its pictures in a folder: pass images_dir= or set "
        "LOOKALIKE_IMAGES_DIR to a folder every lookalike process can read"
    )


def _read_manifest(client: Any, collection: str, where: str) -> tuple[dict[str, Any], int]:
    with calling(f"describe_collection {collection!r}"):
        desc = client.describe_collection(collection)
    raw = (desc.get("properties") or {}).get(MANIFEST_PROPERTY)
    if not raw:
        raise CatalogError(f"{where} is a Milvus collection but not a lookalike catalogue (no manifest)")
    try:
        manifest = json.loads(raw)
        int(manifest["extractor"]["dim"])
        str(manifest["extractor"]["name"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"the manifest of {where} is damaged: {exc}") from exc
    dims = [f.get("params", {}).get("dim") for f in desc.get("fields", []) if f.get("name") == VECTOR]
    if not dims or int(dims[0]) != int(manifest["extractor"]["dim"]):
        raise CatalogError(f"{where}: vector field dimension {dims} does not match the manifest")
    return manifest, int(manifest["extractor"]["dim"])


def open_milvus_catalog(
    cls: Any,
    name: str,
    extractor: Any,
    uri: str | None,
    token: str | None,
    *,
    images_dir: str | os.PathLike[str] | None = None,
    search_params: dict[str, Any] | None = None,
    consistency_level: str | None = None,
    **kwargs: Any,
) -> Any:
    """Open the catalogue in collection ``name`` at ``uri`` (``Catalog.open(..., backend="milvus")``)."""
    from lookalike.manifest import check_extractor, check_manifest

    MilvusBackend.check_name(name)
    if not uri:
        raise CatalogError(NO_URI)
    client = connect(uri, token)
    where = f"collection {name!r} at {redact(uri)}"
    try:
        with calling(f"has_collection {name!r}"):
            exists = client.has_collection(name)
        if not exists:
            raise CatalogNotFoundError(f"no lookalike catalogue in {where}")
        manifest, dim = _read_manifest(client, name, where)
        check_manifest(manifest, where)
        ext_obj = check_extractor(manifest, extractor, where)
        info = manifest.get("index", {})
        index = IndexConfig(
            str(info.get("type", "FLAT")),
            dict(info.get("params") or {}),
            dict(search_params if search_params is not None else info.get("search_params") or {}),
        )
        level = consistency_level or str(info.get("consistency", "Strong"))
        key = info.get("partition_key")
        backend = MilvusBackend(client, name, dim, uri, index, level, str(key) if key else None)
        backend.load()
        pictures = _images_dir(uri, name, images_dir)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close()
        raise
    return cls(Path(name), manifest, backend=backend, extractor=ext_obj, images_dir=pictures, **kwargs)


def create_milvus_catalog(
    cls: Any,
    name: str,
    extractor: Any,
    exist_ok: bool,
    uri: str | None,
    token: str | None,
    *,
    images_dir: str | os.PathLike[str] | None = None,
    index_type: str | None = None,
    index_params: dict[str, Any] | None = None,
    search_params: dict[str, Any] | None = None,
    partition_key: str | None = None,
    consistency_level: str = "Strong",
    **kwargs: Any,
) -> Any:
    """Create a catalogue as collection ``name`` at ``uri`` (``Catalog.create(..., backend="milvus")``).

    ``partition_key`` (a filter field, e.g. ``"category"``) makes Milvus partition by that field's
    lower-cased value, so filters on it search fewer partitions (large collections).
    """
    from lookalike.extractors import Extractor, create_extractor
    from lookalike.manifest import new_manifest

    MilvusBackend.check_name(name)
    if not uri:
        raise CatalogError(NO_URI)
    pictures = _images_dir(uri, name, images_dir)
    client = connect(uri, token, create=True)
    try:
        with calling(f"has_collection {name!r}"):
            exists = client.has_collection(name)
    finally:
        with contextlib.suppress(Exception):
            client.close()
    if exists:
        if not exist_ok:
            raise CatalogExistsError(f"a catalogue already exists in collection {name!r} at {redact(uri)}")
        return open_milvus_catalog(
            cls, name, extractor, uri, token, images_dir=images_dir, search_params=search_params, **kwargs
        )
    ext = extractor if isinstance(extractor, Extractor) else create_extractor(extractor)
    lite = is_lite_uri(uri)
    index = IndexConfig.resolve(lite, index_type, index_params, search_params)
    manifest = new_manifest(
        ext,
        {
            "backend": "milvus",
            **index.to_manifest(),
            "metric": "cosine",
            "consistency": consistency_level,
            "partition_key": partition_key,
        },
    )
    client = connect(uri, token, create=True)
    try:
        backend = MilvusBackend.create_collections(
            client, name, ext.dim, manifest, uri, index, partition_key, consistency_level
        )
        pictures.mkdir(parents=True, exist_ok=True)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close()
        raise
    return cls(Path(name), manifest, backend=backend, extractor=ext, images_dir=pictures, **kwargs)
