"""One deadline over every socket operation of an HTTP fetch (httpx's own timeouts are per read).

:func:`deadline_transport` gives an httpx transport whose connections cannot outlive a deadline: each
connect, read, write and TLS handshake step is given at most the time left, and a watchdog thread shuts
the socket down when the deadline passes, so a blocked read returns at once. A server that trickles its
status line and headers one byte at a time is cut off at the deadline like one that trickles its body.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["deadline_transport"]


class _Watchdog:
    """One daemon thread that shuts sockets down when their deadline passes (unblocking any read)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._cond:
            ticket = next(self._ids)
            heapq.heappush(self._heap, (deadline, ticket, sock))
            self._live.add(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lookalike-fetch-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return ticket

    def release(self, ticket: int) -> None:
        with self._cond:
            self._live.discard(ticket)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # closed before its deadline
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
                _, ticket, sock = heapq.heappop(self._heap)
                self._live.discard(ticket)
            with contextlib.suppress(OSError):  # closed already (its file descriptor is then -1)
                sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()


def _left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """The time an operation may take: ``timeout`` capped at what is left before ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the overall deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float, ticket: int) -> None:
        self._inner = inner
        self._deadline = deadline
        self._ticket = ticket

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        _watchdog.release(self._ticket)
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # The handshake's reads each get the time left; the TLS socket replaces the plain one in the
        # watchdog (wrapping detaches the plain socket object, so shutting that one down does nothing).
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, left)
        finally:
            _watchdog.release(self._ticket)
        ticket = _watchdog.watch(inner.get_extra_info("socket"), self._deadline)
        return _DeadlineStream(inner, self._deadline, ticket)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every connection bound to one deadline (and watched)."""

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        ticket = _watchdog.watch(sock, self._deadline)
        return _DeadlineStream(stream, self._deadline, ticket)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise httpcore.ConnectError("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """An httpx transport whose connections all end by ``deadline``, whatever the server does."""
    transport = httpx.HTTPTransport(trust_env=False, retries=0)
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - a changed httpcore must fail loudly
        raise RuntimeError("httpcore.ConnectionPool has no _network_backend: update lookalike.imaging.fetch")
    pool._network_backend = _DeadlineBackend(deadline)
    return transport
