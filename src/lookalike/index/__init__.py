"""Vector indexes: a protocol, an exact numpy reference, exact FAISS and IVF for large catalogues."""

from lookalike.index.base import SearchResult, VectorIndex
from lookalike.index.factory import AnyIndex, load_index, new_index
from lookalike.index.faiss_index import FaissIndex
from lookalike.index.flat import FlatIndex
from lookalike.index.ivf import IvfIndex
from lookalike.index.policy import IndexChoice, IndexPolicy

__all__ = [
    "AnyIndex",
    "FaissIndex",
    "FlatIndex",
    "IndexChoice",
    "IndexPolicy",
    "IvfIndex",
    "SearchResult",
    "VectorIndex",
    "load_index",
    "new_index",
]
