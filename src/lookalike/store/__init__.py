"""Product metadata and vectors in SQLite."""

from lookalike.store.sqlite import Changes, ProductStore, StoredState

__all__ = ["Changes", "ProductStore", "StoredState"]
