"""Fetch an image over HTTP(S) without letting the URL reach places it should not.

Rules (all enforced here, for URL queries and URL ingest alike):

* only ``http`` and ``https``;
* the host is resolved once, every address it resolves to is checked, and the connection goes to the
  checked address (no second lookup an attacker could rebind): loopback, private, link-local
  (169.254.169.254 included), multicast, reserved, unspecified and IPv4-mapped forms of them are refused
  unless ``allow_private`` is set;
* redirects are followed by hand, at most ``max_redirects``, each target checked again;
* connect and read timeouts plus an overall deadline (a server that trickles bytes is cut off);
* a byte cap enforced while streaming; an ``image/*`` content type is required.
"""

from __future__ import annotations

import ipaddress
import socket
import time
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

__all__ = ["FetchSettings", "check_address", "fetch_image_bytes", "resolve_and_check"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def check_address(ip: IPAddress, allow_private: bool = False) -> None:
    """Raise :class:`URLNotAllowedError` when ``ip`` is not a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            check_address(mapped, allow_private)
            if allow_private:
                return
    if ip.is_multicast or ip.is_unspecified:
        raise URLNotAllowedError(f"address {ip} is not allowed (multicast or unspecified)")
    if allow_private:
        return
    if not ip.is_global or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_private:
        raise URLNotAllowedError(f"address {ip} is not allowed (private, loopback, link-local or reserved)")


def resolve_and_check(host: str, port: int, allow_private: bool = False) -> list[IPAddress]:
    """Resolve ``host`` and check every address; return them in resolver order."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allow_private)
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
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


def _split(url: str) -> tuple[str, str, int]:
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
    if parts.username or parts.password:
        raise URLNotAllowedError("URLs with credentials are not allowed")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def fetch_image_bytes(
    url: str,
    settings: FetchSettings | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[bytes, str]:
    """Download an image and return ``(body, content_type)``; raise a :class:`FetchError` otherwise."""
    settings = settings or FetchSettings()
    deadline = time.monotonic() + settings.total_timeout
    current = url
    with httpx.Client(transport=transport, follow_redirects=False, trust_env=False) as client:
        for _hop in range(settings.max_redirects + 1):
            scheme, host, port = _split(current)
            addresses = resolve_and_check(host, port, settings.allow_private)
            target = _pin(current, addresses[0])
            response_or_location = _get_once(client, target, host, scheme, settings, deadline)
            if isinstance(response_or_location, str):
                current = urljoin(current, response_or_location)
                continue
            return response_or_location
    raise FetchError(f"too many redirects (more than {settings.max_redirects})")


def _pin(url: str, ip: IPAddress) -> str:
    """Rewrite ``url`` to connect to the checked address ``ip``."""
    parts = urlsplit(url)
    host = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _get_once(
    client: httpx.Client,
    target: str,
    host: str,
    scheme: str,
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
    headers = {"Host": host, "User-Agent": settings.user_agent, "Accept": "image/*"}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    try:
        with client.stream("GET", target, headers=headers, timeout=timeout, extensions=extensions) as resp:
            if resp.is_redirect:
                location = resp.headers.get("location")
                if not location:
                    raise FetchError(f"redirect ({resp.status_code}) without a Location header")
                return location
            if resp.status_code != 200:
                raise FetchError(f"the server answered HTTP {resp.status_code}")
            content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise UnsupportedContentTypeError(
                    f"the URL is not an image (content type {content_type or 'missing'!r})"
                )
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > settings.max_bytes:
                raise FetchTooLargeError(
                    f"the image is {int(declared):,} bytes, over the {settings.max_bytes:,}-byte limit"
                )
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > settings.max_bytes:
                    raise FetchTooLargeError(f"the image is over the {settings.max_bytes:,}-byte limit")
                if time.monotonic() > deadline:
                    raise FetchTimeoutError("timed out fetching the image (server too slow)")
                chunks.append(chunk)
            return b"".join(chunks), content_type
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError("timed out fetching the image") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch the image ({type(exc).__name__}: {exc})") from exc
