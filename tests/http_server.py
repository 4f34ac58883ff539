"""A threaded HTTP test server on 127.0.0.1 (a free port): routes by path, and a record of the requests.

Routes are functions of the request handler; ``Handler.send`` and ``Handler.redirect`` answer, ``trickle``
and ``unsized`` build slow and length-less bodies. ``serving(routes)`` runs a server on a thread.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = [
    "Handler",
    "LoopbackServer",
    "Route",
    "names_refused",
    "serving",
    "serving_app",
    "trickle",
    "trickle_headers",
    "unsized",
]

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.hits.append((self.path, self.headers.get("Host", "")))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send(404, "text/plain", b"not found")
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            route(self)

    def send(self, status: int, ctype: str | None, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A whole response with a declared length; no Content-Type header when ``ctype`` is None."""
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        """A redirect to ``location``, where ``{port}`` stands for this server's port."""
        self.send(status, "text/plain", b"", {"Location": location.format(port=self.server.port)})


class LoopbackServer(ThreadingHTTPServer):
    """``routes``: path (without the query) to route; ``hits``: (path, Host header) of every GET;
    ``stop``: set when the server shuts down, for slow routes to give up."""

    daemon_threads = True

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: list[tuple[str, str]] = []
        self.routes: dict[str, Route] = dict(routes or {})
        self.stop = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hanging up early are expected
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def trickle(ctype: str, byte: bytes, count: int) -> Route:
    """A route that declares a 100,000-byte body, then sends ``byte`` every 50 ms, ``count`` times."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(count):
            if h.server.stop.is_set():
                return
            h.wfile.write(byte)
            h.wfile.flush()
            time.sleep(0.05)

    return route


def trickle_headers(delay: float, ctype: str = "image/jpeg") -> Route:
    """A route that sends its status line and headers one byte every ``delay`` seconds (the body never
    comes): a read timeout never fires, only an overall deadline stops it."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: 100\r\nX-Padding: {'x' * 40}\r\n\r\n"

    def route(h: Handler) -> None:
        h.close_connection = True
        for byte in head.encode():
            if h.server.stop.wait(delay):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()

    return route


def names_refused(monkeypatch: object) -> list[str]:
    """Keep the fetcher on loopback: its resolver answers only numeric loopback hosts (no DNS query is
    ever sent) and refuses every name, and any connection to a non-loopback address is refused. Returns
    the list of refused attempts (names and addresses), for the test to inspect."""
    import ipaddress
    import socket

    from lookalike.imaging import fetch

    refused: list[str] = []
    real_connect = socket.socket.connect

    def resolve(host: str, port: int) -> list[tuple]:  # type: ignore[type-arg]
        infos = []
        with contextlib.suppress(OSError, UnicodeError):
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        if not infos or not all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos):
            refused.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"test resolver: {host!r} is not resolved")
        return infos

    def guarded_connect(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%")[0]  # type: ignore[index]
            if not ipaddress.ip_address(host).is_loopback:
                refused.append(host)
                raise ConnectionRefusedError(f"test guard: {host} is not loopback")
        real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch, "_system_getaddrinfo", resolve)  # type: ignore[attr-defined]
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)  # type: ignore[attr-defined]
    return refused


def unsized(ctype: str, byte: bytes) -> Route:
    """A route that streams 1 MiB of ``byte`` with no declared length: the body ends when the connection
    closes."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        for _ in range(64):
            h.wfile.write(byte * 16384)

    return route


@contextlib.contextmanager
def serving(routes: Mapping[str, Route]) -> Iterator[LoopbackServer]:
    """A server for ``routes``, serving on a daemon thread until the block ends."""
    srv = LoopbackServer(routes)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def serving_app(app: object, **config: object) -> Iterator[int]:
    """An ASGI ``app`` served by uvicorn on a daemon thread, on a loopback socket bound here (no race for a
    free port); yields the port once the server has started. ``config``: more ``uvicorn.Config`` options."""
    import socket

    import pytest
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
