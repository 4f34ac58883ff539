"""A bound on how many big pictures are decoded at once.

A big picture holds its whole decoded pixel buffer while it is read (a flat 6324 x 6324 PNG: 160 MB),
so a burst of such uploads is bounded here: at most :func:`decode_concurrency` of them decode at a time
(default 2, ``LOOKALIKE_DECODE_CONCURRENCY`` or :func:`set_decode_concurrency`); the others wait their
turn. Ordinary pictures (up to :data:`BIG_DECODE_BYTES` decoded) never wait, so ingest threads keep their
speed. The semaphore is created on first use: importing this module does no work.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from lookalike.errors import ImageError

__all__ = [
    "BIG_DECODE_BYTES",
    "DEFAULT_DECODE_CONCURRENCY",
    "decode_concurrency",
    "decode_slot",
    "set_decode_concurrency",
]

DEFAULT_DECODE_CONCURRENCY = 2
CONCURRENCY_ENV = "LOOKALIKE_DECODE_CONCURRENCY"
# A decode that holds more than this (w * h * bytes per pixel as Pillow stores it) takes a slot.
BIG_DECODE_BYTES = 32 * 1024 * 1024

_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_size: int | None = None


def _from_env() -> int:
    text = os.environ.get(CONCURRENCY_ENV, "").strip()
    if not text:
        return DEFAULT_DECODE_CONCURRENCY
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ImageError(f"{CONCURRENCY_ENV}={text!r}: give a whole number of at least 1")
    return n


def _semaphore() -> threading.BoundedSemaphore:
    global _slots, _size
    with _lock:
        if _slots is None:
            _size = _from_env()
            _slots = threading.BoundedSemaphore(_size)
        return _slots


def decode_concurrency() -> int:
    """How many big pictures may be decoded at the same time."""
    _semaphore()
    assert _size is not None
    return _size


def set_decode_concurrency(n: int) -> None:
    """Allow ``n`` big decodes at a time from now on (decodes already running finish as they are)."""
    global _slots, _size
    if int(n) < 1:
        raise ValueError("decode concurrency must be at least 1")
    with _lock:
        _size = int(n)
        _slots = threading.BoundedSemaphore(_size)


@contextlib.contextmanager
def decode_slot(held_bytes: int) -> Iterator[None]:
    """Hold a decode slot while a picture of ``held_bytes`` decoded bytes is read (big ones only)."""
    if held_bytes <= BIG_DECODE_BYTES:
        yield
        return
    slots = _semaphore()  # the one acquired is the one released, even if it is replaced meanwhile
    with slots:
        yield
