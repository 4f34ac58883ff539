"""Catalogue backends: embedded (SQLite + FAISS) and Milvus."""

from lookalike.backends.base import CatalogBackend, ScoredProducts, StoredState, UpsertItem

__all__ = ["CatalogBackend", "ScoredProducts", "StoredState", "UpsertItem"]
