"""Issue 14: URL searches are bounded as a whole and cannot take the threads the rest of the service needs.

A loopback server trickles its status line and headers one byte at a time (a read timeout never fires);
the service's URL time limit must still hold, the URL work runs on its own bounded pool, ``/healthz``
keeps answering at once, and a full pool answers 503 with ``Retry-After`` at once. Name resolution is
stubbed (names refused, numeric loopback only) and connections are kept on loopback.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lookalike import Catalog
from lookalike.errors import FetchError
from lookalike.imaging import FetchSettings
from lookalike.service import ServiceSettings, create_app

from .http_server import LoopbackServer, names_refused, serving, serving_app, trickle_headers

LIMIT = 2.0  # the URL time limit in these tests
SLACK = 2.0
SEARCHES = 4


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return names_refused(monkeypatch)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LoopbackServer]:
    with serving({"/slow-headers": trickle_headers(0.25)}) as srv:  # ~100 bytes: 25 s of headers
        yield srv


@pytest.fixture(scope="module")
def catalog_dir(built_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    built_catalog.checkpoint()
    copy = tmp_path_factory.mktemp("url-limits") / "cat"
    shutil.copytree(built_catalog.path, copy)
    return copy


def _serve(catalog_dir: Path, **overrides: Any) -> Any:
    base: dict[str, Any] = {"admin_token": None, "allow_private_urls": True, "url_timeout": LIMIT, "cors_origins": []}
    return serving_app(create_app(catalog_dir, ServiceSettings(**{**base, **overrides})))


@pytest.fixture(scope="module")
def redirect_server() -> Iterator[LoopbackServer]:
    with serving({"/no-location": lambda h: h.send(302, "text/plain", b"moved")}) as srv:
        yield srv


def test_redirect_without_location_is_a_clear_error_in_the_library_and_the_api(
    catalog_dir: Path, redirect_server: LoopbackServer
) -> None:
    url = f"{redirect_server.base}/no-location"
    catalog = Catalog.open(catalog_dir, fetch_settings=FetchSettings(allow_private=True, total_timeout=LIMIT))
    try:
        with pytest.raises(FetchError, match="without a Location"):
            catalog.search(url=url, k=3)
    finally:
        catalog.close()
    settings = ServiceSettings(admin_token=None, allow_private_urls=True, url_timeout=LIMIT, cors_origins=[])
    with TestClient(create_app(catalog_dir, settings)) as client:
        r = client.post("/api/search", json={"url": url})
    assert r.status_code == 400
    assert "without a Location" in r.json()["detail"]


def _url_search(port: int, url: str, out: list[tuple[int, float, httpx.Headers]]) -> None:
    start = time.monotonic()
    r = httpx.post(f"http://127.0.0.1:{port}/api/search", json={"url": url, "k": 3}, timeout=60)
    out.append((r.status_code, time.monotonic() - start, r.headers))


def test_trickled_headers_end_at_the_url_limit_and_healthz_answers_meanwhile(
    catalog_dir: Path, slow_server: LoopbackServer
) -> None:
    url = f"{slow_server.base}/slow-headers"
    with _serve(catalog_dir, url_workers=SEARCHES) as port:
        results: list[tuple[int, float, httpx.Headers]] = []
        threads = [threading.Thread(target=_url_search, args=(port, url, results)) for _ in range(SEARCHES)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(slow_server.hits) < SEARCHES and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(slow_server.hits) == SEARCHES  # every search is now held by the slow server
        health = []
        for _ in range(3):
            start = time.monotonic()
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
            health.append((r.status_code, time.monotonic() - start))
        for t in threads:
            t.join(timeout=60)
    assert all(status == 200 and took < 1.0 for status, took in health), health
    assert len(results) == SEARCHES
    for status, took, _ in results:
        assert status == 504
        assert took < LIMIT + SLACK, f"a URL search took {took:.1f} s against a {LIMIT} s limit"


def test_a_full_url_pool_answers_503_with_retry_after_at_once(catalog_dir: Path, slow_server: LoopbackServer) -> None:
    url = f"{slow_server.base}/slow-headers"
    slow_server.hits.clear()
    with _serve(catalog_dir, url_workers=1) as port:
        held: list[tuple[int, float, httpx.Headers]] = []
        first = threading.Thread(target=_url_search, args=(port, url, held))
        first.start()
        deadline = time.monotonic() + 10
        while not slow_server.hits and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow_server.hits  # the one worker is busy
        refused: list[tuple[int, float, httpx.Headers]] = []
        _url_search(port, url, refused)
        other = httpx.post(f"http://127.0.0.1:{port}/api/search", json={"product_id": "13466", "k": 3}, timeout=30)
        first.join(timeout=60)
    status, took, headers = refused[0]
    assert status == 503 and took < 1.0
    assert int(headers["retry-after"]) >= 1
    assert other.status_code == 200  # searches that fetch nothing are not refused
    assert held[0][0] == 504
