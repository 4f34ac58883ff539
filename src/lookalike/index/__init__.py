"""Vector indexes: a protocol, an exact numpy reference and the FAISS default."""

from lookalike.index.base import SearchResult, VectorIndex
from lookalike.index.faiss_index import FaissIndex
from lookalike.index.flat import FlatIndex

__all__ = ["FaissIndex", "FlatIndex", "SearchResult", "VectorIndex"]
