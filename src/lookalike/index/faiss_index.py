"""FAISS index, the embedded default: exact inner product over an id map."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

from lookalike.errors import CatalogError
from lookalike.index.base import SearchResult

__all__ = ["FaissIndex"]


class FaissIndex:
    """``IndexIDMap2(IndexFlatIP)``: exact cosine search on normalised vectors, filters via ``IDSelector``."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self._index.d != dim:
            raise CatalogError(f"index has dimension {self._index.d}, expected {dim}")

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self._index.remove_ids(ids)
        self._index.add_with_ids(vecs, ids)

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
            return (
                np.full((q.shape[0], max(k, 0)), -np.inf, dtype=np.float32),
                np.full((q.shape[0], max(k, 0)), -1, dtype=np.int64),
            )
        params = None
        if allowed_ids is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=sel)
        scores, ids = self._index.search(q, k, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids.astype(np.int64)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: temp file in the same folder, fsync, rename."""
        target = Path(path)
        data = faiss.serialize_index(self._index)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> FaissIndex:
        try:
            data = np.fromfile(str(path), dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except Exception as exc:  # faiss raises RuntimeError with C++ messages
            raise CatalogError(f"cannot read index {path}: {exc}") from exc
        return cls(dim, index)
