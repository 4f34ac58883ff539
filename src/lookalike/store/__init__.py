"""Product metadata and vectors in SQLite."""

from lookalike.store.sqlite import Changes, ProductStore

__all__ = ["Changes", "ProductStore"]
