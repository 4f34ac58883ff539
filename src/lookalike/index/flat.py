"""Exact search in plain numpy: the reference every other index is tested against."""

from __future__ import annotations

import numpy as np

from lookalike.index.base import SearchResult

__all__ = ["FlatIndex"]


class FlatIndex:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.zeros((0,), dtype=np.int64)
        self._vecs = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vecs = np.concatenate([self._vecs, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)])

    def remove(self, ids: np.ndarray) -> int:
        mask = np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        n = int(mask.sum())
        if n:
            self._ids, self._vecs = self._ids[~mask], self._vecs[~mask]
        return n

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> SearchResult:
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        ids, vecs = self._ids, self._vecs
        if allowed_ids is not None:
            mask = np.isin(ids, np.asarray(allowed_ids, dtype=np.int64))
            ids, vecs = ids[mask], vecs[mask]
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out = np.full((q.shape[0], k), -1, dtype=np.int64)
        if ids.size == 0 or k <= 0:
            return scores, out
        sims = q @ vecs.T
        kk = min(k, ids.size)
        # stable ordering: higher score first, ties by smaller id
        order = np.lexsort((np.broadcast_to(ids, sims.shape), -sims), axis=1)[:, :kk]
        scores[:, :kk] = np.take_along_axis(sims, order, axis=1)
        out[:, :kk] = ids[order]
        return scores, out

    def save(self, path: str) -> None:  # pragma: no cover - reference index is in-memory only
        raise NotImplementedError("FlatIndex is an in-memory reference")
