"""Issue #6, the service side: the awkward-image corpus (tests/data/bad) through the REST API and the
CLI, and the access rules: admin token, CORS, the body cap over real sockets, path traversal, offline /docs.

The app serves a copy of the session's 16-product test catalogue, through FastAPI's TestClient and, where
the bytes on the wire matter (huge Content-Length, chunked bodies, un-normalised paths), through uvicorn
on a loopback port driven with raw sockets.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike import Catalog
from lookalike import errors as lk_errors
from lookalike.imaging import DecodeLimits, open_image_bytes
from lookalike.service import ServiceSettings, create_app
from lookalike.service.app import FORM_OVERHEAD_BYTES

from .conftest import PRODUCTS_DIR
from .conftest import run_cli as _run_cli
from .http_server import serving_app

BAD = Path(__file__).parent / "data" / "bad"
CASES: list[dict[str, Any]] = json.loads((BAD / "cases.json").read_text())
OK_CASES = [c for c in CASES if c["outcome"] == "ok"]
ERROR_CASES = [c for c in CASES if c["outcome"] != "ok"]
STATUS = {"ImageDecodeError": 400, "UnsupportedImageError": 415, "ImageTooLargeError": 413}
TOKEN = "reliability-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LIVE_UPLOAD_CAP = 100_000  # the live server's image cap; its body cap adds FORM_OVERHEAD_BYTES
ROOT = Path(__file__).resolve().parents[1]


def _settings(**overrides: Any) -> ServiceSettings:
    base: dict[str, Any] = {
        "admin_token": TOKEN,
        "allow_private_urls": False,
        "max_upload_bytes": 2_000_000,
        "max_pixels": 8_000_000,
        "cors_origins": [],
        "default_k": 5,
        "max_k": 50,
        "url_timeout": 5.0,
    }
    return ServiceSettings(**{**base, **overrides})


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog_dir(built_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the session's 16-product catalogue (efficientnet-lite0)."""
    built_catalog.checkpoint()
    copy = tmp_path_factory.mktemp("reliability") / "cat"
    shutil.copytree(built_catalog.path, copy)
    return copy


@pytest.fixture(scope="module")
def client(catalog_dir: Path) -> Iterator[TestClient]:
    """Admin token configured; requests carry no token unless a test adds one."""
    with TestClient(create_app(catalog_dir, _settings())) as c:
        yield c


@pytest.fixture(scope="module")
def live(catalog_dir: Path) -> Iterator[int]:
    """uvicorn on a loopback port (small upload cap) in a background thread; yields the port."""
    app = create_app(catalog_dir, _settings(max_upload_bytes=LIVE_UPLOAD_CAP))
    with serving_app(app, timeout_keep_alive=2) as port:
        yield port


def _catalog(client: TestClient) -> Catalog:
    return client.app.state.catalog  # type: ignore[attr-defined,no-any-return]


def _state(client: TestClient) -> tuple[int, list[str], set[str], bool]:
    """Product count, ids, stored picture files and the index/store check: what must not change."""
    cat = _catalog(client)
    files = {str(p.relative_to(cat.images_dir)) for p in cat.images_dir.rglob("*") if p.is_file()}
    return len(cat), sorted(cat.store.iter_ids()), files, bool(cat.verify()["ok"])


