"""Issue #6: hostile image URLs, one table, each case refused both by the library and by the API.

Every row is tried twice: through the library (``fetch_image_bytes`` where the fetch itself must refuse,
and ``Catalog.search(url=...)``) and through ``POST /api/search`` with ``{"url": ...}`` on an app with the
default rule (private addresses refused). Each must fail with the expected error class / 4xx status and a
clear JSON ``detail``, never a 500, within the URL time limit.

Nothing here leaves loopback: host names resolve through a fake resolver (numeric forms go to the real
one with ``AI_NUMERICHOST``, so no DNS query is ever sent), and ``socket.connect`` is guarded: a connection
to anything but 127.0.0.1 is refused and fails the test. To put real servers behind URLs that pass the
address check, one stand-in name (``shop.example.test``, "a public image host") is resolved to the loopback
test server: for that name only, the address check is skipped; every other hop (redirect targets
included) goes through the real check.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike import Catalog
from lookalike import errors as lk
from lookalike.imaging import fetch as fetch_module
from lookalike.imaging.fetch import fetch_image_bytes
from lookalike.service import ServiceSettings, create_app

from .conftest import PRODUCTS_DIR
from .http_server import Handler, LoopbackServer, Route, serving, trickle, unsized

STANDIN = "shop.example.test"  # "a public image host": really the loopback test server below
URL_TIMEOUT = 1.5
MAX_BYTES = 200_000
SLACK = 2.5  # seconds allowed past the time limit on a loaded machine
PHOTO = (PRODUCTS_DIR / "images" / "13466.jpg").read_bytes()
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
HTML = b"<!DOCTYPE html><html><body>login</body></html>"
BOMB = gzip.compress(b"\x00" * (8 * MAX_BYTES))  # 1.6 MB of zeros in 1.6 kB
FAKE_DNS = {
    "localhost": ["127.0.0.1", "::1"],
    "intranet.example.test": ["10.1.2.3"],
    "mixed.example.test": ["93.184.216.34", "192.168.0.7"],  # every address is checked, not the first
    "v6-loopback.example.test": ["::1"],
    "metadata.example.test": ["169.254.169.254"],
    "mapped.example.test": ["::ffff:10.0.0.1"],
}


# --- the loopback server behind the stand-in name -------------------------------------------------
def _stall_headers(h: Handler) -> None:
    h.server.stop.wait(20)  # connection accepted, not a byte answered


ROUTES: dict[str, Route] = {
    "/img.jpg": lambda h: h.send(200, "image/jpeg", PHOTO),
    "/start": lambda h: h.redirect("/next"),
    "/next": lambda h: h.redirect("http://127.0.0.1:{port}/img.jpg", 307),
    "/start-intranet": lambda h: h.redirect("/next-intranet", 301),
    "/next-intranet": lambda h: h.redirect("http://intranet.example.test:{port}/img.jpg"),
    "/to-metadata": lambda h: h.redirect("http://169.254.169.254/latest/meta-data/"),
    "/to-mapped": lambda h: h.redirect("http://[::ffff:127.0.0.1]:{port}/img.jpg"),
    "/to-localhost": lambda h: h.redirect("http://localhost:{port}/img.jpg", 308),
    "/to-file": lambda h: h.redirect("file:///etc/passwd"),
    "/loop": lambda h: h.redirect("/loop", 307),
    "/trickle": trickle("image/jpeg", b"\xff", 400),  # 20 s at one byte per 50 ms: only a deadline stops it
    "/stall": _stall_headers,
    "/big": lambda h: h.send(200, "image/jpeg", b"\xff" * (MAX_BYTES + 100_000)),
    "/unsized": unsized("image/jpeg", b"\xff"),
    "/bomb": lambda h: h.send(200, "image/jpeg", BOMB, {"Content-Encoding": "gzip"}),
    "/html": lambda h: h.send(200, "text/html", HTML),
    "/untyped": lambda h: h.send(200, None, PHOTO),
    "/octet": lambda h: h.send(200, "application/octet-stream", PHOTO),
    "/svg-as-image": lambda h: h.send(200, "image/svg+xml", SVG),
    "/html-as-jpeg": lambda h: h.send(200, "image/jpeg", HTML),
    "/error": lambda h: h.send(500, "text/plain", b"boom"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with serving(ROUTES) as srv:
        yield srv


# --- resolver, stand-in host and the connect guard ----------------------------------------------------
@dataclass
class Net:
    """What the test's network saw: connections made, and any attempt to leave loopback."""

    connects: list[tuple[str, int]]
    violations: list[str]


