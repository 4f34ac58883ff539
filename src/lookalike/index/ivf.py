"""Approximate FAISS index for large catalogues: IVF with 4-bit, 8-bit or PQ codes, ids in the index.

Filters run inside the search (an ``IDSelectorBatch`` checked while the inverted lists are scanned);
``nprobe`` grows as the filter narrows, so a selective filter still finds its ``k`` products. Deletes are
``remove_ids``. Scores are approximate: the embedded backend re-ranks the candidates with the exact
vectors from the store.
"""

from __future__ import annotations

import math
import os

import faiss
import numpy as np

from lookalike.errors import CatalogError
from lookalike.index.base import SearchResult
from lookalike.index.faiss_index import Selector, downcast_owned, empty_result, save_faiss, search_threads
from lookalike.index.policy import IVF_PQ, IVF_SQ4, IVF_SQ8, IndexChoice

__all__ = ["IvfIndex"]


class IvfIndex:
    """``IndexIVFScalarQuantizer`` (SQ4, SQ8) or ``IndexIVFPQ``, inner product, int64 product ids."""

    approximate = True

    def __init__(self, dim: int, index: faiss.Index, nprobe: int = 32) -> None:
        index = downcast_owned(index)
        if not isinstance(index, faiss.IndexIVF):
            raise CatalogError(f"not an IVF index: {type(index).__name__}")
        if index.d != dim:
            raise CatalogError(f"index has dimension {index.d}, expected {dim}")
        self.dim = dim
        self._index = index
        self._index.nprobe = max(1, min(nprobe, index.nlist))

    # --- building ------------------------------------------------------------------------------
    @classmethod
    def create(cls, dim: int, choice: IndexChoice, training: np.ndarray, nprobe: int = 32) -> IvfIndex:
        """An empty index of ``choice`` trained on ``training`` (L2-normalised rows)."""
        x = np.ascontiguousarray(training, dtype=np.float32).reshape(-1, dim)
        nlist = max(1, min(choice.nlist, x.shape[0] // 8))  # k-means needs a few points per list
        if choice.kind == IVF_PQ:
            spec = f"IVF{nlist},PQ{choice.pq_m}np"  # np: no polysemous training (slow, unused)
        elif choice.kind == IVF_SQ8:
            spec = f"IVF{nlist},SQ8"
        elif choice.kind == IVF_SQ4:
            spec = f"IVF{nlist},SQ4"
        else:
            raise CatalogError(f"not an IVF index kind: {choice.kind}")
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 12
        ivf.cp.seed = 1234
        if choice.kind == IVF_PQ:
            pq = index.pq
            pq.cp.niter = 12
            pq.cp.seed = 1234
        try:
            index.train(x)
        except RuntimeError as exc:
            raise CatalogError(f"cannot train {spec}: {exc}") from exc
        return cls(dim, index, nprobe)

    # --- the VectorIndex protocol --------------------------------------------------------------
    @property
    def kind(self) -> str:
        if isinstance(self._index, faiss.IndexIVFPQ):
            return IVF_PQ
        if isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            return IVF_SQ4 if self._index.sq.qtype == faiss.ScalarQuantizer.QT_4bit else IVF_SQ8
        raise CatalogError(f"unsupported IVF index {type(self._index).__name__}")

    @property
    def nlist(self) -> int:
        return int(self._index.nlist)

    @property
    def nprobe(self) -> int:
        return int(self._index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._index.nprobe = max(1, min(int(value), self.nlist))

    def choice(self) -> IndexChoice:
        m = int(self._index.pq.M) if isinstance(self._index, faiss.IndexIVFPQ) else 0
        return IndexChoice(self.kind, self.nlist, m)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        if len(self):
            self.remove(ids)
        self.add_new(ids, vectors)

    def add_new(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ids known not to be in the index (no removal pass: for bulk builds)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size:
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim), ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0 or len(self) == 0:
            return 0
        selector = Selector(ids)  # held: the FAISS selector points into its bitmap
        return int(self._index.remove_ids(selector.sel))

    def ids(self) -> np.ndarray:
        lists = self._index.invlists
        parts = []
        for i in range(self.nlist):
            size = lists.list_size(i)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).astype(np.int64))
        return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.int64)

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> SearchResult:
        """Top-``k`` by approximate inner product. With ``allowed_ids``, only those ids are scanned and
        ``nprobe`` is divided by the fraction allowed (a 1 % filter probes every list)."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0 or len(self) == 0 or (allowed_ids is not None and len(allowed_ids) == 0):
            return empty_result(q.shape[0], k)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.nprobe
        selector = None
        if allowed_ids is not None:
            fraction = min(1.0, len(allowed_ids) / max(len(self), 1))
            params.nprobe = min(self.nlist, math.ceil(self.nprobe / max(fraction, 1e-9)))
            selector = Selector(allowed_ids)
            params.sel = selector.sel
        with search_threads(q.shape[0]):
            scores, ids = self._index.search(q, k, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids.astype(np.int64)

    def nbytes(self) -> int:
        """Memory the index holds: codes and ids, plus the centroids and codebooks."""
        per = int(self._index.code_size) + 8
        extra = self.nlist * self.dim * 4
        if isinstance(self._index, faiss.IndexIVFPQ):
            pq = self._index.pq
            extra += int(pq.M) * int(pq.ksub) * int(pq.dsub) * 4
        else:
            extra += 2 * self.dim * 4
        return len(self) * per + extra

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: temp file in the same folder, fsync, rename."""
        save_faiss(self._index, path)
