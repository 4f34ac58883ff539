"""The serving catalogue follows ``lookalike reindex`` without a restart.

:class:`LiveCatalog` holds the open catalogue. Before each request it compares the catalogue's generation pointer
(:mod:`lookalike.catalog.generations`) with what it saw: one ``stat``. When it changed, the generation now serving
is opened and its model warmed up in a background thread while requests go on to the old one; then the new
catalogue replaces it in one assignment, and the old one is closed after a grace period (requests that already
hold it finish on it). An open that fails is logged and retried after a while; the old generation serves meanwhile.

A Milvus catalogue's name is an alias of its generation's collection (:mod:`lookalike.backends.milvus_alias`); an
open catalogue stays bound to the collection it opened, so :class:`AliasWatch` asks Milvus which collection the
name names, at most every :data:`POLL_S` seconds, and a change reopens the catalogue the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lookalike.catalog import Catalog
from lookalike.catalog.generations import pointer_stamp

__all__ = ["AliasWatch", "LiveCatalog", "follow"]

log = logging.getLogger("lookalike.service")
GRACE_S = 60.0  # an old generation is closed this long after the switch (longer than any request may take)
RETRY_S = 10.0  # after a failed open of the new generation
POLL_S = 2.0  # a Milvus catalogue's alias is asked at most this often


class LiveCatalog:
    """The catalogue a server answers from, swapped when the generation pointer of ``root`` changes.
    ``on_swap`` is told of each new catalogue (the app keeps ``app.state.catalog`` current with it)."""

    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        opener: Callable[[Path], Catalog],
        on_swap: Callable[[Catalog], Any] | None = None,
        grace_s: float = GRACE_S,
        stamp: Callable[[Catalog], Any] | None = None,
    ) -> None:
        self.root = root
        self.catalog = catalog
        self._open = opener
        self._on_swap = on_swap
        self._grace = grace_s
        self._stamp_of = stamp or (lambda _catalog: pointer_stamp(root))  # what changes with a switch
        self._stamp = self._stamp_of(catalog)
        self._lock = threading.Lock()
        self._busy = False
        self._retry_at = 0.0
        self._closed = False
        self._retired: list[threading.Timer] = []

    def current(self) -> Catalog:
        """The catalogue to answer this request from (starting a reopen in the background when the pointer
        moved)."""
        stamp = self._stamp_of(self.catalog)
        if stamp != self._stamp and not self._busy and time.monotonic() >= self._retry_at:
            with self._lock:
                if not self._busy and not self._closed:
                    self._busy = True
                    threading.Thread(target=self._reopen, args=(stamp,), name="lookalike-switch", daemon=True).start()
        return self.catalog

    def _reopen(self, stamp: Any) -> None:
        try:
            new = self._open(self.root)
        except Exception as exc:  # the old generation keeps serving; try again later
            log.error("cannot open the new generation of %s (still serving the old one): %s", self.root, exc)
            self._retry_at = time.monotonic() + RETRY_S
            self._busy = False
            return
        with self._lock:
            old = self.catalog
            if self._closed or _where(new) == _where(old):  # closing, or the pointer came back to this generation
                self._stamp = stamp
                self._busy = False
                new.close()
                return
            self.catalog = new
            self._stamp = stamp
            self._busy = False
            if self._on_swap is not None:
                self._on_swap(new)
            timer = threading.Timer(self._grace, _close_quietly, args=(old,))
            timer.daemon = True
            timer.start()
            self._retired.append(timer)
        gen = new.manifest.get("generation", 0)
        log.warning("switched to generation %s of %s (model %s)", gen, self.root, new.extractor_name)

    def close(self) -> None:
        """Close the current catalogue and any old one still in its grace period."""
        with self._lock:
            self._closed = True
            timers, self._retired = self._retired, []
        for timer in timers:
            if timer.is_alive():
                timer.cancel()
                _close_quietly(timer.args[0])  # type: ignore[attr-defined]
        self.catalog.close()


def _where(catalog: Catalog) -> tuple[Path, str | None]:
    """A generation's identity: its folder, and for Milvus its collection."""
    return catalog.path, getattr(catalog.backend, "collection", None)


class AliasWatch:
    """The collection a Milvus catalogue's name names (its serving generation), asked of Milvus at most every
    ``every_s`` seconds through the current catalogue's connection; before the first ask, the collection it opened."""

    def __init__(self, catalog: Catalog, every_s: float | None = None) -> None:
        self.name = str(catalog.path)
        self.value: str = catalog.backend.collection  # type: ignore[attr-defined]
        self.every_s = POLL_S if every_s is None else every_s
        self._next = time.monotonic() + self.every_s

    def __call__(self, catalog: Catalog) -> str:
        now = time.monotonic()
        if now < self._next:
            return self.value
        self._next = now + self.every_s
        from lookalike.backends.milvus_alias import resolve

        try:
            self.value = resolve(catalog.backend.client, self.name) or self.value  # type: ignore[attr-defined]
        except Exception as exc:  # Milvus away for a moment: keep serving what is open
            log.debug("cannot ask Milvus which collection %s names: %s", self.name, exc)
        return self.value


def follow(
    root: Path, catalog: Catalog, opener: Callable[[Path], Catalog], on_swap: Callable[[Catalog], Any] | None = None
) -> LiveCatalog:
    """A :class:`LiveCatalog` for ``catalog``: following the generation pointer, or a Milvus catalogue's alias."""
    milvus = getattr(catalog.backend, "kind", None) == "milvus" and hasattr(catalog.backend, "collection")
    return LiveCatalog(root, catalog, opener, on_swap, stamp=AliasWatch(catalog) if milvus else None)


def _close_quietly(catalog: Catalog) -> None:
    try:
        catalog.close()
    except Exception as exc:  # a retired generation that cannot checkpoint any more: nothing to lose
        log.debug("closing an old generation of %s: %s", catalog.path, exc)
