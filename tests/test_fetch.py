"""Safe image URL fetching, against a local threaded HTTP server on 127.0.0.1.

No test here contacts a non-loopback address: refused URLs are refused before any connection (the
``no_network`` transport fails the test if one is attempted) and host names resolve through a patched
resolver.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from lookalike.errors import (
    FetchError,
    FetchTimeoutError,
    FetchTooLargeError,
    UnsupportedContentTypeError,
    URLNotAllowedError,
)
from lookalike.imaging.fetch import FetchSettings, check_address, fetch_image_bytes, resolve_and_check

from .http_server import Handler, LoopbackServer, Route, serving, trickle, trickle_headers, unsized


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
PRIVATE_OK = FetchSettings(allow_private=True, connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)


def _stall(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    h.wfile.flush()
    h.server.stop.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    bomb = gzip.compress(b"\x00" * (4 * 1024 * 1024))
    routes: dict[str, Route] = {
        "/img.png": lambda h: h.send(200, "image/png; charset=binary", PNG),
        "/page": lambda h: h.send(200, "text/html", b"<html>hi</html>"),
        "/untyped": lambda h: h.send(200, None, PNG),
        "/big": lambda h: h.send(200, "image/png", b"\x00" * 50_000),
        "/unsized": unsized("image/png", b"\x00"),
        "/trickle": trickle("image/png", b"\x00", 200),
        "/stall": _stall,
        "/slow-headers": trickle_headers(0.2),
        "/gzip": lambda h: h.send(200, "image/png", gzip.compress(PNG), {"Content-Encoding": "gzip"}),
        "/bomb": lambda h: h.send(200, "image/png", bomb, {"Content-Encoding": "gzip"}),
        "/double": lambda h: h.send(
            200, "image/png", gzip.compress(gzip.compress(PNG)), {"Content-Encoding": "gzip, gzip"}
        ),
        "/missing": lambda h: h.send(404, "text/plain", b"gone"),
        "/to-img": lambda h: h.redirect("/img.png"),
        "/to-metadata": lambda h: h.redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-zero": lambda h: h.redirect("http://0.0.0.0:80/img.png", 301),
        "/to-file": lambda h: h.redirect("file:///etc/passwd"),
        "/loop": lambda h: h.redirect("/loop", 307),
        "/no-location": lambda h: h.send(302, "text/plain", b"moved"),
    }
    with serving(routes) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clear_hits(server: LoopbackServer) -> None:
    server.hits.clear()


def _refuse_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        pytest.fail(f"a refused URL was contacted: {request.url}")

    return httpx.MockTransport(handler)


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]], delay: float = 0.0) -> None:
    real = socket.getaddrinfo

    def fake(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:  # type: ignore[type-arg]
        if host not in table:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        time.sleep(delay)
        out = []
        for addr in table[host]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", fake)


# --- private addresses ------------------------------------------------------------------------------
def test_loopback_is_refused_by_default_without_contacting_it(server: LoopbackServer) -> None:
    with pytest.raises(URLNotAllowedError, match=r"127\.0\.0\.1"):
        fetch_image_bytes(f"{server.base}/img.png")
    assert server.hits == []


def test_localhost_name_is_refused_by_default(server: LoopbackServer) -> None:
    with pytest.raises(URLNotAllowedError):
        fetch_image_bytes(f"http://localhost:{server.server_address[1]}/img.png")
    assert server.hits == []


def test_private_hosts_are_fetched_when_allowed(server: LoopbackServer) -> None:
    body, ctype = fetch_image_bytes(f"{server.base}/img.png", PRIVATE_OK)
    assert body == PNG
    assert ctype == "image/png"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/img.png",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/img.png",
        "http://[::]/img.png",
        "http://[::1]/img.png",
        "http://10.0.0.1/img.png",
        "http://192.168.1.20/img.png",
        "http://172.16.5.4/img.png",
        "http://100.64.0.1/img.png",
        "http://[fd12:3456::1]/img.png",
        "http://[fec0::1]/img.png",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://2130706433/img.png",
        "http://127.1/img.png",
        "http://224.0.0.1/img.png",
    ],
)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(URLNotAllowedError):
        fetch_image_bytes(url, FetchSettings(), transport=_refuse_transport())


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:0.0.0.0]/",
        "http://239.1.2.3/",
    ],
)
def test_metadata_link_local_unspecified_and_multicast_are_refused_even_when_private_allowed(url: str) -> None:
    with pytest.raises(URLNotAllowedError):
        fetch_image_bytes(url, PRIVATE_OK, transport=_refuse_transport())


@pytest.mark.parametrize("addr", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass_the_check(addr: str) -> None:
    check_address(ipaddress.ip_address(addr))  # no exception


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {"mixed.test": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(URLNotAllowedError, match=r"10\.1\.2\.3"):
        fetch_image_bytes("http://mixed.test/img.png", transport=_refuse_transport())


def test_connection_goes_to_the_checked_address_with_the_original_host_header(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.server_address[1]
    _fake_resolver(monkeypatch, {"images.test": ["127.0.0.1"]})
    body, _ = fetch_image_bytes(f"http://images.test:{port}/img.png", PRIVATE_OK)
    assert body == PNG
    assert server.hits == [("/img.png", f"images.test:{port}")]


def test_next_address_is_tried_when_the_first_refuses_connections(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.0.0.2 is loopback too, but the server listens on 127.0.0.1 only: the first address refuses.
    _fake_resolver(monkeypatch, {"dual.test": ["127.0.0.2", "127.0.0.1"]})
    port = server.server_address[1]
    body, _ = fetch_image_bytes(f"http://dual.test:{port}/img.png", PRIVATE_OK)
    assert body == PNG


def test_slow_resolver_hits_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {"slow-dns.test": ["127.0.0.1"]}, delay=2.0)
    start = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        resolve_and_check("slow-dns.test", 80, allow_private=True, timeout=0.2)
    assert time.monotonic() - start < 1.5


def _blocking_resolver(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> list[str]:
    """Names starting ``slow`` block until ``release`` is set; other names answer 127.0.0.1 at once."""
    calls: list[str] = []

    def fake(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:  # type: ignore[type-arg]
        calls.append(host)
        if host.startswith("slow"):
            release.wait(10)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return calls


def _lookups_in_threads(names: list[str], timeout: float) -> list[BaseException | None]:
    results: list[BaseException | None] = [None] * len(names)

    def one(i: int, name: str) -> None:
        try:
            resolve_and_check(name, 80, allow_private=True, timeout=timeout)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_slow_lookups_do_not_delay_other_names(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    _blocking_resolver(monkeypatch, release)
    try:
        stuck = _lookups_in_threads([f"slow{i}.example.test" for i in range(8)], timeout=0.3)
        assert all(isinstance(e, FetchTimeoutError) for e in stuck)
        start = time.monotonic()  # the eight slow lookups are still running
        assert resolve_and_check("fast.example.test", 80, allow_private=True, timeout=1.0) == [
            ipaddress.IPv4Address("127.0.0.1")
        ]
        assert time.monotonic() - start < 0.5
    finally:
        release.set()


def test_concurrent_lookups_of_one_slow_name_share_one_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    calls = _blocking_resolver(monkeypatch, release)
    try:
        stuck = _lookups_in_threads(["slow.example.test"] * 10, timeout=0.3)
        assert all(isinstance(e, FetchTimeoutError) for e in stuck)
        assert calls.count("slow.example.test") == 1  # one thread held, however many fetches wait
    finally:
        release.set()


# --- redirects --------------------------------------------------------------------------------------
def test_redirects_are_followed_and_rechecked(server: LoopbackServer) -> None:
    body, _ = fetch_image_bytes(f"{server.base}/to-img", PRIVATE_OK)
    assert body == PNG
    assert [p for p, _ in server.hits] == ["/to-img", "/img.png"]


@pytest.mark.parametrize("path", ["/to-metadata", "/to-zero", "/to-file"])
def test_redirect_to_a_refused_address_is_refused(server: LoopbackServer, path: str) -> None:
    with pytest.raises(URLNotAllowedError):
        fetch_image_bytes(f"{server.base}{path}", PRIVATE_OK)
    assert [p for p, _ in server.hits] == [path]


@pytest.mark.parametrize("status", [301, 302])
def test_redirect_without_location_is_a_fetch_error(server: LoopbackServer, status: int) -> None:
    server.routes["/no-location"] = lambda h: h.send(status, "text/plain", b"moved")
    with pytest.raises(FetchError, match="without a Location"):
        fetch_image_bytes(f"{server.base}/no-location", PRIVATE_OK)


def test_redirect_loops_stop_after_the_limit(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, max_redirects=3, total_timeout=5.0)
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_image_bytes(f"{server.base}/loop", settings)
    assert len(server.hits) == 4  # the first request and three redirects


def test_redirect_to_loopback_is_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "93.184.216.34"  # the pinned, checked address; never really dialled
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:9/secret"})

    _fake_resolver(monkeypatch, {"public.test": ["93.184.216.34"]})
    with pytest.raises(URLNotAllowedError, match=r"127\.0\.0\.1"):
        fetch_image_bytes("http://public.test/a.jpg", transport=httpx.MockTransport(handler))


# --- time, size and type limits ---------------------------------------------------------------------
def test_slow_trickle_hits_the_overall_deadline(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, connect_timeout=1.0, read_timeout=1.0, total_timeout=0.6)
    start = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        fetch_image_bytes(f"{server.base}/trickle", settings)
    assert time.monotonic() - start < 2.5


def test_trickled_status_line_and_headers_hit_the_overall_deadline(server: LoopbackServer) -> None:
    # one byte every 0.2 s: the 5 s read timeout never fires, only the 1 s overall deadline can stop it
    settings = FetchSettings(allow_private=True, connect_timeout=5.0, read_timeout=5.0, total_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        fetch_image_bytes(f"{server.base}/slow-headers", settings)
    assert time.monotonic() - start < 2.0


def test_stalled_body_hits_the_read_timeout(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, connect_timeout=1.0, read_timeout=0.3, total_timeout=5.0)
    start = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        fetch_image_bytes(f"{server.base}/stall", settings)
    assert time.monotonic() - start < 2.0


def test_declared_body_over_the_cap_is_refused(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, max_bytes=10_000)
    with pytest.raises(FetchTooLargeError, match="50,000 bytes"):
        fetch_image_bytes(f"{server.base}/big", settings)


def test_streamed_body_over_the_cap_is_refused(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, max_bytes=100_000)
    with pytest.raises(FetchTooLargeError):
        fetch_image_bytes(f"{server.base}/unsized", settings)


def test_body_at_the_cap_is_accepted(server: LoopbackServer) -> None:
    body, _ = fetch_image_bytes(f"{server.base}/img.png", FetchSettings(allow_private=True, max_bytes=len(PNG)))
    assert body == PNG


def test_gzip_body_is_decoded(server: LoopbackServer) -> None:
    body, _ = fetch_image_bytes(f"{server.base}/gzip", PRIVATE_OK)
    assert body == PNG


def test_gzip_bomb_is_cut_off_at_the_cap(server: LoopbackServer) -> None:
    settings = FetchSettings(allow_private=True, max_bytes=200_000)
    with pytest.raises(FetchTooLargeError):
        fetch_image_bytes(f"{server.base}/bomb", settings)


def test_stacked_content_encodings_are_refused(server: LoopbackServer) -> None:
    with pytest.raises(FetchError, match="content encoding"):
        fetch_image_bytes(f"{server.base}/double", PRIVATE_OK)


@pytest.mark.parametrize("path", ["/page", "/untyped"])
def test_non_image_content_type_is_refused(server: LoopbackServer, path: str) -> None:
    with pytest.raises(UnsupportedContentTypeError):
        fetch_image_bytes(f"{server.base}{path}", PRIVATE_OK)


def test_http_error_status_is_a_fetch_error(server: LoopbackServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_image_bytes(f"{server.base}/missing", PRIVATE_OK)


def test_connection_refused_is_a_fetch_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FetchError, match="could not connect"):
        fetch_image_bytes(f"http://127.0.0.1:{port}/img.png", PRIVATE_OK)


# --- URL shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/img.png",
        "gopher://127.0.0.1:70/",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "//example.com/img.png",
        "img.png",
        "http:///img.png",
        "http://user:secret@127.0.0.1/img.png",
        "http://127.0.0.1:99999/img.png",
    ],
)
def test_bad_schemes_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(URLNotAllowedError):
        fetch_image_bytes(url, PRIVATE_OK, transport=_refuse_transport())
