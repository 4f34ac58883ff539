"""Products that share one picture: the same content hash of the stored picture bytes (``image_sha``, kept
by the backend at ingest). A search shows such a group once (:func:`lookalike.catalog.ranking.collapse_duplicates`);
``lookalike info --duplicates`` lists the groups of a catalogue with :func:`duplicate_groups`."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from lookalike.backends.base import CatalogBackend

__all__ = ["duplicate_groups"]

_CHUNK = 1000


def _chunks(ids: Iterator[str]) -> Iterator[list[str]]:
    while chunk := list(islice(ids, _CHUNK)):
        yield chunk


def duplicate_groups(backend: CatalogBackend) -> list[list[str]]:
    """The groups of two or more products whose pictures are byte-identical, each group's ids in catalogue
    order, the groups by their first id's place (one pass over the ids, ``states`` a thousand at a time)."""
    by_sha: dict[str, list[str]] = {}
    for chunk in _chunks(iter(backend.iter_ids())):
        states = backend.states(chunk)
        for pid in chunk:
            state = states.get(pid)
            if state is not None and state.image_sha:
                by_sha.setdefault(state.image_sha, []).append(pid)
    return [ids for ids in by_sha.values() if len(ids) > 1]
