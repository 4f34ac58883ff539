"""Atomic file writes: a temp file in the target's folder, written (and fsynced), then renamed over it; and
telling a full disk from other write errors (:func:`is_disk_full`, :func:`full_disk_error`)."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TypeVar

from lookalike.errors import StorageFullError

__all__ = ["as_storage_error", "atomic_copy", "atomic_write", "full_disk_error", "is_disk_full"]

#: errno values that mean "no room to write": the disk is full, or the user's quota is used up.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the quota) is full: an ``OSError`` with ENOSPC or EDQUOT, or SQLite's
    ``database or disk is full`` (SQLITE_FULL)."""
    if isinstance(exc, StorageFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith("SQLITE_FULL") or "database or disk is full" in str(exc)
    return False


def full_disk_error(exc: BaseException, what: str) -> StorageFullError:
    """The :class:`StorageFullError` for a disk-full ``exc`` met while doing ``what`` ("storing a picture")."""
    if isinstance(exc, StorageFullError):
        return exc
    detail = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    return StorageFullError(f"disk full while {what} ({detail}): nothing was written; free some space and try again")


E = TypeVar("E", bound=Exception)


def as_storage_error(exc: E, what: str) -> E | StorageFullError:
    """``exc``, or its :class:`StorageFullError` when it says the disk is full."""
    return full_disk_error(exc, what) if is_disk_full(exc) else exc


def atomic_write(
    path: str | os.PathLike[str], data: bytes | memoryview, fsync: bool = True, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new one, never half of it.

    ``fsync`` makes the new content durable before the rename (crash safety); ``mode`` sets the file's
    permissions (a temp file starts as 0600).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy ``source`` to ``target`` (its folder must exist) so readers see no half-copied file: a temp file
    beside the target, fsynced, renamed."""
    dst = Path(target)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, Path(source).open("rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