def _assert_error(response: Any, status: int, contains: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert contains.lower() in body["detail"].lower(), body["detail"]
    return body


def _library_error(catalog: Catalog, data: bytes) -> lk_errors.LookalikeError:
    """What the library says about the same bytes (the API must say the same, with the mapped status)."""
    try:
        catalog.search(data, k=3)
    except lk_errors.LookalikeError as exc:
        return exc
    raise AssertionError("the library accepted the image")


def _raw_http(port: int, request: bytes, timeout: float = 15.0) -> tuple[int, bytes]:
    """Send ``request`` byte for byte (no client-side URL normalisation); the status and the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    assert match, reply[:200]
    return int(match.group(1)), reply


def _get(port: int, target: str) -> tuple[int, bytes]:
    return _raw_http(port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())


# --- the awkward-image corpus through the API -------------------------------------------------------
def test_the_api_sees_the_whole_corpus() -> None:
    assert len(CASES) == 31 and len(OK_CASES) == 19 and len(ERROR_CASES) == 12
    assert {c["outcome"] for c in ERROR_CASES} == set(STATUS)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_image_uploaded_to_search_gets_hits_or_a_clear_4xx(client: TestClient, case: dict) -> None:
    data = (BAD / case["file"]).read_bytes()
    r = client.post("/api/search", files={"image": (case["file"], data, "application/octet-stream")}, data={"k": 5})
    if case["outcome"] == "ok":
        assert r.status_code == 200, r.text
        body = r.json()
        ids = set(_catalog(client).store.iter_ids())
        assert body["count"] == len(body["hits"]) == 5
        assert all(h["id"] in ids and h["product"]["id"] == h["id"] for h in body["hits"])
        assert body["query"] == {"type": "image", "value": case["file"]}
    else:
        expected = _library_error(_catalog(client), data)
        assert type(expected).__name__ == case["outcome"]
        body = _assert_error(r, STATUS[case["outcome"]])
        assert body["detail"] == str(expected)  # the library's own message, nothing lost or leaked


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["file"] for c in ERROR_CASES])
def test_corpus_error_as_a_product_picture_is_refused_and_changes_nothing(
    client: TestClient, tiny_id: str, case: dict
) -> None:
    data = (BAD / case["file"]).read_bytes()
    before = _state(client)
    old_picture = client.get(f"/api/products/{tiny_id}/image").content
    status = STATUS[case["outcome"]]
    new = client.post("/api/products", data={"id": f"new-{case['file']}"}, files={"image": (case["file"], data)},
                      headers=ADMIN)  # fmt: skip
    _assert_error(new, status)
    update = client.post("/api/products", data={"id": tiny_id, "title": "changed"},
                         files={"image": (case["file"], data)}, headers=ADMIN)  # fmt: skip
    _assert_error(update, status)
    assert _state(client) == before
    assert client.get(f"/api/products/new-{case['file']}").status_code == 404
    assert client.get(f"/api/products/{tiny_id}").json()["title"] != "changed"
    assert client.get(f"/api/products/{tiny_id}/image").content == old_picture


@pytest.fixture(scope="module")
def tiny_id(client: TestClient) -> str:
    return str(client.get("/api/products", params={"limit": 1}).json()["items"][0]["id"])


@pytest.mark.parametrize("case", OK_CASES, ids=[c["file"] for c in OK_CASES])
def test_supported_corpus_image_can_be_added_found_and_deleted(client: TestClient, case: dict) -> None:
    data = (BAD / case["file"]).read_bytes()
    pid = f"odd-{case['file']}"
    r = client.post("/api/products", data={"id": pid, "title": case["kind"]}, files={"image": (case["file"], data)},
                    headers=ADMIN)  # fmt: skip
    assert r.status_code == 201, r.text
    assert client.get(f"/api/products/{pid}/image").status_code == 200
    hits = client.post("/api/search", files={"image": (case["file"], data)}, data={"k": 50}).json()["hits"]
    assert pid in [h["id"] for h in hits if h["score"] > 0.999]  # found by its own picture
    assert client.delete(f"/api/products/{pid}", headers=ADMIN).status_code == 200
    assert client.get(f"/api/products/{pid}").status_code == 404
    assert _catalog(client).verify()["ok"]


# --- the corpus through the CLI ---------------------------------------------------------------------


def test_cli_ingest_of_the_whole_corpus_names_each_skip_and_ingests_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lite0: Any
) -> None:
    good = [PRODUCTS_DIR / "images" / name for name in ("13466.jpg", "17831.jpg")]
    lines = ["id,title,image"] + [f"good-{i},good,{p}" for i, p in enumerate(good)]
    lines += [f"{c['file']},{c['kind']},{BAD / c['file']}" for c in CASES]
    (tmp_path / "corpus.csv").write_text("\n".join(lines) + "\n")
    catalog = tmp_path / "cat"

    code, out, err = _run_cli(capsys, "ingest", catalog, "--csv", tmp_path / "corpus.csv", "--batch-size", "8")

    assert code == 0, err
    added = len(good) + len(OK_CASES)
    assert f"{added} added, 0 updated, 0 unchanged, {len(ERROR_CASES)} failed" in out
    assert f"{added} products" in out
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(ERROR_CASES)
    size = lite0.preprocess_cfg.size
    for case in ERROR_CASES:  # "skipped FILE (PATH): REASON", the reason being the decoder's own message
        with pytest.raises(lk_errors.ImageError) as caught:
            open_image_bytes((BAD / case["file"]).read_bytes(), DecodeLimits(), draft_size=size, name=case["file"])
        assert f"skipped {case['file']} ({BAD / case['file']}): {caught.value}" in skipped
    with Catalog.open(catalog) as cat:
        assert sorted(cat.store.iter_ids()) == sorted(["good-0", "good-1", *(c["file"] for c in OK_CASES)])
        assert cat.verify()["ok"]
        assert {e["id"] for e in cat.store.errors()} == {c["file"] for c in ERROR_CASES}


# --- access: admin token, CORS ----------------------------------------------------------------------
def _mutating_operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    ops = [(m, p) for p, item in paths.items() for m in item if m in ("post", "put", "patch", "delete")]
    reads = {("post", "/api/search"), ("post", "/api/garments")}  # a search and a look at a photo change nothing
    return [(m, p) for m, p in ops if (m, p) not in reads]


def test_every_mutating_route_needs_the_admin_token(client: TestClient, tiny_id: str) -> None:
    ops = _mutating_operations(client)
    assert {("post", "/api/products"), ("delete", "/api/products/{product_id}")} <= set(ops)
    before = _state(client)
    for method, path in ops:
        url = path.replace("{product_id}", tiny_id).replace("{position}", "0")
        for headers in ({}, {"Authorization": "Bearer nope"}, {"X-Admin-Token": TOKEN[:-1]}):
            r = client.request(method, url, headers=headers, data={"id": tiny_id, "title": "pwned"})
            _assert_error(r, 401)
    assert _state(client) == before
    assert client.get(f"/api/products/{tiny_id}").json()["title"] != "pwned"


def test_admin_token_is_compared_in_constant_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from lookalike.service import deps

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    _assert_error(client.delete("/api/products/no-such-id", headers={"X-Admin-Token": "guess"}), 401)
    _assert_error(client.delete("/api/products/no-such-id", headers=ADMIN), 404)  # past the check
    assert calls == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_cors_is_off_by_default_and_on_when_lookalike_cors_origins_is_set(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = {"Origin": "https://shop.example"}
    monkeypatch.delenv("LOOKALIKE_CORS_ORIGINS", raising=False)
    off = TestClient(create_app(catalog_dir)).get("/openapi.json", headers=origin)  # settings from the env
    assert off.status_code == 200 and "access-control-allow-origin" not in off.headers

    monkeypatch.setenv("LOOKALIKE_CORS_ORIGINS", "https://shop.example,https://b.example")
    on = TestClient(create_app(catalog_dir))
    assert on.get("/openapi.json", headers=origin).headers["access-control-allow-origin"] == "https://shop.example"
    other = on.get("/openapi.json", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


# --- access: the body cap over a real socket ---------------------------------------------------------
def _post_head(length: str, extra: str = "", path: str = "/api/search", ctype: str = "multipart/form-data") -> bytes:
    boundary = "; boundary=b" if ctype.startswith("multipart/") else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}{boundary}\r\n{length}{extra}\r\n"
    ).encode()


def test_huge_content_length_is_refused_before_the_body_is_read(live: int) -> None:
    start = time.monotonic()
    status, reply = _raw_http(live, _post_head("Content-Length: 1000000000000\r\n") + b"--b\r\n" + b"x" * 1000)
    assert status == 413 and b"request body is over" in reply
    assert b"connection: close" in reply.lower()
    assert time.monotonic() - start < 5.0  # answered at once, not after a terabyte


@pytest.mark.parametrize(
    ("path", "ctype", "status", "detail"),
    [
        ("/api/search", "multipart/form-data", 413, b"request body is over"),  # read up to the cap, then cut
        ("/api/products", "multipart/form-data", 401, b"admin token required"),  # refused before reading
        ("/api/search", "text/plain", 415, b"unsupported request content type"),  # refused before reading
    ],
)
def test_endless_chunked_body_is_cut_off_not_drained(
    live: int, path: str, ctype: str, status: int, detail: bytes
) -> None:
    """The answer comes while the body still streams in, and the server hangs up instead of reading on."""
    chunk = b"\xff" * 65536
    total = 64 * 1024 * 1024  # 400 times the cap: far more than the kernel's socket buffers hold
    sent = 0
    sender_error: list[BaseException] = []
    sock = socket.create_connection(("127.0.0.1", live), timeout=20)

    def send() -> None:
        nonlocal sent
        try:
            sock.sendall(_post_head("Transfer-Encoding: chunked\r\n", path=path, ctype=ctype))
            part = b"--b\r\nContent-Disposition: form-data; name=image; filename=a.jpg\r\n\r\n"
            sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            while sent < total:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError as exc:  # the server hung up on us, as it should
            sender_error.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    reply = b""
    try:
        while chunk_in := sock.recv(65536):
            reply += chunk_in
    except OSError:
        pass
    thread.join(timeout=30)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 %d" % status), reply[:200]
    assert detail in reply and b"connection: close" in reply.lower()
    assert sender_error and sent < total // 4, (sent, sender_error)  # the rest was never read
    if status == 413:
        assert sent >= LIVE_UPLOAD_CAP + FORM_OVERHEAD_BYTES - len(chunk)  # cut at the cap, not before
    assert time.monotonic() - start < 15


def test_upload_under_the_cap_still_works_over_the_socket(live: int) -> None:
    photo = (PRODUCTS_DIR / "images" / "13466.jpg").read_bytes()
    assert len(photo) < LIVE_UPLOAD_CAP
    body = (
        b"--b\r\nContent-Disposition: form-data; name=image; filename=a.jpg\r\n"
        b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--b--\r\n"
    )
    status, reply = _raw_http(live, _post_head(f"Content-Length: {len(body)}\r\n", "Connection: close\r\n") + body)
    assert status == 200, reply[:300]
    hits = json.loads(reply.partition(b"\r\n\r\n")[2])["hits"]
    assert hits[0]["id"] == "13466"


# --- access: nothing outside the catalogue is ever served ---------------------------------------------
SECRET_MARKERS = (b"root:x:0:0", b"[project]", b'name = "lookalike"', b"SQLite format 3", b'"extractor"')

IMAGE_TRAVERSALS = [
    "/api/products/..%2F..%2Fetc%2Fpasswd/image",
    "/api/products/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/api/products/%2e%2e%2f%2e%2e%2fetc%2fpasswd/image",
    "/api/products/%2E%2E%2F%2E%2E%2Fpyproject.toml/image",
    "/api/products/..%252F..%252Fetc%252Fpasswd/image",
    "/api/products/..%5C..%5Cetc%5Cpasswd/image",
    "/api/products/%2Fetc%2Fpasswd/image",
    "/api/products/..%2Fmanifest.json/image",
    "/api/products/..%2F..%2Fproducts.db/image",
    "/api/products/..%2F..%2Fetc%2Fpasswd%00.jpg/image",
    "/api/products/../../../../etc/passwd/image",
    "/api/products/..;/..;/etc/passwd/image",
]
STATIC_TRAVERSALS = [
    "/static/../../pyproject.toml",
    "/static/../../../../pyproject.toml",
    "/static/..%2F..%2F..%2F..%2Fpyproject.toml",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%5C..%5C..%5C..%5Cpyproject.toml",
    "/static/....//....//....//....//pyproject.toml",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/../../../../../../../../etc/passwd",
    "/docs-assets/../../../../../../pyproject.toml",
    "/docs-assets/..%2F..%2F..%2F..%2F..%2F..%2Fpyproject.toml",
]


@pytest.mark.parametrize("target", IMAGE_TRAVERSALS + STATIC_TRAVERSALS)
def test_traversal_paths_never_serve_a_file_from_outside(live: int, target: str) -> None:
    status, reply = _get(live, target)
    assert status in (400, 404), (status, reply[:300])
    assert not any(marker in reply for marker in SECRET_MARKERS), reply[:300]


def test_the_traversal_targets_exist_so_the_test_can_fail(live: int) -> None:
    assert b"[project]" in (ROOT / "pyproject.toml").read_bytes()
    assert _get(live, "/static/favicon.svg")[0] == 200  # the same route does serve its own files


@pytest.fixture()
def tampered(client: TestClient, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A product of the app's catalogue whose stored image_file the test overwrites in SQLite."""
    cat = _catalog(client)
    pid = "tamper-me"
    r = client.post("/api/products", data={"id": pid}, headers=ADMIN,
                    files={"image": ("t.jpg", (PRODUCTS_DIR / "images" / "17831.jpg").read_bytes())})  # fmt: skip
    assert r.status_code == 201, r.text
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0 TOP SECRET")
    yield pid, secret
    client.delete(f"/api/products/{pid}", headers=ADMIN)
    assert cat.verify()["ok"]


def _set_image_file(client: TestClient, pid: str, value: str) -> None:
    cat = _catalog(client)
    with sqlite3.connect(cat.path / "products.db") as db:
        assert db.execute("UPDATE products SET image_file = ? WHERE id = ?", (value, pid)).rowcount == 1


def test_tampered_image_file_never_serves_the_file_it_points_to(client: TestClient, tampered: tuple) -> None:
    pid, secret = tampered
    cat = _catalog(client)
    assert client.get(f"/api/products/{pid}/image").status_code == 200  # untampered: served
    link = cat.images_dir / "zz" / "link.jpg"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(secret)
    rel_secret = Path("..", "..", *secret.relative_to(secret.anchor).parts)
    try:
        for value in (
            str(secret),  # absolute
            "/etc/passwd",
            "../" * 12 + "etc/passwd",
            str(Path("..") / ".." / rel_secret),
            "../products.db",
            "../manifest.json",
            "zz/link.jpg",  # inside the folder, but a symlink to the outside
            "",
        ):
            _set_image_file(client, pid, value)
            r = client.get(f"/api/products/{pid}/image")
            _assert_error(r, 404)
            assert not any(marker in r.content for marker in (*SECRET_MARKERS, b"TOP SECRET")), value
    finally:
        link.unlink()


def test_deleting_a_product_with_a_tampered_image_file_deletes_nothing_outside(
    client: TestClient, tampered: tuple, catalog_dir: Path
) -> None:
    pid, secret = tampered
    cat = _catalog(client)
    escape = Path(*[".."] * len(cat.images_dir.resolve().parts)) / secret.resolve().relative_to("/")
    assert (cat.images_dir / escape).resolve() == secret.resolve()
    _set_image_file(client, pid, str(escape))
    assert client.delete(f"/api/products/{pid}", headers=ADMIN).status_code == 200
    assert secret.read_bytes() == b"root:x:0:0 TOP SECRET"
    for name in ("manifest.json", "products.db"):
        assert (catalog_dir / name).is_file()


# --- /docs works offline ----------------------------------------------------------------------------
def test_docs_page_loads_swagger_ui_from_the_app_itself(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text) + re.findall(r"url: '([^']+)'", r.text)
    assert len(refs) >= 4, refs
    assert not [u for u in refs if "//" in u], refs  # nothing from another host (CDN)
    assert "cdn." not in r.text and "jsdelivr" not in r.text
    kinds = {}
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        kinds[ref.rsplit(".", 1)[-1]] = asset
    assert "javascript" in kinds["js"].headers["content-type"] and b"SwaggerUIBundle" in kinds["js"].content
    assert kinds["css"].headers["content-type"].startswith("text/css") and b".swagger-ui" in kinds["css"].content
    assert kinds["json"].json()["openapi"].startswith("3.1")
    assert re.search(rb'version:"5\.\d+\.\d+"|"5\.\d+\.\d+"', kinds["js"].content)  # 5.x reads OpenAPI 3.1


def test_docs_page_renders_in_chromium_with_the_network_cut_off(live: int) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    base = f"http://127.0.0.1:{live}"
    outside: list[str] = []
    errors: list[str] = []
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=args, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)

            def only_loopback(route: Any) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock-summary-path")
            paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.innerText)")
        finally:
            browser.close()
    assert outside == [] and errors == []
    assert {"/api/search", "/api/products", "/healthz"} <= {p.replace("\u200b", "") for p in paths}
