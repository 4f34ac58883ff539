"""Fetch an image over HTTP(S) without letting the URL reach places it should not.

Rules (all enforced here, for URL queries and URL ingest alike):

* only ``http`` and ``https``; no credentials in the URL;
* the host is resolved once (within the deadline), every address it resolves to is checked, and the
  connection goes to the checked address (no second lookup an attacker could rebind): loopback, private,
  link-local, site-local, multicast, reserved and unspecified addresses, judging an IPv6 address that
  embeds an IPv4 one (``::ffff:a.b.c.d``, 6to4, NAT64) by that IPv4 address, are refused unless
  ``allow_private`` is set; multicast, unspecified and link-local addresses (cloud metadata services:
  169.254.169.254, fd00:ec2::254) are refused even then; when a host has several addresses, all are
  checked and they are tried in order;
* redirects are followed by hand, at most ``max_redirects``, each target checked again, each hop on a
  fresh connection;
* one overall deadline (``total_timeout``) over everything: the host name lookup, connecting, the TLS
  handshake, the status line and headers, and the body. Every socket operation is given at most the time
  left, and a watchdog thread shuts the socket down when the deadline passes, so a server that trickles
  its headers (or a TLS handshake) one byte at a time cannot hold a fetch, or the thread running it, past
  the deadline; connect and read timeouts bound each step inside it;
* host name lookups run on their own daemon threads, one per name in flight (a second lookup of a name
  already being resolved waits for that one), at most ``_MAX_LOOKUPS`` at a time, each within the time
  left: a slow name can delay only the fetches of that name;
* a byte cap enforced while streaming, counted on the decoded body (a gzip bomb is cut off as it
  inflates; one layer of gzip or deflate at most); an ``image/*`` content type is required.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from lookalike.errors import (
    FetchError,
    FetchTimeoutError,
    FetchTooLargeError,
    UnsupportedContentTypeError,
    URLNotAllowedError,
)
from lookalike.imaging.deadline import deadline_transport

__all__ = ["FetchSettings", "check_address", "fetch_image_bytes", "resolve_and_check"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Never an image host, whatever allow_private says: link-local (cloud metadata at 169.254.169.254)
# and the IPv6 address of AWS's metadata service.
_ALWAYS_REFUSED = (
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv6Network("fe80::/10"),
    ipaddress.IPv6Network("fd00:ec2::254/128"),
)
# Host name lookups in flight, by (host, port): one daemon thread each, shared by concurrent fetches.
_MAX_LOOKUPS = 64
_lookups: dict[tuple[str, int], Future[list[tuple]]] = {}  # type: ignore[type-arg]
_lookups_lock = threading.Lock()


@dataclass(frozen=True)
class FetchSettings:
    """Limits for fetching an image URL."""

    allow_private: bool = False
    max_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_redirects: int = 3
    user_agent: str = "lookalike/0.1 (+image fetch)"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(ip: IPAddress, allow_private: bool = False) -> None:
    """Raise :class:`URLNotAllowedError` when ``ip`` is not a public unicast address.

    An IPv6 address that embeds an IPv4 address (``::ffff:a.b.c.d``, 6to4, NAT64) is judged by the
    IPv4 address it reaches.
    """
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        check_address(embedded, allow_private)
        return
    if ip.is_multicast or ip.is_unspecified:
        raise URLNotAllowedError(f"address {ip} is not allowed (multicast or unspecified)")
    if any(ip in net for net in _ALWAYS_REFUSED if net.version == ip.version):
        raise URLNotAllowedError(f"address {ip} is not allowed (link-local or cloud metadata)")
    if allow_private:
        return
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    special = ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_private or site_local
    if special or not ip.is_global:
        raise URLNotAllowedError(f"address {ip} is not allowed (private, loopback, link-local or reserved)")


def _system_getaddrinfo(host: str, port: int) -> list[tuple]:  # type: ignore[type-arg]
    """The one place where a host name is resolved (tests replace it, or ``socket.getaddrinfo``)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _lookup(key: tuple[str, int], future: Future[list[tuple]]) -> None:  # type: ignore[type-arg]
    try:
        result = _system_getaddrinfo(*key)
    except BaseException as exc:  # handed to every waiter
        with _lookups_lock:
            _lookups.pop(key, None)
        future.set_exception(exc)
    else:
        with _lookups_lock:
            _lookups.pop(key, None)
        future.set_result(result)


