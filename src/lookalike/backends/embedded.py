"""The embedded backend: SQLite (truth) + an in-memory FAISS index checkpointed in the catalogue folder.

Every SQLite write transaction bumps a sequence number; the index knows the sequence it reflects and
catches up from the store (deleted row ids, changed vectors) before answering, so:

* a crash between the SQLite commit and an index checkpoint loses nothing: the next open catches up;
* a server sees another process's ingest or delete without a restart;
* checkpoints are ``index.<seq>.faiss``, written atomically (temp file, fsync, rename); the newest
  readable one not ahead of the store is loaded, and a missing or corrupt one is rebuilt.

The index type follows :class:`~lookalike.index.IndexPolicy`: exact (``IndexFlatIP``) while the catalogue
is small, IVF with PQ or SQ8 codes past ``exact_max`` products (or when float32 vectors would not fit the
memory budget). The switch happens in :meth:`EmbeddedBackend.sync`: the IVF index is trained on a sample of
the stored vectors and filled from the store in chunks. IVF candidates (``rerank`` of them) are re-scored
with the exact vectors from the store, so the scores returned are exact cosine similarities.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import MAX_PICTURES, PictureHits, ScoredProducts, UpsertItem
from lookalike.errors import CatalogError
from lookalike.index import AnyIndex, FaissIndex, IndexPolicy, load_index, new_index
from lookalike.product import Filters
from lookalike.store import ProductStore
from lookalike.store.picture_rows import picture_ids

__all__ = ["STORE_FILE", "EmbeddedBackend"]

STORE_FILE = "products.db"
INDEX_RE = re.compile(r"^index\.(\d+)\.faiss$")
logger = logging.getLogger(__name__)


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

    def __init__(self, folder: str | os.PathLike[str], dim: int, policy: IndexPolicy | None = None) -> None:
        self.folder = Path(folder)
        super().__init__(self.folder / STORE_FILE, dim, create=True)
        self._lock = threading.RLock()
        self.policy = policy or IndexPolicy()
        self._filters: OrderedDict[tuple[Filters, int], np.ndarray | None] = OrderedDict()
        self.index: AnyIndex = FaissIndex(dim)
        self._index_seq = 0
        self._checkpoint_seq = 0
        self._picture_stats = (-1, 1, 0)
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
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'index_min_seq'").fetchone()
        oldest = int(row[0]) if row else 0  # checkpoints of an earlier release's layout: rebuilt instead
        for seq, path in self._index_files():
            if seq > store_seq or seq < oldest:
                continue  # ahead of the store: not a state the store can vouch for
            try:
                self.index = load_index(path, self.dim, self.policy.nprobe)
            except CatalogError:
                continue
            self._index_seq = self._checkpoint_seq = seq
            break
        self.sync()

    def sync(self) -> int:
        """Bring the in-memory index up to the store's state; returns how many vectors changed.

        Rebuilds the index instead when the policy wants another type for the store's size."""
        with self._lock:
            if self.seq() == self._index_seq:
                return 0
            n = self.picture_count()
            if self.policy.needs_rebuild(self.index.choice(), n, self.dim):
                return self.rebuild()
            changed = 0
            for part in self.iter_changes(self._index_seq):
                self.index.remove(part.removed)
                self.index.add(part.upsert_ids, part.upsert_vectors)
                changed += int(part.removed.size + part.upsert_ids.size)
                self._index_seq = part.seq
            return changed

    def rebuild(self) -> int:
        """Build the index the policy chooses for the store's size from the stored vectors (IVF kinds are
        trained on a seeded sample of up to ``policy.train_max`` of them); returns how many were added."""
        with self._lock:
            started = time.perf_counter()
            rowids = self.rowids()
            choice = self.policy.choose(len(rowids), self.dim)
            training = None
            if choice.kind != "faiss-flat-ip":
                rng = np.random.default_rng(len(rowids))
                take = min(self.policy.train_max, len(rowids))
                sample = np.sort(rng.choice(rowids, size=take, replace=False)) if take else rowids
                _, training = self.vectors_by_rowid(sample)
            index = new_index(self.dim, choice, training, self.policy.nprobe)
            added, seq = 0, self._index_seq
            for part in self.iter_changes(0):
                index.add_new(part.upsert_ids, part.upsert_vectors)
                added += int(part.upsert_ids.size)
                seq = part.seq
            self.index, self._index_seq = index, seq
            logger.info("index rebuilt as %s (%d vectors) in %.1f s", choice, added, time.perf_counter() - started)
            return added

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
    def allowed_rowids(self, filters: Filters | None) -> np.ndarray | None:
        """:meth:`filter_rowids`, remembered per store state (the last 32 filters): a shop asks for the
        same facets again and again, and at 1M products the SQL takes a fifth of a second."""
        if filters is None or filters.is_empty():
            return None
        key = (filters, self.seq())
        try:
            hash(key)
        except TypeError:  # a filter built with lists: not cacheable
            return self.filter_rowids(filters)
        with self._lock:
            hit = self._filters.get(key)
            if hit is not None:
                self._filters.move_to_end(key)
                return hit
        allowed = self.filter_rowids(filters)
        with self._lock:
            self._filters[key] = allowed
            while len(self._filters) > 32:
                self._filters.popitem(last=False)
        return allowed

    def allowed_pictures(self, filters: Filters | None) -> np.ndarray | None:
        """The picture ids of the products that pass ``filters`` (None: every picture)."""
        rowids = self.allowed_rowids(filters)
        if rowids is None or rowids.size == 0:
            return rowids
        if self.picture_stats()[0] <= 1:
            return picture_ids(rowids, np.ones(rowids.size, dtype=np.int64))
        ids, counts = self.picture_counts(rowids)
        return picture_ids(ids, counts)

    def picture_stats(self) -> tuple[int, int]:
        """(the most pictures a product has, how many pictures there are), remembered per store state."""
        seq = self.seq()
        stats = self._picture_stats
        if stats[0] != seq:
            stats = (seq, self.max_pictures(), self.picture_count())
            self._picture_stats = stats
        return stats[1], stats[2]

    def search(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredProducts]:
        return [[(p, s) for p, s, _ in row] for row in self.search_pictures(queries, k, filters)]

    def search_pictures(self, queries: np.ndarray, k: int, filters: Filters | None = None) -> list[PictureHits]:
        """Top ``k`` products per query, each at its best picture (listed once, with that picture's position).
        With one picture per product this is one index search of depth ``k``; with more, the pictures are
        searched deeper (``k`` × up to 4, doubled while a list has fewer than ``k`` products)."""
        allowed = self.allowed_pictures(filters)
        per, total = self.picture_stats()
        depth = k if per <= 1 else k * min(per, 4)
        while True:
            scores, ids = self._search_ids(queries, depth, allowed)
            rows = [_best_per_product(scores[qi], ids[qi], k) for qi in range(ids.shape[0])]
            short = any(len(r) < k and int((ids[qi] >= 0).sum()) >= depth for qi, r in enumerate(rows))
            if per <= 1 or not short or depth >= total:
                break
            depth = min(total, depth * 2)
        products = self.products_by_rowid({r for row in rows for r, _, _ in row})
        return [[(products[r], s, pos) for r, s, pos in row if r in products] for row in rows]

    def _search_ids(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The index's top ``k`` picture ids (exact scores: IVF candidates re-scored)."""
        with self._lock:
            self.sync()
            approximate = bool(getattr(self.index, "approximate", False))
            fetch = max(k, self.policy.rerank) if approximate and self.policy.rerank > 0 else k
            scores, ids = self.index.search(queries, fetch, allowed_ids=allowed)
        if approximate and self.policy.rerank > 0:
            scores, ids = self._rerank(queries, ids, k)
        return scores, ids

    def text_search(self, text: str, k: int, filters: Filters | None = None) -> ScoredProducts:
        """Top ``k`` products for ``text`` by BM25 over their words (SQLite FTS5, the store's word index;
        :mod:`lookalike.store.text_index`), best first, with the BM25 score (higher is better)."""
        found = self.text_rowids(text, k, filters)
        products = self.products_by_rowid(r for r, _ in found)
        return [(products[r], s) for r, s in found if r in products]

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of the ANN candidates (vectors from the store); top ``k``, ties by id."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        wanted = np.unique(candidates[candidates >= 0])
        ids, vecs = self.vectors_by_rowid(wanted)
        row_of = {int(r): i for i, r in enumerate(ids)}
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out = np.full((q.shape[0], k), -1, dtype=np.int64)
        for qi in range(q.shape[0]):
            cand = np.array([c for c in candidates[qi] if c >= 0 and int(c) in row_of], dtype=np.int64)
            if cand.size == 0:
                continue
            sims = vecs[[row_of[int(c)] for c in cand]] @ q[qi]
            order = np.lexsort((cand, -sims))[:k]
            scores[qi, : order.size] = sims[order]
            out[qi, : order.size] = cand[order]
        return scores, out

    # --- checks --------------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Index and store hold the same pictures, and every product has its pictures?"""
        with self._lock:
            self.sync()
            index_ids = set(self.index.ids().tolist())
            store_ids = {int(r[0]) for r in self._conn().execute("SELECT rowid FROM pictures")}
            products = int(self._conn().execute("SELECT COUNT(*) FROM products").fetchone()[0])
            bare = int(
                self._conn()
                .execute(
                    "SELECT COUNT(*) FROM products p WHERE p.n_pictures != "
                    "(SELECT COUNT(*) FROM pictures x WHERE x.product = p.rowid)"
                )
                .fetchone()[0]
            )
        return {
            "products": products,
            "pictures": len(store_ids),
            "vectors": len(index_ids),
            "missing_from_index": len(store_ids - index_ids),
            "orphans_in_index": len(index_ids - store_ids),
            "products_missing_pictures": bare,
            "ok": store_ids == index_ids and bare == 0,
        }

    def describe(self) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {"backend": self.kind, "index": self.index.kind, "seq": self.seq()}
            info["pictures"] = self.picture_stats()[1]
            choice = self.index.choice()
            if choice.nlist:
                info["index_params"] = {
                    "nlist": choice.nlist,
                    "pq_m": choice.pq_m,
                    "nprobe": self.policy.nprobe,
                    "rerank": self.policy.rerank,
                }
            info["index_bytes"] = self.index.nbytes()
        return info

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(CatalogError, OSError):
                if self._index_seq != self._checkpoint_seq:
                    self.checkpoint()
            super().close()


def _best_per_product(scores: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float, int]]:
    """(product row id, score, picture position) of the first ``k`` products of one query's picture list,
    each at its best (first) picture."""
    seen: set[int] = set()
    out: list[tuple[int, float, int]] = []
    for score, pid in zip(scores.tolist(), ids.tolist(), strict=True):
        if pid < 0:
            continue
        rowid, pos = divmod(int(pid), MAX_PICTURES)
        if rowid in seen:
            continue
        seen.add(rowid)
        out.append((rowid, float(score), pos))
        if len(out) >= k:
            break
    return out
