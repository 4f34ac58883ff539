"""A catalogue: products, their embeddings and pictures, searchable by image, URL or product.

One module per concern; data flows down this list, and no backend imports any of it:

- :mod:`~lookalike.catalog.facade`: :class:`Catalog`, the public API (create/open/close, ingest,
  upsert, delete, search, browsing), delegating to the modules below.
- :mod:`~lookalike.catalog.backend_choice`: creating and opening a catalogue on the embedded backend
  or on Milvus; the embedded directory's manifest upkeep (manifest helpers: :mod:`lookalike.manifest`).
- :mod:`~lookalike.catalog.ingest`: the ingest pipeline (prepare → embed → commit), its pools and
  writer thread, :class:`IngestReport` and :class:`IngestProgress`.
- :mod:`~lookalike.catalog.prepare`: the worker side of the ingest: read, hash, decode and resize.
- :mod:`~lookalike.catalog.query`: query → views → vectors → candidates → ranked hits.
- :mod:`~lookalike.catalog.ranking`: the ranking stages (today the mirror merge, :func:`merge_views`).
- :mod:`~lookalike.catalog.pictures`: the content-addressed picture store.
- operations: :mod:`~lookalike.catalog.generations` (generations and the pointer), :mod:`~lookalike.catalog.reindex`
  (a new model without downtime, on :mod:`~lookalike.catalog.reembed`), :mod:`~lookalike.catalog.backup`,
  :mod:`~lookalike.catalog.repair` (with :mod:`~lookalike.catalog.salvage`).
"""

from lookalike.catalog.facade import Catalog, IngestProgress, IngestReport
from lookalike.catalog.ranking import merge_views

__all__ = ["Catalog", "IngestProgress", "IngestReport", "merge_views"]