def _getaddrinfo(host: str, port: int, timeout: float) -> list[tuple]:  # type: ignore[type-arg]
    """``socket.getaddrinfo`` with a time limit (the system resolver has none of its own).

    Each name being resolved has its own daemon thread, and a fetch of a name already being resolved
    waits for that lookup: slow names hold one thread each (at most ``_MAX_LOOKUPS`` in all) and never
    delay the lookups of other names. A lookup that outlives its caller finishes on its own thread.
    """
    key = (host, port)
    with _lookups_lock:
        future = _lookups.get(key)
        if future is None:
            if len(_lookups) >= _MAX_LOOKUPS:
                raise FetchTimeoutError("too many host name lookups in progress; try again later")
            future = Future()
            _lookups[key] = future
            threading.Thread(target=_lookup, args=(key, future), name="lookalike-dns", daemon=True).start()
    try:
        return future.result(timeout=max(timeout, 0.001))
    except FutureTimeout as exc:
        raise FetchTimeoutError(f"timed out resolving host {host!r}") from exc


def resolve_and_check(host: str, port: int, allow_private: bool = False, timeout: float = 5.0) -> list[IPAddress]:
    """Resolve ``host`` and check every address; return them in resolver order."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allow_private)
        return [literal]
    try:
        infos = _getaddrinfo(host, port, timeout)
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"host {host!r} has no address")
    for ip in addresses:  # every address must pass, not just the first
        check_address(ip, allow_private)
    return addresses


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as in the URL, lower case, no brackets
    port: int
    host_header: str  # ASCII (IDNA) host, with brackets and port where needed
    sni: str | None  # the name to send in TLS SNI (None for an IP literal)


def _split(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise URLNotAllowedError(f"malformed URL {url!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise URLNotAllowedError(f"URL scheme {scheme or '(none)'!r} is not allowed; use http or https")
    if not parts.hostname:
        raise URLNotAllowedError(f"URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise URLNotAllowedError("URLs with credentials are not allowed")
    host = parts.hostname
    sni: str | None = None
    try:
        if ":" in host:
            ascii_host = f"[{ipaddress.IPv6Address(host)}]"
        else:
            ascii_host = host.encode("idna").decode("ascii")
            sni = None if _is_ip(ascii_host) else ascii_host
    except (UnicodeError, ValueError) as exc:
        raise URLNotAllowedError(f"malformed host name {host!r}") from exc
    default_port = 443 if scheme == "https" else 80
    header = ascii_host if port is None or port == default_port else f"{ascii_host}:{port}"
    return _Target(scheme, host, port or default_port, header, sni)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def fetch_image_bytes(
    url: str,
    settings: FetchSettings | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[bytes, str]:
    """Download an image and return ``(body, content_type)``; raise a :class:`FetchError` otherwise."""
    settings = settings or FetchSettings()
    deadline = time.monotonic() + settings.total_timeout
    current = url
    for _hop in range(settings.max_redirects + 1):
        target = _split(current)
        remaining = min(settings.connect_timeout, deadline - time.monotonic())
        if remaining <= 0:
            raise FetchTimeoutError("timed out fetching the image")
        addresses = resolve_and_check(target.host, target.port, settings.allow_private, timeout=remaining)
        result = _get_first(current, addresses, target, settings, deadline, transport)
        if isinstance(result, str):
            current = urljoin(current, result)
            continue
        return result
    raise FetchError(f"too many redirects (more than {settings.max_redirects})")


class _ConnectFailed(FetchError):
    """No connection to one address (the next one may work)."""


def _get_first(
    url: str,
    addresses: list[IPAddress],
    target: _Target,
    settings: FetchSettings,
    deadline: float,
    transport: httpx.BaseTransport | None,
) -> tuple[bytes, str] | str:
    """GET ``url`` from the first of the checked ``addresses`` that accepts a connection."""
    failure: _ConnectFailed | None = None
    for ip in addresses:
        # A fresh client per address and hop: a connection made for one host is never reused for another.
        hop_transport = transport if transport is not None else deadline_transport(deadline)
        with httpx.Client(transport=hop_transport, follow_redirects=False, trust_env=False) as client:
            try:
                return _get_once(client, _pin(url, ip, target.port), target, settings, deadline)
            except _ConnectFailed as exc:
                failure = exc
    assert failure is not None
    raise FetchError(str(failure)) from failure


def _pin(url: str, ip: IPAddress, port: int) -> str:
    """Rewrite ``url`` to connect to the checked address ``ip``."""
    parts = urlsplit(url)
    host = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


def _decoded(raw: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Undo one layer of gzip/deflate without ever inflating more than ``limit + 1`` bytes."""
    if encoding in ("", "identity"):
        yield from raw
        return
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise FetchError(f"unsupported content encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits)
    produced = 0
    try:
        for chunk in raw:
            out = inflater.decompress(chunk, limit - produced + 1)
            produced += len(out)
            yield out
            if produced > limit:
                return
        yield inflater.flush()
    except zlib.error as exc:
        raise FetchError(f"the image body is not valid {encoding} data") from exc


def _get_once(
    client: httpx.Client,
    pinned: str,
    target: _Target,
    settings: FetchSettings,
    deadline: float,
) -> tuple[bytes, str] | str:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimeoutError("timed out fetching the image")
    timeout = httpx.Timeout(
        connect=min(settings.connect_timeout, remaining),
        read=min(settings.read_timeout, remaining),
        write=min(settings.read_timeout, remaining),
        pool=min(settings.connect_timeout, remaining),
    )
    headers = {
        "Host": target.host_header,
        "User-Agent": settings.user_agent,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    extensions = {"sni_hostname": target.sni} if target.scheme == "https" and target.sni else {}
    try:
        with client.stream("GET", pinned, headers=headers, timeout=timeout, extensions=extensions) as resp:
            if resp.is_redirect:
                location = resp.headers.get("location", "").strip()
                if not location:
                    raise FetchError(f"the server answered HTTP {resp.status_code} (a redirect) without a Location")
                return location
            if resp.status_code != 200:
                raise FetchError(f"the server answered HTTP {resp.status_code}")
            content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise UnsupportedContentTypeError(
                    f"the URL is not an image (content type {content_type or 'missing'!r})"
                )
            declared = resp.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > settings.max_bytes:
                raise FetchTooLargeError(
                    f"the image is {int(declared):,} bytes, over the {settings.max_bytes:,}-byte limit"
                )
            encoding = resp.headers.get("content-encoding", "").strip().lower()
            chunks: list[bytes] = []
            total = 0
            for chunk in _decoded(resp.iter_raw(), encoding, settings.max_bytes):
                total += len(chunk)
                if total > settings.max_bytes:
                    raise FetchTooLargeError(f"the image is over the {settings.max_bytes:,}-byte limit")
                if time.monotonic() > deadline:
                    raise FetchTimeoutError("timed out fetching the image (server too slow)")
                chunks.append(chunk)
            return b"".join(chunks), content_type
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError("timed out fetching the image") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        if time.monotonic() >= deadline:  # the watchdog shut the socket down
            raise FetchTimeoutError("timed out fetching the image (server too slow)") from exc
        if isinstance(exc, httpx.ConnectError):
            raise _ConnectFailed(f"could not connect to {target.host_header} ({exc})") from exc
        raise FetchError(f"could not fetch the image ({type(exc).__name__}: {exc})") from exc