@pytest.fixture()
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_resolve = fetch_module.resolve_and_check
    seen = Net([], [])

    def fake_getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in FAKE_DNS:
            out = []
            for addr in FAKE_DNS[name]:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                sockaddr = (addr, port, 0, 0) if fam == socket.AF_INET6 else (addr, port)
                out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
            return out
        return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)  # never DNS

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            seen.violations.append(f"{host}:{port}")
            raise ConnectionRefusedError(f"test guard: {host} is not loopback")
        seen.connects.append((host, port))
        real_connect(sock, address)

    def resolve(host: str, port: int, allow_private: bool = False, timeout: float = 5.0) -> list[Any]:
        if host == STANDIN:
            return [ipaddress.IPv4Address("127.0.0.1")]
        return real_resolve(host, port, allow_private, timeout)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(fetch_module, "resolve_and_check", resolve)
    return seen


@pytest.fixture(scope="module")
def client(built_catalog: Catalog) -> Iterator[TestClient]:
    """The default rule (no private addresses), a short URL time limit and a small byte cap."""
    settings = ServiceSettings(
        admin_token=None, allow_private_urls=False, max_upload_bytes=MAX_BYTES, url_timeout=URL_TIMEOUT,
        cors_origins=[], default_k=5, max_k=20,
    )  # fmt: skip
    with TestClient(create_app(built_catalog.path, settings)) as c:
        yield c


# --- the table ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A hostile URL; ``{port}`` is the loopback server's port, ``{s}`` the stand-in host with that port."""

    name: str
    url: str
    error: type[lk.LookalikeError]  # from Catalog.search(url=...)
    status: int  # from POST /api/search
    says: str  # in the error message / JSON detail
    fetch_error: type[lk.FetchError] | None = lk.URLNotAllowedError  # from fetch_image_bytes; None: it fetches
    connects: int = 0  # connections the fetch may make (all to the loopback server); 0: refused before any
    slow: bool = False  # refused by a time limit: takes about URL_TIMEOUT


NA = lk.URLNotAllowedError
REFUSED = {"error": NA, "status": 400, "says": "not allowed"}
SCHEME = {"error": lk.InvalidQueryError, "status": 422, "says": "http"}  # the API refuses it at validation

