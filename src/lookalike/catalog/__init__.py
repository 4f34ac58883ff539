"""A catalogue: products, their embeddings and pictures, searchable by image, URL or product.

The package's modules, each owning one thing:

- :mod:`~lookalike.catalog.facade`: :class:`Catalog`, the public API, delegating to the others.
"""

from lookalike.catalog.facade import Catalog, IngestProgress, IngestReport
from lookalike.catalog.ranking import merge_views

__all__ = ["Catalog", "IngestProgress", "IngestReport", "merge_views"]
