"""Connecting to Milvus (a Milvus Lite file or a server), its errors as :class:`CatalogError`, and the
vector index settings of a collection."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lookalike.errors import CatalogError, CatalogNotFoundError

__all__ = ["LITE_GRPC_OPTIONS", "NO_URI", "IndexConfig", "calling", "connect", "is_lite_uri", "redact"]

NO_URI = "the milvus backend needs a URI: a Milvus Lite file (./lookalike.db) or http://host:19530"


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
