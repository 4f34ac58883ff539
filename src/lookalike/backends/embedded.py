"""The embedded backend: SQLite (truth) + an in-memory FAISS index checkpointed in the catalogue folder.

Every SQLite write transaction bumps a sequence number; the index knows the sequence it reflects and
catches up from the store (deleted row ids, changed vectors) before answering, so:

* a crash between the SQLite commit and an index checkpoint loses nothing: the next open catches up;
* a server sees another process's ingest or delete without a restart;
* checkpoints are ``index.<seq>.faiss``, written atomically (temp file, fsync, rename); the newest
  readable one not ahead of the store is loaded, and a missing or corrupt one is rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import ScoredProducts, UpsertItem
from lookalike.errors import CatalogError
from lookalike.index import FaissIndex
from lookalike.product import Filters
from lookalike.store import ProductStore

__all__ = ["STORE_FILE", "EmbeddedBackend"]

STORE_FILE = "products.db"
INDEX_RE = re.compile(r"^index\.(\d+)\.faiss$")


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class EmbeddedBackend(ProductStore):
    """SQLite products and vectors with a FAISS index kept in step."""

    kind = "embedded"

    def __init__(self, folder: str | os.PathLike[str], dim: int) -> None:
        self.folder = Path(folder)
        super().__init__(self.folder / STORE_FILE, dim, create=True)
        self._lock = threading.RLock()
        self.index = FaissIndex(dim)
        self._index_seq = 0
        self._checkpoint_seq = 0
        self._load_index()

    # --- index sync ----------------------------------------------------------------------------
    def _index_files(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.folder.iterdir():
            m = INDEX_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found, reverse=True)

    def _load_index(self) -> None:
        store_seq = self.seq()
        for seq, path in self._index_files():
            if seq > store_seq:
                continue  # ahead of the store: not a state the store can vouch for
            try:
                self.index = FaissIndex.load(path, self.dim)
            except CatalogError:
                continue
            self._index_seq = self._checkpoint_seq = seq
            break
        self.sync()

    def sync(self) -> int:
        """Bring the in-memory index up to the store's state; returns how many vectors changed."""
        with self._lock:
            if self.seq() == self._index_seq:
                return 0
            changes = self.changes_since(self._index_seq)
            self.index.remove(changes.removed)
            self.index.add(changes.upsert_ids, changes.upsert_vectors)
            self._index_seq = changes.seq
            return int(changes.removed.size + changes.upsert_ids.size)

    def checkpoint(self) -> None:
        """Write the index atomically as ``index.<seq>.faiss`` and drop older checkpoints."""
        with self._lock:
            self.sync()
            seq = self._index_seq
            if seq == self._checkpoint_seq and (self.folder / f"index.{seq}.faiss").exists():
                return
            self.index.save(self.folder / f"index.{seq}.faiss")
            fsync_dir(self.folder)
            self._checkpoint_seq = seq
            for old_seq, old in self._index_files():
                if old_seq != seq:
                    with contextlib.suppress(OSError):
                        old.unlink()

    # --- writes that keep the index in step ----------------------------------------------------
    def upsert(self, items: Sequence[UpsertItem], errors: Sequence[tuple[str, str | None, str]] = ()) -> int:
        seq = super().upsert(items, errors)
        self.sync()
        return seq

    def delete(self, product_ids: Sequence[str]) -> tuple[int, list[str]]:
        rowids, files = self.delete_rows(product_ids)
        self.sync()
        return len(rowids), files

    # --- search --------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredProducts]:
        allowed = self.filter_rowids(filters)
        with self._lock:
            self.sync()
            scores, ids = self.index.search(queries, k, allowed_ids=allowed)
        products = self.products_by_rowid({int(i) for i in ids.ravel() if i >= 0})
        out: list[ScoredProducts] = []
        for qi in range(ids.shape[0]):
            row: ScoredProducts = []
            for score, rid in zip(scores[qi], ids[qi], strict=True):
                prod = products.get(int(rid))
                if rid >= 0 and prod is not None:
                    row.append((prod, float(score)))
            out.append(row)
        return out

    # --- checks --------------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Index and store hold the same products?"""
        with self._lock:
            self.sync()
            index_ids = set(self.index.ids().tolist())
            store_ids = {int(r[0]) for r in self._conn().execute("SELECT rowid FROM products")}
        return {
            "products": len(store_ids),
            "vectors": len(index_ids),
            "missing_from_index": len(store_ids - index_ids),
            "orphans_in_index": len(index_ids - store_ids),
            "ok": store_ids == index_ids,
        }

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "index": "faiss-flat-ip", "seq": self.seq()}

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(CatalogError, OSError):
                if self._index_seq != self._checkpoint_seq:
                    self.checkpoint()
            super().close()
