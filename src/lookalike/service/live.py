"""The serving catalogue follows ``lookalike reindex`` without a restart.

:class:`LiveCatalog` holds the open catalogue. Before each request it compares the catalogue's generation pointer
(:mod:`lookalike.catalog.generations`) with what it saw: one ``stat``. When it changed, the generation now serving
is opened and its model warmed up in a background thread while requests go on to the old one; then the new
catalogue replaces it in one assignment, and the old one is closed after a grace period (requests that already
hold it finish on it). An open that fails is logged and retried after a while; the old generation serves meanwhile.
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

__all__ = ["LiveCatalog"]

log = logging.getLogger("lookalike.service")
GRACE_S = 60.0  # an old generation is closed this long after the switch (longer than any request may take)
RETRY_S = 10.0  # after a failed open of the new generation


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
    ) -> None:
        self.root = root
        self.catalog = catalog
        self._open = opener
        self._on_swap = on_swap
        self._grace = grace_s
        self._stamp = pointer_stamp(root)
        self._lock = threading.Lock()
        self._busy = False
        self._retry_at = 0.0
        self._closed = False
        self._retired: list[threading.Timer] = []

    def current(self) -> Catalog:
        """The catalogue to answer this request from (starting a reopen in the background when the pointer
        moved)."""
        stamp = pointer_stamp(self.root)
        if stamp != self._stamp and not self._busy and time.monotonic() >= self._retry_at:
            with self._lock:
                if not self._busy and not self._closed:
                    self._busy = True
                    threading.Thread(target=self._reopen, args=(stamp,), name="lookalike-switch", daemon=True).start()
        return self.catalog

    def _reopen(self, stamp: tuple[int, int, int] | None) -> None:
        try:
            new = self._open(self.root)
        except Exception as exc:  # the old generation keeps serving; try again later
            log.error("cannot open the new generation of %s (still serving the old one): %s", self.root, exc)
            self._retry_at = time.monotonic() + RETRY_S
            self._busy = False
            return
        with self._lock:
            old = self.catalog
            if self._closed or new.path == old.path:  # closing, or the pointer came back to this generation
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


def _close_quietly(catalog: Catalog) -> None:
    try:
        catalog.close()
    except Exception as exc:  # a retired generation that cannot checkpoint any more: nothing to lose
        log.debug("closing an old generation of %s: %s", catalog.path, exc)
