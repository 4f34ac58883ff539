"""The vector index protocol every backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["SearchResult", "VectorIndex"]

SearchResult = tuple[np.ndarray, np.ndarray]  # (scores (q, k) float32, ids (q, k) int64; -1 = none)


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product index over L2-normalised vectors, keyed by int64 ids."""

    dim: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) ``vectors`` under ``ids``."""

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids``; returns how many were present."""

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> SearchResult:
        """Top-``k`` by inner product; with ``allowed_ids`` only those ids are candidates."""

    def ids(self) -> np.ndarray:
        """Every id in the index."""

    def save(self, path: str) -> None:
        """Write the index to ``path`` atomically."""
