"""FAISS index, the embedded default while a catalogue is small: exact inner product over an id map."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import faiss
import numpy as np

from lookalike.errors import CatalogError
from lookalike.fsutil import atomic_write
from lookalike.index.base import SearchResult
from lookalike.index.policy import FLAT, IndexChoice

__all__ = ["FaissIndex", "Selector", "downcast_owned", "empty_result", "read_faiss", "save_faiss", "search_threads"]

_SINGLE_THREAD_BELOW = 16  # queries: under this, one OpenMP thread (the fan-out costs more than it saves)


@contextlib.contextmanager
def search_threads(n_queries: int) -> Iterator[None]:
    """One OpenMP thread for small query batches; FAISS's default for large ones."""
    if n_queries >= _SINGLE_THREAD_BELOW:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class Selector:
    """A FAISS ``IDSelector`` for the allowed ids: a bitmap (built in about a millisecond, O(1) per id)
    while the largest id is under ``BITMAP_MAX_ID``, else an ``IDSelectorBatch`` (hash set). Keeps the
    arrays the selector points into alive."""

    BITMAP_MAX_ID = 1 << 28  # a 32 MB bitmap at most

    def __init__(self, allowed: np.ndarray) -> None:
        ids = np.ascontiguousarray(allowed, dtype=np.int64)
        if ids.size and int(ids.min()) >= 0 and int(ids.max()) < self.BITMAP_MAX_ID:
            mask = np.zeros(int(ids.max()) + 1, dtype=bool)
            mask[ids] = True
            self._keep = np.packbits(mask, bitorder="little")
            self.sel = faiss.IDSelectorBitmap(len(self._keep), faiss.swig_ptr(self._keep))
        else:
            self._keep = ids
            self.sel = faiss.IDSelectorBatch(ids)


def empty_result(n_queries: int, k: int) -> SearchResult:
    k = max(k, 0)
    return (
        np.full((n_queries, k), -np.inf, dtype=np.float32),
        np.full((n_queries, k), -1, dtype=np.int64),
    )


def save_faiss(index: faiss.Index, path: str | os.PathLike[str]) -> None:
    """Serialise ``index`` atomically: temp file in the same folder, fsync, rename."""
    atomic_write(path, memoryview(faiss.serialize_index(index)))


def downcast_owned(index: faiss.Index) -> faiss.Index:
    """``faiss.downcast_index`` that moves ownership of the C++ object to the returned proxy (the plain
    one leaves it with ``index``, which frees it when garbage-collected)."""
    down = faiss.downcast_index(index)
    if down is not index and index.thisown:
        index.thisown = False
        down.thisown = True
    return down


def read_faiss(path: str | os.PathLike[str]) -> faiss.Index:
    """Read a serialised index; :class:`CatalogError` when it is unreadable."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        return downcast_owned(faiss.deserialize_index(data))
    except Exception as exc:  # faiss raises RuntimeError with C++ messages
        raise CatalogError(f"cannot read index {path}: {exc}") from exc


class FaissIndex:
    """``IndexIDMap2(IndexFlatIP)``: exact cosine search on normalised vectors, filters via ``IDSelector``."""

    approximate = False
    kind = FLAT

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self._index.d != dim:
            raise CatalogError(f"index has dimension {self._index.d}, expected {dim}")

    def choice(self) -> IndexChoice:
        return IndexChoice(FLAT)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(self):
            self._index.remove_ids(ids)
        self._index.add_with_ids(vecs, ids)

    def add_new(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ids known not to be in the index (no removal pass)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size:
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim), ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return 0
        return int(self._index.remove_ids(ids))

    def ids(self) -> np.ndarray:
        if len(self) == 0:
            return np.zeros((0,), dtype=np.int64)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> SearchResult:
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0 or len(self) == 0 or (allowed_ids is not None and len(allowed_ids) == 0):
            return empty_result(q.shape[0], k)
        params, selector = None, None
        if allowed_ids is not None:
            selector = Selector(allowed_ids)
            params = faiss.SearchParameters(sel=selector.sel)
        with search_threads(q.shape[0]):
            scores, ids = self._index.search(q, k, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids.astype(np.int64)

    def nbytes(self) -> int:
        """Memory the index holds: float32 vectors and their ids."""
        return len(self) * (4 * self.dim + 8)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: temp file in the same folder, fsync, rename."""
        save_faiss(self._index, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> FaissIndex:
        return cls(dim, read_faiss(path))