# fmt: off
CASES = [
    # loopback, private, link-local, unspecified: literal addresses (the server really listens on 127.0.0.1)
    Case("loopback", "http://127.0.0.1:{port}/img.jpg", **REFUSED),
    Case("loopback-other", "http://127.8.9.10:{port}/img.jpg", **REFUSED),
    Case("localhost", "http://localhost:{port}/img.jpg", **REFUSED),
    Case("loopback-decimal", "http://2130706433:{port}/img.jpg", **REFUSED),
    Case("loopback-hex", "http://0x7f000001:{port}/img.jpg", **REFUSED),
    Case("loopback-short", "http://127.1:{port}/img.jpg", **REFUSED),
    Case("10/8", "http://10.0.0.1/img.jpg", **REFUSED),
    Case("10/8-top", "http://10.255.255.254/img.jpg", **REFUSED),
    Case("172.16/12", "http://172.16.0.1/img.jpg", **REFUSED),
    Case("172.16/12-top", "http://172.31.255.254/img.jpg", **REFUSED),
    Case("192.168/16", "http://192.168.0.1/img.jpg", **REFUSED),
    Case("192.168/16-top", "http://192.168.255.254/img.jpg", **REFUSED),
    Case("cloud-metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", **REFUSED),
    Case("link-local", "http://169.254.1.1/img.jpg", **REFUSED),
    Case("carrier-grade-nat", "http://100.64.0.1/img.jpg", **REFUSED),
    Case("unspecified", "http://0.0.0.0:{port}/img.jpg", **REFUSED),
    Case("unspecified-short", "http://0:{port}/img.jpg", **REFUSED),
    Case("multicast", "http://224.0.0.1/img.jpg", **REFUSED),
    Case("ipv6-loopback", "http://[::1]:{port}/img.jpg", **REFUSED),
    Case("ipv6-unspecified", "http://[::]:{port}/img.jpg", **REFUSED),
    Case("ipv6-unique-local", "http://[fd00::1]/img.jpg", **REFUSED),
    Case("ipv6-link-local", "http://[fe80::1]/img.jpg", **REFUSED),
    Case("ipv6-aws-metadata", "http://[fd00:ec2::254]/latest/meta-data/", **REFUSED),
    Case("ipv4-mapped-loopback", "http://[::ffff:127.0.0.1]:{port}/img.jpg", **REFUSED),
    Case("ipv4-mapped-loopback-hex", "http://[::ffff:7f00:1]:{port}/img.jpg", **REFUSED),
    Case("ipv4-mapped-10/8", "http://[::ffff:10.0.0.1]/img.jpg", **REFUSED),
    Case("ipv4-mapped-metadata", "http://[::ffff:169.254.169.254]/latest/meta-data/", **REFUSED),
    Case("nat64-metadata", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", **REFUSED),
    Case("6to4-loopback", "http://[2002:7f00:1::1]/img.jpg", **REFUSED),
    # host names that resolve to such addresses
    Case("name-to-10/8", "http://intranet.example.test/img.jpg", **REFUSED),
    Case("name-to-public-and-private", "http://mixed.example.test/img.jpg", **REFUSED),
    Case("name-to-ipv6-loopback", "http://v6-loopback.example.test:{port}/img.jpg", **REFUSED),
    Case("name-to-metadata", "http://metadata.example.test/latest/meta-data/", **REFUSED),
    Case("name-to-mapped-10/8", "http://mapped.example.test/img.jpg", **REFUSED),
    Case("unresolvable-name", "http://nowhere.example.test/img.jpg", lk.FetchError, 400, "cannot resolve",
         fetch_error=lk.FetchError),
    # redirects from the "public" host to places it must not lead
    Case("redirect-chain-to-loopback", "http://{s}/start", **REFUSED, connects=2),
    Case("redirect-chain-to-private-name", "http://{s}/start-intranet", **REFUSED, connects=2),
    Case("redirect-to-metadata", "http://{s}/to-metadata", **REFUSED, connects=1),
    Case("redirect-to-mapped-loopback", "http://{s}/to-mapped", **REFUSED, connects=1),
    Case("redirect-to-localhost", "http://{s}/to-localhost", **REFUSED, connects=1),
    Case("redirect-to-file", "http://{s}/to-file", **REFUSED, connects=1),
    Case("redirect-loop", "http://{s}/loop", lk.FetchError, 400, "too many redirects", fetch_error=lk.FetchError,
         connects=4),
    # schemes and shapes
    Case("file", "file:///etc/passwd", **SCHEME),
    Case("ftp", "ftp://127.0.0.1/img.jpg", **SCHEME),
    Case("gopher", "gopher://127.0.0.1:11211/_stats", **SCHEME),
    Case("data", "data:image/png;base64,iVBORw0KGgo=", **SCHEME),
    Case("credentials", "http://user:secret@{s}/img.jpg", NA, 400, "credentials"),
    # time, size and type limits (the stand-in host: these pass the address check)
    Case("trickle", "http://{s}/trickle", lk.FetchTimeoutError, 504, "timed out", lk.FetchTimeoutError, 1, True),
    Case("stalled-headers", "http://{s}/stall", lk.FetchTimeoutError, 504, "timed out", lk.FetchTimeoutError, 1, True),
    Case("declared-over-cap", "http://{s}/big", lk.FetchTooLargeError, 413, "limit", lk.FetchTooLargeError, 1),
    Case("streamed-over-cap", "http://{s}/unsized", lk.FetchTooLargeError, 413, "limit", lk.FetchTooLargeError, 1),
    Case("gzip-bomb", "http://{s}/bomb", lk.FetchTooLargeError, 413, "limit", lk.FetchTooLargeError, 1),
    Case("html", "http://{s}/html", lk.UnsupportedContentTypeError, 415, "not an image",
         lk.UnsupportedContentTypeError, 1),
    Case("no-content-type", "http://{s}/untyped", lk.UnsupportedContentTypeError, 415, "not an image",
         lk.UnsupportedContentTypeError, 1),
    Case("octet-stream", "http://{s}/octet", lk.UnsupportedContentTypeError, 415, "not an image",
         lk.UnsupportedContentTypeError, 1),
    Case("svg-as-image", "http://{s}/svg-as-image", lk.UnsupportedImageError, 415, "not a supported image",
         None, 1),
    Case("html-as-jpeg", "http://{s}/html-as-jpeg", lk.UnsupportedImageError, 415, "not a supported image",
         None, 1),
    Case("server-error", "http://{s}/error", lk.FetchError, 400, "HTTP 500", lk.FetchError, 1),
]
# fmt: on


def _url(case: Case, server: LoopbackServer) -> str:
    port = server.server_address[1]
    return case.url.format(port=port, s=f"{STANDIN}:{port}")


def test_the_table_counts_its_cases() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) == 58
    assert sum(c.status == 400 and c.says == "not allowed" for c in CASES) == 40


