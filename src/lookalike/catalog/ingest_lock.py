"""One ingest at a time per catalogue: ``flock`` on ``<picture folder>/.ingest.lock``, never waited for.

Two ingests of the same rows started together would both find every product new and both embed it all; the
second now stops at once with :class:`~lookalike.errors.CatalogBusyError` ("another ingest is running on this
catalogue"; ``lookalike ingest`` exits 75) and can simply be run again later (resume semantics are unchanged:
what the first committed is skipped). The lock is an open file description's ``flock``, so it holds between
processes and between threads of one process, and the kernel drops it when its holder dies (a SIGKILLed ingest
leaves no stale lock). Single-product writes (the API's uploads, deletes) do not take it: they hold the
picture lock (:meth:`~lookalike.catalog.pictures.PictureStore.locked`) only while they write.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: not serialised
    fcntl = None  # type: ignore[assignment]

from lookalike.errors import CatalogBusyError

__all__ = ["INGEST_LOCK", "ingest_lock", "try_flock"]

INGEST_LOCK = ".ingest.lock"
_HELD: set[int] = set()  # the lock files this process holds


def _close_held_in_child() -> None:
    """In a forked child (the ingest's decode workers): let go of the parent's locks. A child shares the lock's
    open file description, so without this a child outliving a killed parent would hold the catalogue busy."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


@contextlib.contextmanager
def try_flock(path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing), never waited for: raises
    :class:`CatalogBusyError` with the message ``busy`` at once when another holds it (the kernel drops it when
    its holder dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CatalogBusyError(busy) from None
        _HELD.add(fd)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def ingest_lock(folder: Path) -> Iterator[None]:
    """Hold the ingest lock of the catalogue whose picture folder is ``folder``; raises
    :class:`CatalogBusyError` at once when another ingest holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with try_flock(
        folder / INGEST_LOCK,
        f"another ingest is running on this catalogue ({folder.parent}); run this one again when it "
        "has finished (what it committed is skipped)",
    ):
        yield
