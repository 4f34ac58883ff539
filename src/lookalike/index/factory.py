"""Build and load the embedded backend's index by kind (see :mod:`lookalike.index.policy`)."""

from __future__ import annotations

import os

import faiss
import numpy as np

from lookalike.errors import CatalogError
from lookalike.index.faiss_index import FaissIndex, read_faiss
from lookalike.index.ivf import IvfIndex
from lookalike.index.policy import FLAT, IndexChoice

__all__ = ["AnyIndex", "load_index", "new_index"]

AnyIndex = FaissIndex | IvfIndex


def new_index(dim: int, choice: IndexChoice, training: np.ndarray | None = None, nprobe: int = 32) -> AnyIndex:
    """An empty index of ``choice``; IVF kinds are trained on ``training``."""
    if choice.kind == FLAT:
        return FaissIndex(dim)
    if training is None or len(training) == 0:
        raise CatalogError(f"{choice.kind} needs training vectors")
    return IvfIndex.create(dim, choice, training, nprobe)


def load_index(path: str | os.PathLike[str], dim: int, nprobe: int = 32) -> AnyIndex:
    """Read a checkpoint written by :meth:`FaissIndex.save` or :meth:`IvfIndex.save`."""
    index = read_faiss(path)
    if isinstance(index, faiss.IndexIVF):
        return IvfIndex(dim, index, nprobe)
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return FaissIndex(dim, index)
    raise CatalogError(f"unexpected index type in {path}: {type(index).__name__}")