def test_the_stand_in_host_really_serves_so_refusals_are_not_an_accident(
    server: LoopbackServer, net: Net, client: TestClient
) -> None:
    port = server.server_address[1]
    url = f"http://{STANDIN}:{port}/img.jpg"
    body, ctype = fetch_image_bytes(url, _catalog(client).fetch_settings)
    assert (body, ctype) == (PHOTO, "image/jpeg")
    r = client.post("/api/search", json={"url": url, "k": 3})
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["id"] == "13466"
    assert net.connects == [("127.0.0.1", port), ("127.0.0.1", port)] and net.violations == []


def _catalog(client: TestClient) -> Catalog:
    return client.app.state.catalog  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_url_is_refused_by_the_library(
    case: Case, server: LoopbackServer, net: Net, client: TestClient
) -> None:
    url = _url(case, server)
    catalog = _catalog(client)
    if case.fetch_error is not None:
        start = time.monotonic()
        with pytest.raises(case.fetch_error) as caught:
            fetch_image_bytes(url, catalog.fetch_settings)
        assert case.says.lower() in str(caught.value).lower()
        _check_time(case, time.monotonic() - start)
    start = time.monotonic()
    with pytest.raises(case.error) as caught_search:
        catalog.search(url=url, k=3)
    assert case.says.lower() in str(caught_search.value).lower()
    _check_time(case, time.monotonic() - start)
    _check_net(case, net, server, calls=2 if case.fetch_error is not None else 1)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_url_is_refused_by_the_api(case: Case, server: LoopbackServer, net: Net, client: TestClient) -> None:
    start = time.monotonic()
    r = client.post("/api/search", json={"url": _url(case, server), "k": 3})
    _check_time(case, time.monotonic() - start)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str) and case.says.lower() in detail.lower(), detail
    _check_net(case, net, server, calls=1)


def _check_time(case: Case, elapsed: float) -> None:
    assert elapsed < URL_TIMEOUT + SLACK, f"{case.name}: {elapsed:.2f} s"
    if case.slow:
        assert elapsed > URL_TIMEOUT * 0.6, f"{case.name}: cut after {elapsed:.2f} s, not by the time limit"


def _check_net(case: Case, net: Net, server: LoopbackServer, calls: int) -> None:
    """Nothing but the loopback server was dialled, and only as often as the case's allowed hops."""
    assert net.violations == [], net.violations
    assert net.connects == [("127.0.0.1", server.server_address[1])] * (case.connects * calls), net.connects


def test_the_count_in_docs_reliability_is_this_tables() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    assert f"{len(CASES)} hostile URLs" in doc.read_text()
