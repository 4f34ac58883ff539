"""Which index a catalogue uses: exact while it is small, IVF (4-bit, 8-bit or PQ codes) past a threshold.

The choice depends on the number of products and a memory budget for the index:

* ``n <= exact_max`` and float32 vectors fit the budget: ``faiss-flat-ip`` (exact, 4*d + 8 bytes/product);
* otherwise an IVF index whose candidates are re-ranked with the exact vectors from the store, with the
  finest codes that fit the budget: ``faiss-ivf-sq4`` (4-bit scalar quantiser, d/2 + 8 bytes/product),
  else ``faiss-ivf-pq`` with the largest PQ code that fits (``m`` bytes + 8, at most ``max_pq_bytes``).
  ``codes`` forces one (``sq8``: d + 8 bytes). Measured on 100k synthetic 1280-d fashion embeddings
  (docs/performance.md): after re-ranking 100 candidates, SQ4 and SQ8 reach the same recall@10 (0.99 at
  ``nprobe`` 32 of 512 lists) and SQ4 scans twice as fast; PQ128 needs 200 candidates for 0.99.

``nlist`` grows with the catalogue (about ``2 * sqrt(n)``, a power of two); the backend rebuilds the index
when the catalogue's ideal ``nlist`` is ``regrow`` times the trained one (or a ``regrow``-th of it), when
the memory budget calls for other codes, or when it falls back under half the exact threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["IndexChoice", "IndexPolicy"]

FLAT = "faiss-flat-ip"
IVF_SQ8 = "faiss-ivf-sq8"
IVF_SQ4 = "faiss-ivf-sq4"
IVF_PQ = "faiss-ivf-pq"
CODES = {"sq8": IVF_SQ8, "sq4": IVF_SQ4, "pq": IVF_PQ}


@dataclass(frozen=True)
class IndexChoice:
    """An index type and its shape."""

    kind: str
    nlist: int = 0
    pq_m: int = 0

    def bytes_per_vector(self, dim: int) -> int:
        """Bytes one product costs in the index (codes plus the 8-byte id)."""
        if self.kind == FLAT:
            return 4 * dim + 8
        if self.kind == IVF_SQ8:
            return dim + 8
        if self.kind == IVF_SQ4:
            return (dim + 1) // 2 + 8
        return self.pq_m + 8


@dataclass(frozen=True)
class IndexPolicy:
    """Size threshold, memory budget and search settings of the embedded index."""

    exact_max: int = 20_000
    memory_budget_mb: float = 1024.0
    codes: str = "auto"
    max_pq_bytes: int = 256
    min_pq: int = 10_000
    nprobe: int = 32
    rerank: int = 100
    regrow: int = 4
    train_max: int = 50_000

    def choose(self, n: int, dim: int) -> IndexChoice:
        """The index for ``n`` products of dimension ``dim``."""
        budget = self.memory_budget_mb * 1024 * 1024
        if n <= self.exact_max and n * IndexChoice(FLAT).bytes_per_vector(dim) <= budget:
            return IndexChoice(FLAT)
        nlist = self.nlist_for(n)
        if self.codes in ("sq8", "sq4"):
            return IndexChoice(CODES[self.codes], nlist)
        per_product = budget / max(n, 1)
        sq4 = IndexChoice(IVF_SQ4, nlist)
        if n < self.min_pq or (self.codes == "auto" and sq4.bytes_per_vector(dim) <= per_product):
            return sq4  # PQ codebooks need many training vectors; SQ4 needs none
        m = _pq_m(dim, max(1, min(self.max_pq_bytes, int(per_product) - 8)))
        return IndexChoice(IVF_PQ, nlist, m or 1)

    def nlist_for(self, n: int) -> int:
        """Inverted lists for ``n`` products: about 2 * sqrt(n), a power of two, 16 to 65,536."""
        target = 2 * math.sqrt(max(n, 1))
        return int(min(65_536, max(16, 2 ** round(math.log2(target)))))

    def needs_rebuild(self, current: IndexChoice, n: int, dim: int) -> bool:
        """Whether the index ``current`` should be rebuilt for ``n`` products."""
        wanted = self.choose(n, dim)
        if current.kind == FLAT:
            return wanted.kind != FLAT
        if wanted.kind == FLAT:
            return n < self.exact_max // 2  # hysteresis: do not flap around the threshold
        if (wanted.kind, wanted.pq_m) != (current.kind, current.pq_m):
            return True
        return wanted.nlist >= self.regrow * current.nlist or wanted.nlist * self.regrow <= current.nlist

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexPolicy:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _pq_m(dim: int, max_bytes: int) -> int:
    """The largest PQ sub-quantiser count <= ``max_bytes`` that divides ``dim`` (sub-vectors >= 2 dims)."""
    for m in range(min(max_bytes, dim // 2), 0, -1):
        if dim % m == 0:
            return m
    return 0
