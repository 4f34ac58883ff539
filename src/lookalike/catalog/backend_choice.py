"""Where a catalogue lives: creating and opening one on the embedded backend or on Milvus.

An embedded catalogue is a directory: ``manifest.json`` first (a crash before it leaves an empty
folder), then ``images/``; the SQLite store and the FAISS index come with
:class:`~lookalike.backends.embedded.EmbeddedBackend`. A Milvus catalogue is made and opened by
:mod:`lookalike.backends.milvus`, imported only when asked for. The backends never import the
catalogue: they get the class to build (``cls``) from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lookalike.backends.embedded import EmbeddedBackend, fsync_dir
from lookalike.errors import CatalogError, CatalogExistsError, CatalogNotFoundError
from lookalike.extractors import DEFAULT_EXTRACTOR, Extractor, create_extractor
from lookalike.extractors.quantize import preferred_extractor
from lookalike.fsutil import atomic_write
from lookalike.index import IndexPolicy
from lookalike.manifest import MANIFEST, check_extractor, check_manifest, new_manifest

__all__ = ["BACKENDS", "create_catalog", "embedded_backend", "open_catalog", "record_index", "write_manifest"]

BACKENDS = ("embedded", "milvus")


def _unknown(backend: str) -> CatalogError:
    return CatalogError(f"unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of the embedded catalogue at ``root`` (atomically)."""
    atomic_write(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def create_catalog(
    cls: Any,
    path: str | os.PathLike[str],
    extractor: str | Extractor | None,
    exist_ok: bool,
    backend: str,
    uri: str | None,
    token: str | None,
    **kwargs: Any,
) -> Any:
    """:meth:`lookalike.catalog.Catalog.create` (which documents it): a new ``cls`` instance."""
    if extractor is None and not (exist_ok and backend == "embedded" and (Path(path) / MANIFEST).exists()):
        extractor = preferred_extractor(DEFAULT_EXTRACTOR)
    if backend == "milvus":
        from lookalike.backends.milvus import create_milvus_catalog

        return create_milvus_catalog(cls, str(path), extractor, exist_ok, uri, token, **kwargs)
    if backend != "embedded":
        raise _unknown(backend)
    root = Path(path)
    if (root / MANIFEST).exists():
        if not exist_ok:
            raise CatalogExistsError(f"a catalogue already exists at {root}")
        return cls.open(root, extractor=extractor, **kwargs)
    if root.exists() and not root.is_dir():
        raise CatalogError(f"{root} exists and is not a directory")
    if root.is_dir() and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise CatalogError(f"{root} is a non-empty directory that is not a lookalike catalogue")
    ext = extractor if isinstance(extractor, Extractor) else create_extractor(extractor or DEFAULT_EXTRACTOR)
    root.mkdir(parents=True, exist_ok=True)
    policy = kwargs.get("index_policy") or IndexPolicy()
    index = {"backend": "embedded", "type": "faiss-flat-ip", "metric": "cosine", "policy": policy.to_dict()}
    manifest = new_manifest(ext, index)
    write_manifest(root, manifest)
    fsync_dir(root)  # the manifest comes first: a crash before it leaves an empty folder
    (root / "images").mkdir(exist_ok=True)
    return cls(root, manifest, extractor=ext, **kwargs)


def open_catalog(
    cls: Any,
    path: str | os.PathLike[str],
    extractor: str | Extractor | None,
    backend: str,
    uri: str | None,
    token: str | None,
    **kwargs: Any,
) -> Any:
    """:meth:`lookalike.catalog.Catalog.open` (which documents it): a ``cls`` instance."""
    if backend == "milvus":
        from lookalike.backends.milvus import open_milvus_catalog

        return open_milvus_catalog(cls, str(path), extractor, uri, token, **kwargs)
    if backend != "embedded":
        raise _unknown(backend)
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise CatalogNotFoundError(f"no lookalike catalogue at {root} (missing {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        name = manifest["extractor"]["name"]
        int(manifest["extractor"]["dim"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{manifest_path} is damaged: {exc}") from exc
    check_manifest(manifest, str(root))
    ext_obj = check_extractor(manifest, extractor, str(root))
    del name
    return cls(root, manifest, extractor=ext_obj, **kwargs)


def embedded_backend(path: Path, manifest: dict[str, Any], policy: IndexPolicy | None) -> EmbeddedBackend:
    """The backend of the embedded catalogue at ``path``; its index follows ``policy`` (default: the
    manifest's)."""
    policy = policy or IndexPolicy.from_dict(manifest.get("index", {}).get("policy"))
    return EmbeddedBackend(path, int(manifest["extractor"]["dim"]), policy)


def record_index(path: Path, manifest: dict[str, Any], backend: Any) -> None:
    """Keep the manifest's ``index`` entry (type, IVF shape) in step with the embedded index; the
    manifest is updated in place and on disk. Nothing for another backend or without a manifest file."""
    if not isinstance(backend, EmbeddedBackend) or not (path / MANIFEST).is_file():
        return
    desc = backend.describe()
    entry = dict(manifest.get("index", {}))
    wanted = {**entry, "type": desc["index"], "params": desc.get("index_params", {})}
    wanted.setdefault("policy", backend.policy.to_dict())
    if wanted == entry:
        return
    manifest["index"] = wanted
    write_manifest(path, manifest)
