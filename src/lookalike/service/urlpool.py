"""A bounded thread pool of its own for work that fetches an image URL.

URL fetches wait on other people's servers. They run here, on ``workers`` threads, never on the threads
that serve uploads, product pages and ``/healthz``; when every worker is busy, a new URL request is
refused at once with 503 and a ``Retry-After`` header instead of queueing.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import HTTPException

__all__ = ["URLPool"]

T = TypeVar("T")


class URLPool:
    """``workers`` threads for URL work; :meth:`run` answers 503 when they are all busy."""

    def __init__(self, workers: int, retry_after: float) -> None:
        self.workers = workers
        self.retry_after = max(1, math.ceil(retry_after))
        self._slots = threading.BoundedSemaphore(workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-url")

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a free worker; 503 with ``Retry-After`` at once if there is none.

        A slot is given back when ``fn`` ends on its thread, not when the request ends: a client that
        hangs up does not free a worker that is still fetching.
        """
        if not self._slots.acquire(blocking=False):
            raise HTTPException(
                503,
                f"too many image URL requests in progress ({self.workers}); try again shortly",
                headers={"Retry-After": str(self.retry_after)},
            )
        try:
            future = self._executor.submit(fn)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop taking work (running fetches end at their own deadline)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
