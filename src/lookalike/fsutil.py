"""Atomic file writes: a temp file in the target's folder, written (and fsynced), then renamed over it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_copy", "atomic_write"]


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
