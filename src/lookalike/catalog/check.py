"""Checking a catalogue: the product store's pages, the index against the store, every product's stored pictures.

:func:`verify_backend` is :meth:`Catalog.verify <lookalike.catalog.Catalog.verify>` (``lookalike info``'s
``consistent``): the backend's own index/store comparison plus, on the embedded backend, SQLite's
``PRAGMA quick_check`` (every page read: about 30-50 ms for a 9.5k-product store in the page cache, 1.5 s from
a cold disk, so it is not run on every open). :func:`check_catalog` (``lookalike check``) adds the pictures:
every product's stored picture files must be in the catalogue's picture folder. A re-run of the ingest restores
a missing picture (its product is not "unchanged" while its picture is gone).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lookalike.backends.embedded import EmbeddedBackend

__all__ = ["catalog_info", "check_catalog", "missing_pictures", "verify_backend"]


def verify_backend(backend: Any) -> dict[str, Any]:
    """The backend's ``verify()`` (index and store hold the same products) with the store's page check:
    ``problems`` lists what is wrong, ``ok`` is False when anything is."""
    problems: list[str] = list(backend.quick_check()) if hasattr(backend, "quick_check") else []
    try:
        result = dict(backend.verify())
    except sqlite3.DatabaseError as exc:  # a damaged page met while comparing
        result = {"ok": False}
        problems.append(f"product store: {exc} (while comparing the index with the store)")
    if not result.get("ok", False) and not problems:
        missing, orphans = result.get("missing_from_index", 0), result.get("orphans_in_index", 0)
        problems.append(f"index and store differ: {missing} missing from the index, {orphans} orphans in it")
    result["problems"] = problems
    result["ok"] = bool(result.get("ok")) and not problems
    return result


def _chunks(ids: Iterator[str], size: int = 500) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(ids, size)):
        yield chunk


def missing_pictures(backend: Any, root: Path, limit: int = 1000) -> list[tuple[str, str]]:
    """(product id, stored picture file) of the products whose stored picture is not a file inside ``root``
    (at most ``limit``)."""
    found: list[tuple[str, str]] = []
    top = root.resolve()
    for chunk in _chunks(iter(list(backend.iter_ids()))):
        for pid, state in backend.states(chunk).items():
            for picture in state.all_pictures():
                rel = picture.image_file
                path = (root / rel).resolve() if rel else None
                if path is None or top not in path.parents or not os.path.isfile(path):
                    found.append((pid, str(rel)))
                    if len(found) >= limit:
                        return found
    return found


def check_catalog(catalog: Any) -> list[str]:
    """Everything wrong with ``catalog`` (a :class:`~lookalike.catalog.Catalog`), one line each; empty when it
    is sound: the store's pages, the index against the store, every product's picture files."""
    problems = list(verify_backend(catalog.backend)["problems"])
    try:
        gone = missing_pictures(catalog.backend, catalog.images_dir)
    except sqlite3.DatabaseError as exc:
        return [*problems, f"product store: {exc} (while listing the products' pictures)"]
    problems += [
        f"product {pid!r}: picture {rel} is missing from {catalog.images_dir} (re-run the ingest to restore it)"
        for pid, rel in gone
    ]
    return problems


def catalog_info(catalog: Any) -> dict[str, Any]:
    """:meth:`Catalog.info <lookalike.catalog.Catalog.info>`: path, products, model, the backend's description,
    ingest errors, bytes on disk (the catalogue folder; a Milvus catalogue's picture folder), dates, version."""
    folders = {catalog.images_dir}
    if isinstance(catalog.backend, EmbeddedBackend):
        folders = {catalog.path}
    size = sum(p.stat().st_size for f in folders if f.exists() for p in f.rglob("*") if p.is_file())
    return {
        "path": str(catalog.path),
        "products": len(catalog),
        "extractor": catalog.manifest["extractor"]["name"],
        "dim": catalog.dim,
        **catalog.backend.describe(),
        "ingest_errors": len(catalog.backend.errors()),
        "bytes_on_disk": size,
        "created": catalog.manifest.get("created"),
        "lookalike_version": catalog.manifest.get("lookalike_version"),
    }
