"""Entries of an image folder that look like pictures but cannot be read as files: FIFOs, sockets, devices,
symbolic link loops and dangling links. :func:`~lookalike.sources.read_folder` reports each as a product that
failed, with the reason, instead of leaving it out without a word (and a FIFO is never opened: opening one
blocks until something writes to it)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["unreadable_entries"]

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"))  # fmt: skip


def _reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a picture file, or None when it can (a file, or a link to one)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return f"a symbolic link to nothing ({exc.strerror})"
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def unreadable_entries(root: Path, extensions: frozenset[str]) -> Iterator[tuple[Path, str]]:
    """(path, reason) of every entry under ``root`` with a picture's extension that is not a readable file,
    sorted by path."""
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in extensions:
            reason = _reason(path)
            if reason is not None:
                yield path, f"not a picture file: {reason}"
