"""The Milvus backend: a catalogue's products and vectors in one Milvus collection.

The URI is either a local file ending in ``.db`` (Milvus Lite, embedded in this process: development,
tests, small catalogues) or a server, ``http://host:19530`` (Milvus standalone or a distributed
cluster; ``token`` is ``user:password`` or an API key). The catalogue name is the collection name. Servers
2.3 and newer are supported; what differs between versions (scalar index types, nullable fields) is in
:mod:`~lookalike.backends.milvus_compat`. A creation that fails drops what it made, and a collection without
the fields or the vector index of a catalogue is refused when opened.

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

This module holds the catalogue entry points (:func:`create_milvus_catalog`, :func:`open_milvus_catalog`);
the collection layout and expressions are in :mod:`~lookalike.backends.milvus_schema`, the connection and
index settings in :mod:`~lookalike.backends.milvus_client`, the backend class in
:mod:`~lookalike.backends.milvus_backend` (their public names are importable from here too).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from lookalike.backends.milvus_alias import GuardedMilvusBackend, resolve
from lookalike.backends.milvus_backend import MilvusBackend
from lookalike.backends.milvus_client import (
    LITE_GRPC_OPTIONS,  # noqa: F401  (re-exported)
    NO_URI,
    IndexConfig,
    calling,
    connect,
    is_lite_uri,
    redact,
)
from lookalike.backends.milvus_compat import check_complete, drop_quietly, server_features
from lookalike.backends.milvus_schema import (
    ERRORS_SUFFIX,
    MANIFEST_PROPERTY,
    VECTOR,
    filter_expression,
    milvus_number,
    milvus_string,
)
from lookalike.errors import CatalogError, CatalogExistsError, CatalogNotFoundError

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
        server_features(client, uri)  # a server too old is refused
        collection = resolve(client, name) or name  # an alias (lookalike reindex): its generation's collection
        manifest, dim = _read_manifest(client, collection, where)
        check_complete(client, collection, where)
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
        key = str(key) if key else None
        backend = GuardedMilvusBackend(client, collection, dim, uri, index, level, key, name=name)
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
        backend = GuardedMilvusBackend.create_collections(
            client, name, ext.dim, manifest, uri, index, partition_key, consistency_level
        )
        pictures.mkdir(parents=True, exist_ok=True)
    except BaseException:
        drop_quietly(client, [name, name + ERRORS_SUFFIX])  # nothing half-made is left behind
        with contextlib.suppress(Exception):
            client.close()
        raise
    return cls(Path(name), manifest, backend=backend, extractor=ext, images_dir=pictures, **kwargs)
