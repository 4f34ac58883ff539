"""The web service: every route and error status, through FastAPI's TestClient (offline).

One tiny catalogue (16 demo products) is built per session and served by three apps: a read-only one
(no admin token), one with small upload limits, and an admin one (token set, private URLs allowed) over
a copy that tests may change.
"""

from __future__ import annotations

import csv
import io
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps, features

from lookalike.colour import family_of
from lookalike.errors import InvalidProductError
from lookalike.product import Product
from lookalike.service import ServiceSettings, create_app
from lookalike.service.middleware import BodySizeLimitMiddleware

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
TYPES = {"Tshirts": 4, "Casual Shoes": 3, "Jeans": 3, "Watches": 3, "Handbags": 3}
TOKEN = "s3cret-admin-token"


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_rows() -> list[dict[str, str]]:
    """16 demo products (first few of five article types), each with a price."""
    with (DEMO / "products.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    picked: list[dict[str, str]] = []
    for kind, n in TYPES.items():
        picked += [r for r in rows if r["article_type"] == kind][:n]
    for i, row in enumerate(picked):
        row["price"] = f"{10 + 5 * i:.2f}"
    return picked


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory, tiny_rows: list[dict[str, str]]) -> Path:
    from lookalike.catalog import Catalog
    from lookalike.sources import read_csv

    src = tmp_path_factory.mktemp("tiny-src")
    (src / "images").mkdir()
    fields = ["id", "title", "brand", "gender", "category", "subcategory", "article_type", "colour", "price", "image"]
    with (src / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in tiny_rows:
            shutil.copy(DEMO / row["image"], src / row["image"])
            writer.writerow(row)
    path = tmp_path_factory.mktemp("catalogs") / "tiny"
    with Catalog.create(path, extractor="efficientnet-lite0") as cat:  # score thresholds below are for it
        report = cat.ingest(read_csv(src / "products.csv"))
    assert report.added == len(tiny_rows) and not report.failed
    return path


def _settings(**overrides: Any) -> ServiceSettings:
    base: dict[str, Any] = {
        "admin_token": None,
        "allow_private_urls": False,
        "max_upload_bytes": 2_000_000,
        "max_pixels": 8_000_000,
        "cors_origins": [],
        "default_k": 5,
        "max_k": 20,
        "url_timeout": 5.0,
    }
    return ServiceSettings(**{**base, **overrides})


@pytest.fixture(scope="session")
def client(tiny_catalog: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_catalog, _settings())) as c:
        yield c


@pytest.fixture(scope="session")
def small_client(tiny_catalog: Path) -> Iterator[TestClient]:
    """Small caps: 150 kB uploads, 500,000 pixels."""
    with TestClient(create_app(tiny_catalog, _settings(max_upload_bytes=150_000, max_pixels=500_000))) as c:
        yield c


@pytest.fixture(scope="session")
def admin(tiny_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Admin token set and private URLs allowed, over a copy of the catalogue (tests may change it)."""
    copy = tmp_path_factory.mktemp("catalogs") / "admin"
    shutil.copytree(tiny_catalog, copy)
    app = create_app(copy, _settings(admin_token=TOKEN, allow_private_urls=True))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


class _ImageServer(ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, tuple[str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _ImageServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        ctype, body = self.server.files.get(self.path, ("text/plain", b"not found"))
        self.send_response(200 if self.path in self.server.files else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_server(tiny_rows: list[dict[str, str]]) -> Iterator[str]:
    """A loopback HTTP server with one product picture (/shirt.jpg) and an HTML page (/page)."""
    srv = _ImageServer(("127.0.0.1", 0), _Handler)
    srv.files = {
        "/shirt.jpg": ("image/jpeg", _image_bytes(tiny_rows[0])),
        "/page": ("text/html", b"<html></html>"),
    }
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


# --- helpers ----------------------------------------------------------------------------------------
def _image_bytes(row: dict[str, str]) -> bytes:
    return (DEMO / row["image"]).read_bytes()


def _picture(row: dict[str, str]) -> Image.Image:
    return Image.open(DEMO / row["image"]).convert("RGB")


def _encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _upload(client: TestClient, data: bytes, name: str = "photo.jpg", **fields: Any) -> Any:
    return client.post("/api/search", files={"image": (name, data, "application/octet-stream")}, data=fields)


def _top(response: Any) -> tuple[str, float]:
    assert response.status_code == 200, response.text
    hit = response.json()["hits"][0]
    return hit["id"], hit["score"]


def _assert_error(response: Any, status: int, contains: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert contains.lower() in body["detail"].lower()


# --- service ----------------------------------------------------------------------------------------
def test_model_is_loaded_once_at_startup(client: TestClient) -> None:
    catalog = client.app.state.catalog  # type: ignore[attr-defined]
    assert catalog._extractor is not None  # loaded in the lifespan, before any request


def test_healthz(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body.pop("model_sha256")  # which weights serve (issue 26)
    assert body == {"status": "ok", "products": len(tiny_rows), "extractor": "efficientnet-lite0", "generation": 0}


def test_openapi_documents_every_route_and_request_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path, methods in {
        "/api/search": {"post"},
        "/api/products": {"get", "post"},
        "/api/products/{product_id}": {"get", "delete"},
        "/api/products/{product_id}/similar": {"get"},
        "/api/products/{product_id}/image": {"get"},
        "/api/facets": {"get"},
        "/healthz": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    search_body = paths["/api/search"]["post"]["requestBody"]["content"]
    assert set(search_body) == {"multipart/form-data", "application/json"}
    components = schema["components"]["schemas"]
    for name in ("SearchUpload", "SearchRequest", "ProductForm", "SearchResponse", "ErrorOut", "FacetsOut"):
        assert name in components
    assert components["SearchUpload"]["properties"]["image"]["format"] == "binary"
    assert "413" in paths["/api/search"]["post"]["responses"]


def test_docs_page_is_served(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()


def test_web_page_and_its_assets_are_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert 'capture="environment"' in r.text and 'id="dropzone"' in r.text
    for asset, ctype in (("app.js", "javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg")):
        a = client.get(f"/static/{asset}")
        assert a.status_code == 200 and ctype in a.headers["content-type"], asset


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    _assert_error(client.get("/api/nothing-here"), 404)


def test_cors_is_off_unless_configured(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_configured_origins_only(tiny_catalog: Path) -> None:
    app = create_app(tiny_catalog, _settings(cors_origins="https://shop.example, https://b.example"))
    c = TestClient(app)  # preflight needs no catalogue: no lifespan
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = c.options("/api/search", headers={"Origin": "https://b.example", **ask})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://b.example"
    bad = c.options("/api/search", headers={"Origin": "https://evil.example", **ask})
    assert "access-control-allow-origin" not in bad.headers


def test_settings_come_from_lookalike_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_ADMIN_TOKEN", "t0k")
    monkeypatch.setenv("LOOKALIKE_MAX_UPLOAD_BYTES", "12345")
    monkeypatch.setenv("LOOKALIKE_MAX_PIXELS", "1000")
    monkeypatch.setenv("LOOKALIKE_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("LOOKALIKE_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("LOOKALIKE_DEFAULT_K", "7")
    monkeypatch.setenv("LOOKALIKE_MAX_K", "9")
    s = ServiceSettings()
    assert s.admin_token_value == "t0k"
    assert (s.max_upload_bytes, s.max_pixels, s.allow_private_urls) == (12345, 1000, True)
    assert s.cors_origin_list == ["https://a.example", "https://b.example"]
    assert (s.default_k, s.max_k) == (7, 9)
    assert "t0k" not in repr(s)


def test_settings_refuse_default_k_over_max_k() -> None:
    with pytest.raises(ValueError, match="default_k"):
        ServiceSettings(default_k=50, max_k=10)


# --- search by upload -------------------------------------------------------------------------------
def test_upload_search_ranks_the_same_product_first(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    row = tiny_rows[5]
    r = _upload(client, _image_bytes(row), k="4")
    body = r.json()
    assert r.status_code == 200
    assert body["query"] == {"type": "image", "value": "photo.jpg"}
    assert body["k"] == 4 and body["count"] == 4 and len(body["hits"]) == 4
    first = body["hits"][0]
    assert first["id"] == row["id"] and first["score"] > 0.99 and first["rank"] == 1
    assert first["product"]["title"] == row["title"] and first["product"]["price"] == float(row["price"])
    assert first["product"]["image_url"] == f"/api/products/{row['id']}/image"
    assert "image" not in first["product"]  # the server-side source path is never shown
    keys = [h["rank_score"] for h in body["hits"]]  # similarity + weighted colour match
    assert keys == sorted(keys, reverse=True)
    assert body["colour"]["source"] == "detected" and body["colour"]["detected"] == body["colour"]["ranked_by"]


def test_an_upload_is_also_searched_as_its_mirror_image_unless_turned_off(
    client: TestClient, tiny_catalog: Path, tiny_rows: list[dict[str, str]]
) -> None:
    row = tiny_rows[5]
    mirrored = _encode(ImageOps.mirror(Image.open(DEMO / row["image"]).convert("RGB")), "PNG")
    assert _top(_upload(client, mirrored, "mirrored.png")) == (row["id"], pytest.approx(1.0, abs=1e-3))
    with TestClient(create_app(tiny_catalog, _settings(query_flip=False))) as plain:
        _, score = _top(_upload(plain, mirrored, "mirrored.png"))
    assert score < 0.999  # the picture alone: its mirror image is another picture


def test_upload_search_uses_the_default_k(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = _upload(client, _image_bytes(tiny_rows[0]))
    assert r.json()["k"] == 5 and len(r.json()["hits"]) == 5


def test_upload_search_filters(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = _upload(client, _image_bytes(tiny_rows[0]), k="20", article_type="jeans")  # case-insensitive
    hits = r.json()["hits"]
    assert len(hits) == TYPES["Jeans"]
    assert {h["product"]["article_type"] for h in hits} == {"Jeans"}


def test_upload_search_repeated_filter_field_means_any_of(client: TestClient, tiny_rows: list[dict]) -> None:
    r = client.post(
        "/api/search",
        files=[("image", ("a.jpg", _image_bytes(tiny_rows[0]), "image/jpeg"))],
        data={"k": "20", "article_type": ["Jeans", "Watches"]},
    )
    assert r.status_code == 200
    assert {h["product"]["article_type"] for h in r.json()["hits"]} == {"Jeans", "Watches"}
    assert len(r.json()["hits"]) == TYPES["Jeans"] + TYPES["Watches"]


def test_upload_search_price_range(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = _upload(client, _image_bytes(tiny_rows[0]), k="20", min_price="20", max_price="40")
    prices = sorted(h["product"]["price"] for h in r.json()["hits"])
    assert prices == [20.0, 25.0, 30.0, 35.0, 40.0]


def test_upload_search_with_no_match_is_empty(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = _upload(client, _image_bytes(tiny_rows[0]), brand="No Such Brand")
    assert r.status_code == 200 and r.json()["hits"] == [] and r.json()["count"] == 0


# --- formats and conversions through the upload path -------------------------------------------------
def _gif_first_frame(rows: list[dict[str, str]]) -> bytes:
    frames = [_picture(rows[0]).convert("P"), _picture(rows[9]).convert("P")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated(rows: list[dict[str, str]]) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    return _encode(_picture(rows[0]).rotate(90, expand=True), "JPEG", quality=95, exif=exif.tobytes())


def _alpha_on_black(rows: list[dict[str, str]]) -> bytes:
    rgb = np.asarray(_picture(rows[0]))
    background = rgb.min(axis=2) > 235
    rgba = np.dstack([np.where(background[..., None], 0, rgb), np.where(background, 0, 255)]).astype(np.uint8)
    return _encode(Image.fromarray(rgba, "RGBA"), "PNG")  # transparent pixels are black underneath


def _grey16(rows: list[dict[str, str]]) -> bytes:
    grey = np.asarray(_picture(rows[0]).convert("L")).astype(np.uint16) * 257
    return _encode(Image.fromarray(grey), "PNG")


try:
    import pillow_heif  # type: ignore[import-not-found]  # noqa: F401

    HAS_HEIF = True
except ImportError:
    HAS_HEIF = False

FORMATS = {
    "jpeg": lambda rows: _encode(_picture(rows[0]), "JPEG", quality=90),
    "png": lambda rows: _encode(_picture(rows[0]), "PNG"),
    "webp": lambda rows: _encode(_picture(rows[0]), "WEBP", quality=90),
    "gif-first-frame": _gif_first_frame,
    "bmp": lambda rows: _encode(_picture(rows[0]), "BMP"),
    "tiff": lambda rows: _encode(_picture(rows[0]), "TIFF"),
    "cmyk-jpeg": lambda rows: _encode(_picture(rows[0]).convert("CMYK"), "JPEG", quality=95),
    "palette-png": lambda rows: _encode(_picture(rows[0]).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
    "16-bit-grey-png": _grey16,
    "alpha-png": _alpha_on_black,
    "exif-orientation": _exif_rotated,
    "heic": lambda rows: _encode(_picture(rows[0]), "HEIF", quality=90),
    "avif": lambda rows: _encode(_picture(rows[0]), "AVIF", quality=90),
}
# Done right, each scores > 0.99 (GIF's 256-colour dither: ~0.89). Done wrong, they score lower: alpha
# composited on black ~0.96, 16-bit clipped to 8 bits ~0.2, EXIF orientation ignored ~0.47.
MIN_SCORE = {"gif-first-frame": 0.85}


@pytest.mark.parametrize("kind", list(FORMATS))
def test_upload_formats_and_conversions_find_the_product(
    client: TestClient, tiny_rows: list[dict[str, str]], kind: str
) -> None:
    if kind == "heic" and not HAS_HEIF:
        pytest.skip("HEIC needs pillow-heif, which is not installed")
    if kind == "avif" and not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    top_id, score = _top(_upload(client, FORMATS[kind](tiny_rows), name=f"q.{kind}", k="3"))
    assert top_id == tiny_rows[0]["id"]
    assert score > MIN_SCORE.get(kind, 0.98), score


def test_exif_orientation_matters(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    """The same rotated pixels without the EXIF tag score clearly lower: the tag is what is applied."""
    _, with_tag = _top(_upload(client, _exif_rotated(tiny_rows)))
    rotated = _encode(_picture(tiny_rows[0]).rotate(90, expand=True), "JPEG", quality=95)
    r = _upload(client, rotated, k="20")
    no_tag = next(h["score"] for h in r.json()["hits"] if h["id"] == tiny_rows[0]["id"])
    assert with_tag > no_tag + 0.02


# --- search: errors ---------------------------------------------------------------------------------
def test_corrupt_image_is_400(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    _assert_error(_upload(client, _image_bytes(tiny_rows[0])[:300]), 400, "corrupt or truncated")


def test_random_bytes_are_400(client: TestClient) -> None:
    _assert_error(_upload(client, b"definitely not a picture" * 10, name="x.jpg"), 400, "not a recognised image")


def test_empty_file_is_400(client: TestClient) -> None:
    _assert_error(_upload(client, b"", name="empty.jpg"), 400, "empty file")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "x.svg"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "x.pdf"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "x.html"),
    ],
)
def test_unsupported_image_types_are_415(client: TestClient, data: bytes, name: str) -> None:
    _assert_error(_upload(client, data, name=name), 415, "not a supported image format")


def test_upload_search_with_an_overlong_filter_is_422_like_json(client: TestClient, tiny_rows: list[dict]) -> None:
    long = "x" * 300
    _assert_error(_upload(client, _image_bytes(tiny_rows[0]), brand=long), 422, "at most 50 values")
    _assert_error(client.post("/api/search", json={"product_id": "1", "filters": {"brand": long}}), 422, "at most")


def test_unsupported_request_content_type_is_415(client: TestClient) -> None:
    r = client.post("/api/search", content=b"hello", headers={"Content-Type": "text/plain"})
    _assert_error(r, 415, "multipart/form-data")


def test_multipart_without_image_is_422(client: TestClient) -> None:
    _assert_error(client.post("/api/search", data={"k": "3"}), 422, "image")


def test_image_sent_as_text_field_is_422(client: TestClient) -> None:
    r = client.post("/api/search", files={"k": (None, "3"), "image": (None, "not a file")})
    _assert_error(r, 422, "file upload")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"k": "0"}, "k"),
        ({"k": "21"}, "k must be between 1 and 20"),
        ({"k": "lots"}, "k"),
        ({"min_price": "-1"}, "min_price"),
        ({"colour_typo": "Red"}, "colour_typo"),
    ],
)
def test_bad_upload_parameters_are_422(client: TestClient, tiny_rows: list[dict], fields: dict, where: str) -> None:
    r = _upload(client, _image_bytes(tiny_rows[0]), **fields)
    _assert_error(r, 422, where)
    assert r.status_code == 422


def test_validation_errors_list_each_problem(client: TestClient) -> None:
    r = client.post("/api/search", json={"product_id": "x", "k": 0, "filters": {"min_price": -3}})
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["errors"]}
    assert {("k",), ("filters", "min_price")} <= locs
    assert "k:" in r.json()["detail"]


# --- search by product id and URL -------------------------------------------------------------------
def test_product_search_leaves_the_product_out(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    pid = tiny_rows[1]["id"]
    r = client.post("/api/search", json={"product_id": pid, "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == {"type": "product", "value": pid}
    assert pid not in [h["id"] for h in body["hits"]]
    assert body["hits"][0]["product"]["article_type"] == "Tshirts"


def test_product_search_with_filters(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = client.post(
        "/api/search",
        json={"product_id": tiny_rows[0]["id"], "k": 20, "filters": {"article_type": ["Watches", "Handbags"]}},
    )
    assert {h["product"]["article_type"] for h in r.json()["hits"]} == {"Watches", "Handbags"}


def test_unknown_product_search_is_404(client: TestClient) -> None:
    _assert_error(client.post("/api/search", json={"product_id": "no-such-id"}), 404, "no-such-id")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "https://a.example/x.jpg", "product_id": "1"},
        {"url": "file:///etc/passwd"},
        {"url": "ftp://a.example/x.jpg"},
        {"product_id": "1", "k": "many"},
        {"product_id": "1", "surprise": True},
        {"product_id": "1", "filters": {"size": "M"}},
    ],
)
def test_bad_json_search_is_422(client: TestClient, body: dict) -> None:
    _assert_error(client.post("/api/search", json=body), 422)


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"})
    _assert_error(r, 422, "json")


def test_url_search_refuses_private_hosts_by_default(client: TestClient, image_server: str) -> None:
    _assert_error(client.post("/api/search", json={"url": f"{image_server}/shirt.jpg"}), 400, "not allowed")


def test_url_search_refuses_metadata_address(admin: TestClient) -> None:
    r = admin.post("/api/search", json={"url": "http://169.254.169.254/latest/meta-data/"})
    _assert_error(r, 400, "not allowed")


def test_url_search_fetches_when_private_hosts_are_allowed(
    admin: TestClient, image_server: str, tiny_rows: list[dict[str, str]]
) -> None:
    url = f"{image_server}/shirt.jpg"
    r = admin.post("/api/search", json={"url": url, "k": 2})
    assert r.json()["query"] == {"type": "url", "value": url}
    assert _top(r)[0] == tiny_rows[0]["id"]


def test_url_that_is_not_an_image_is_415(admin: TestClient, image_server: str) -> None:
    _assert_error(admin.post("/api/search", json={"url": f"{image_server}/page"}), 415, "not an image")


def test_url_that_is_missing_is_400(admin: TestClient, image_server: str) -> None:
    _assert_error(admin.post("/api/search", json={"url": f"{image_server}/gone.jpg"}), 400, "HTTP 404")


# --- upload limits ----------------------------------------------------------------------------------
def test_declared_body_over_the_cap_is_413(small_client: TestClient) -> None:
    _assert_error(_upload(small_client, b"\xff" * 400_000), 413, "request body is over")


def test_streamed_body_over_the_cap_is_413(small_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=image; filename=a.jpg\r\n\r\n"
        for _ in range(40):
            yield b"\xff" * 10_000

    r = small_client.post("/api/search", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    _assert_error(r, 413, "request body is over")


def test_image_over_the_byte_cap_is_413(small_client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    big = _image_bytes(tiny_rows[0]) + b"\x00" * 160_000  # under the body cap, over the image cap
    _assert_error(_upload(small_client, big), 413, "byte limit")


def test_image_over_the_pixel_cap_is_413(small_client: TestClient) -> None:
    data = _encode(Image.new("RGB", (1000, 600), "white"), "PNG")
    assert len(data) < 150_000
    _assert_error(_upload(small_client, data, name="wide.png"), 413, "pixel limit")


def test_decompression_bomb_is_413(client: TestClient) -> None:
    data = _encode(Image.new("1", (12_000, 12_000)), "PNG")  # 144 million pixels in a few kB
    assert len(data) < 200_000
    _assert_error(_upload(client, data, name="bomb.png"), 413)


async def _run_middleware(scope_headers: list[tuple[bytes, bytes]], chunks: list[bytes], cap: int) -> dict:
    """Drive the byte-cap middleware around an app that reads the whole body; report what happened."""
    seen: dict[str, Any] = {"received": 0, "status": None, "app_finished": False}
    pending = list(chunks)

    async def receive() -> dict:
        seen["received"] += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]

    async def app(scope: dict, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        seen["app_finished"] = True
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": scope_headers}
    await BodySizeLimitMiddleware(app, max_bytes=cap)(scope, receive, send)  # type: ignore[arg-type]
    return seen


def test_byte_cap_answers_a_large_content_length_without_reading_the_body() -> None:
    import asyncio

    seen = asyncio.run(_run_middleware([(b"content-length", b"5000000")], [b"x" * 1000] * 5000, cap=100_000))
    assert seen == {"received": 0, "status": 413, "app_finished": False}


def test_byte_cap_stops_reading_an_undeclared_body_at_the_cap() -> None:
    import asyncio

    seen = asyncio.run(_run_middleware([], [b"x" * 10_000] * 1000, cap=100_000))
    assert seen["status"] == 413 and not seen["app_finished"]
    assert seen["received"] == 11  # stopped at the first chunk past the cap, not after 1000


def test_byte_cap_lets_bodies_under_it_through() -> None:
    import asyncio

    seen = asyncio.run(_run_middleware([(b"content-length", b"50000")], [b"x" * 10_000] * 5, cap=100_000))
    assert seen["status"] == 200 and seen["app_finished"]


# --- products: browse, read, similar, image ---------------------------------------------------------
def test_products_are_paged(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    first = client.get("/api/products", params={"limit": 10}).json()
    second = client.get("/api/products", params={"limit": 10, "offset": 10}).json()
    assert first["total"] == second["total"] == len(tiny_rows)
    assert (first["offset"], first["limit"], len(first["items"]), len(second["items"])) == (0, 10, 10, 6)
    ids = [p["id"] for p in first["items"] + second["items"]]
    assert ids == [r["id"] for r in tiny_rows]  # catalogue order, no overlap, nothing missing


def test_products_are_filtered(client: TestClient) -> None:
    r = client.get(
        "/api/products", params=[("article_type", "Watches"), ("article_type", "Jeans"), ("gender", "Women")]
    )
    body = r.json()
    assert body["total"] == len(body["items"]) > 0
    assert all(p["gender"] == "Women" and p["article_type"] in ("Watches", "Jeans") for p in body["items"])


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1000}, {"offset": -1}, {"min_price": "cheap"}])
def test_bad_browse_parameters_are_422(client: TestClient, params: dict) -> None:
    _assert_error(client.get("/api/products", params=params), 422)


def test_get_product(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    row = tiny_rows[3]
    body = client.get(f"/api/products/{row['id']}").json()
    assert body["id"] == row["id"] and body["brand"] == row["brand"] and body["colour"] == row["colour"]
    assert body["image_url"] == f"/api/products/{row['id']}/image"


def test_unknown_product_is_404(client: TestClient) -> None:
    _assert_error(client.get("/api/products/nope"), 404, "nope")


def test_similar_products(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    pid = tiny_rows[7]["id"]  # a pair of jeans
    body = client.get(f"/api/products/{pid}/similar", params={"k": 2}).json()
    assert body["query"] == {"type": "product", "value": pid} and len(body["hits"]) == 2
    assert pid not in [h["id"] for h in body["hits"]]
    assert body["hits"][0]["product"]["article_type"] == "Jeans"
    filtered = client.get(f"/api/products/{pid}/similar", params={"k": 20, "article_type": "Watches"}).json()
    assert {h["product"]["article_type"] for h in filtered["hits"]} == {"Watches"}


def test_similar_errors(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    _assert_error(client.get("/api/products/nope/similar"), 404)
    _assert_error(client.get(f"/api/products/{tiny_rows[0]['id']}/similar", params={"k": 500}), 422, "k must")


def test_product_image(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    r = client.get(f"/api/products/{tiny_rows[2]['id']}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (224, 224)
    _assert_error(client.get("/api/products/nope/image"), 404)


def test_facets(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    body = client.get("/api/facets").json()
    assert body["total"] == len(tiny_rows)
    types = {f["value"]: f["count"] for f in body["fields"]["article_type"]}
    assert types == TYPES
    counts = [f["count"] for f in body["fields"]["gender"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == len(tiny_rows)
    assert set(body["fields"]) == {"category", "subcategory", "article_type", "gender", "colour", "brand"}
    prices = [float(r["price"]) for r in tiny_rows]
    assert body["price"] == {"min": min(prices), "max": max(prices)}


def _facet_counts(body: dict[str, Any], name: str) -> dict[str, int]:
    return {f["value"].lower(): f["count"] for f in body["fields"][name]}


def _brute_counts(rows: list[dict[str, str]], name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row[name]:
            counts[row[name].lower()] = counts.get(row[name].lower(), 0) + 1
    return counts


def test_facets_follow_the_other_filters(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    jeans = [r for r in tiny_rows if r["article_type"] == "Jeans"]
    body = client.get("/api/facets", params={"article_type": "jeans", "colour": "BLACK"}).json()
    both = [r for r in jeans if r["colour"] == "Black"]
    assert body["total"] == len(both) and len(both) < len(jeans)
    prices = [float(r["price"]) for r in both]
    assert body["price"] == {"min": min(prices), "max": max(prices)}
    # a filtered field counts over the other filters only: its other values stay on offer
    assert _facet_counts(body, "colour") == _brute_counts(jeans, "colour") and len(_brute_counts(jeans, "colour")) > 1
    black = [r for r in tiny_rows if r["colour"] == "Black"]
    assert _facet_counts(body, "article_type") == _brute_counts(black, "article_type")
    assert _facet_counts(body, "gender") == _brute_counts(both, "gender")  # unfiltered fields: all filters


def test_facets_take_a_price_range_and_any_of_several_values(
    client: TestClient, tiny_rows: list[dict[str, str]]
) -> None:
    params = {"article_type": ["Jeans", "Watches"], "min_price": 40, "max_price": 80}
    body = client.get("/api/facets", params=params).json()
    in_range = [r for r in tiny_rows if 40 <= float(r["price"]) <= 80]
    picked = [r for r in in_range if r["article_type"] in ("Jeans", "Watches")]
    assert body["total"] == len(picked) > 0
    assert _facet_counts(body, "article_type") == _brute_counts(in_range, "article_type")
    assert _facet_counts(body, "brand") == _brute_counts(picked, "brand")
    assert body["price"]["min"] >= 40 and body["price"]["max"] <= 80


def test_facets_of_filters_that_match_nothing(client: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    body = client.get("/api/facets", params={"brand": "no such brand"}).json()
    assert body["total"] == 0 and body["price"] is None
    assert _facet_counts(body, "brand") == _brute_counts(tiny_rows, "brand")  # its own filter is left out
    assert body["fields"]["gender"] == []
    _assert_error(client.get("/api/facets", params={"min_price": -1}), 422)


def test_openapi_lists_the_facet_filters(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/facets"]["get"]
    names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
    assert names == {
        "category", "subcategory", "article_type", "gender", "colour", "brand", "min_price", "max_price", "in_stock",
    }  # fmt: skip
    assert "422" in op["responses"]


# --- admin: add, update, delete ---------------------------------------------------------------------
def test_admin_routes_are_403_without_a_configured_token(client: TestClient, tiny_rows: list[dict]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/api/products", data={"id": "new-1"}, files={"image": ("a.jpg", _image_bytes(tiny_rows[0]))})
    _assert_error(r, 403, "LOOKALIKE_ADMIN_TOKEN")
    _assert_error(client.delete(f"/api/products/{tiny_rows[0]['id']}", headers=headers), 403)
    assert client.get("/api/products/new-1").status_code == 404
    assert client.get(f"/api/products/{tiny_rows[0]['id']}").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Admin-Token": "wrong"},
        {"X-Admin-Token": TOKEN + "x"},
        {"X-Admin-Token": "t\u00f6ken".encode("latin-1")},
    ],
)
def test_admin_routes_are_401_with_a_missing_or_wrong_token(
    admin: TestClient, tiny_rows: list[dict[str, str]], headers: dict[str, Any]
) -> None:
    request_headers = {"Authorization": "", **headers}  # drop the client's good default token
    victim = tiny_rows[-1]["id"]
    r = admin.post(
        "/api/products",
        data={"id": "intruder"},
        files={"image": ("a.jpg", _image_bytes(tiny_rows[0]))},
        headers=request_headers,
    )
    _assert_error(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    _assert_error(admin.delete(f"/api/products/{victim}", headers=request_headers), 401)
    assert admin.get("/api/products/intruder").status_code == 404
    assert admin.get(f"/api/products/{victim}").status_code == 200


def test_add_product_then_find_it(admin: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    photo = _encode(_picture(tiny_rows[12]).transpose(Image.Transpose.FLIP_LEFT_RIGHT), "PNG")
    fields = {"id": "added-1", "title": "Mirror watch", "brand": "Acme", "article_type": "Watches", "price": "99.5"}
    r = admin.post("/api/products", data=fields, files={"image": ("w.png", photo, "image/png")})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "added"
    assert r.json()["product"] | {"extra": {}} == {
        "id": "added-1", "title": "Mirror watch", "brand": "Acme", "category": None, "subcategory": None,
        "article_type": "Watches", "colour": None, "gender": None, "price": 99.5, "url": None,
        "image_url": "/api/products/added-1/image", "extra": {}, "in_stock": None,
        "images": ["/api/products/added-1/image"],
    }  # fmt: skip
    assert admin.get("/api/products/added-1/image").status_code == 200
    assert _top(_upload(admin, photo, name="w.png"))[0] == "added-1"
    assert admin.get("/healthz").json()["products"] == admin.get("/api/products").json()["total"]


def test_update_metadata_only_keeps_fields_left_out(admin: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    row = tiny_rows[10]
    other_header = {"Authorization": "", "X-Admin-Token": TOKEN}
    r = admin.post("/api/products", data={"id": row["id"], "title": "Renamed", "colour": ""}, headers=other_header)
    assert r.status_code == 200, r.text
    product = r.json()["product"]
    assert r.json()["status"] == "updated"
    assert (product["title"], product["colour"], product["brand"]) == ("Renamed", None, row["brand"])
    assert product["price"] == float(row["price"])
    assert _top(_upload(admin, _image_bytes(row)))[0] == row["id"]  # the picture did not change


def test_update_picture(admin: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    row, other = tiny_rows[11], tiny_rows[14]
    r = admin.post("/api/products", data={"id": row["id"]}, files={"image": ("h.jpg", _image_bytes(other))})
    assert r.status_code == 200 and r.json()["status"] == "updated"
    assert r.json()["product"]["title"] == row["title"]
    image = admin.get(f"/api/products/{row['id']}/image").content
    assert image == _image_bytes(other)


def test_add_product_from_an_image_url(admin: TestClient, image_server: str) -> None:
    r = admin.post("/api/products", data={"id": "from-url", "image_url": f"{image_server}/shirt.jpg"})
    assert r.status_code == 201, r.text
    assert admin.get("/api/products/from-url").json()["id"] == "from-url"


@pytest.mark.parametrize(
    ("fields", "status", "contains"),
    [
        ({"id": "no-picture"}, 404, "needs an 'image'"),
        ({"id": "a\x01b"}, 422, "control character"),
        ({"id": ""}, 422, "id"),
        ({"title": "no id"}, 422, "id"),
        ({"id": "p", "price": "free"}, 422, "price"),
        ({"id": "p", "price": "inf"}, 422, "price"),  # stored, it read back as null and broke /api/facets
        ({"id": "p", "price": "nan"}, 422, "price"),
        ({"id": "p", "price": "-Infinity"}, 422, "price"),
        ({"id": "p", "image_url": "file:///etc/passwd"}, 422, "image_url"),
        ({"id": "p", "image_url": "http://169.254.169.254/x.jpg"}, 400, "not allowed"),
        ({"id": "p", "image_url": " http://169.254.169.254/x.jpg"}, 422, "image_url"),  # never trimmed
        ({"id": "p", "image_url": "\thttps://169.254.169.254/x.jpg"}, 422, "image_url"),
        ({"id": "p", "colour_typo": "x"}, 422, "colour_typo"),
    ],
)
def test_bad_product_forms_change_nothing(admin: TestClient, fields: dict, status: int, contains: str) -> None:
    before = admin.get("/api/products").json()["total"]
    _assert_error(admin.post("/api/products", data=fields), status, contains)
    assert admin.get("/api/products").json()["total"] == before


@pytest.mark.parametrize("value", ["inf", "nan", "Infinity"])
def test_non_finite_price_filters_are_refused(client: TestClient, value: str) -> None:
    _assert_error(client.get("/api/products", params={"max_price": value}), 422, "max_price")
    _assert_error(client.get("/api/products", params={"min_price": value}), 422, "min_price")


@pytest.mark.parametrize("pid", [".", ".."])
def test_dot_ids_are_refused_by_the_library_too(pid: str) -> None:
    # one rule for ids (issue 23): browsers resolve /api/products/%2E%2E/image as a path step, so no way in takes them
    with pytest.raises(InvalidProductError, match="path step"):
        Product(id=pid, title=f"dot {pid}")


@pytest.mark.parametrize("pid", [".", ".."])
def test_dot_ids_are_refused_by_the_admin_api(admin: TestClient, tiny_rows: list[dict[str, str]], pid: str) -> None:
    r = admin.post("/api/products", data={"id": pid}, files={"image": ("a.jpg", _image_bytes(tiny_rows[3]))})
    _assert_error(r, 422, "id")


def test_image_url_is_never_read_as_a_server_side_file(admin: TestClient, tiny_catalog: Path) -> None:
    existing = next((tiny_catalog / "images").rglob("*.jpg"))
    answers = []
    # a leading space made these pass the URL check and then be read as paths (" http:/..."), URL rules skipped
    for path in (" http://127.0.0.1/x.jpg", " https://shop.example/a.jpg", str(existing)):
        r = admin.post("/api/products", data={"id": "local-path", "image_url": path})
        assert r.status_code == 422, r.text
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2]  # nothing tells whether a file exists
    assert admin.get("/api/products/local-path").status_code == 404


def test_add_product_with_a_bad_image_is_400_and_changes_nothing(admin: TestClient) -> None:
    r = admin.post("/api/products", data={"id": "broken"}, files={"image": ("b.jpg", b"\xff\xd8\xff broken")})
    _assert_error(r, 400)
    assert admin.get("/api/products/broken").status_code == 404


def test_add_product_needs_a_form(admin: TestClient) -> None:
    _assert_error(admin.post("/api/products", json={"id": "json-1"}), 415, "multipart/form-data")


def test_delete_product(admin: TestClient, tiny_rows: list[dict[str, str]]) -> None:
    pid = tiny_rows[15]["id"]
    r = admin.delete(f"/api/products/{pid}")
    assert r.status_code == 200 and r.json() == {"id": pid, "deleted": True}
    _assert_error(admin.get(f"/api/products/{pid}"), 404)
    _assert_error(admin.get(f"/api/products/{pid}/image"), 404)
    hits = _upload(admin, _image_bytes(tiny_rows[15]), k="20").json()["hits"]
    assert pid not in [h["id"] for h in hits]
    _assert_error(admin.delete(f"/api/products/{pid}"), 404)


# --- the serve command ------------------------------------------------------------------------------
def test_serve_command_runs_uvicorn_on_the_app(tiny_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from fastapi import FastAPI
    from typer.testing import CliRunner

    from lookalike.cli import app as cli_app

    calls: list[tuple[Any, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    result = CliRunner().invoke(cli_app, ["serve", str(tiny_catalog), "--host", "127.0.0.1", "--port", "8765"])
    assert result.exit_code == 0, result.output
    ((app, kwargs),) = calls
    assert isinstance(app, FastAPI)
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 8765)


def test_serve_command_refuses_a_missing_catalogue(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lookalike.cli import app as cli_app
    from lookalike.errors import CatalogNotFoundError

    result = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "nothing")])
    assert isinstance(result.exception, CatalogNotFoundError)


def test_colour_preference_and_switch_through_json_and_multipart(
    client: TestClient, tiny_rows: list[dict[str, str]]
) -> None:
    row = tiny_rows[5]
    families = {r["id"]: family_of(r["colour"]) for r in tiny_rows}
    wanted = next(f for f in families.values() if f not in (None, family_of(row["colour"])))
    plain = _upload(client, _image_bytes(row), k="16").json()
    assert plain["colour"]["source"] == "detected" and len(plain["colour"]["families"]) == 12
    asked = _upload(client, _image_bytes(row), k="16", prefer_colour=wanted).json()
    assert asked["colour"]["ranked_by"] == wanted and asked["colour"]["source"] == "preference"
    assert asked["colour"]["detected"] == plain["colour"]["detected"]
    n = sum(families[h["id"]] == wanted for h in asked["hits"])
    assert 0 < n < len(asked["hits"]) == 16  # the wished colour comes up, the others are still there

    def places(body: dict) -> list[int]:
        return [i for i, h in enumerate(body["hits"]) if families[h["id"]] == wanted]

    assert sum(places(asked)) < sum(places(plain))
    off = _upload(client, _image_bytes(row), k="4", colour_rank="false").json()
    assert off["colour"]["ranked_by"] is None and all(h["colour_match"] is None for h in off["hits"])
    more = client.post("/api/search", json={"product_id": row["id"], "k": 16, "colour": wanted}).json()
    assert more["colour"]["ranked_by"] == wanted and more["colour"]["source"] == "preference"
    assert [h["colour_match"] for h in more["hits"]] == [
        1.0 if families[h["id"]] == wanted else 0.0 for h in more["hits"]
    ]
    own = client.post("/api/search", json={"product_id": row["id"], "k": 4}).json()
    assert own["colour"] == {**own["colour"], "ranked_by": family_of(row["colour"]), "source": "product"}
    bad = client.post("/api/search", json={"product_id": row["id"], "colour": "sparkly"})
    assert bad.status_code == 422 and "unknown colour" in bad.json()["detail"]


# --- products sharing a picture ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def twins(tiny_catalog: Path, tiny_rows: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny catalogue plus "twin": another product with the very same picture as the first row."""
    from lookalike.catalog import Catalog

    copy = tmp_path_factory.mktemp("catalogs") / "twins"
    shutil.copytree(tiny_catalog, copy)
    with Catalog.open(copy) as cat:
        assert cat.upsert(Product("twin", title="The same picture"), _image_bytes(tiny_rows[0])) == "added"
    return copy


def test_products_sharing_a_picture_show_once_unless_collapse_is_false(
    twins: Path, tiny_rows: list[dict[str, str]], image_server: str
) -> None:
    pair = {tiny_rows[0]["id"], "twin"}
    with TestClient(create_app(twins, _settings(allow_private_urls=True))) as c:
        for response in (
            _upload(c, _image_bytes(tiny_rows[0]), k="3"),
            c.post("/api/search", json={"url": f"{image_server}/shirt.jpg", "k": 3}),
        ):
            hits = response.json()["hits"]
            assert len(hits) == 3 and {hits[0]["id"], *hits[0]["duplicates"]} == pair, response.text
            assert [h["duplicates"] for h in hits[1:]] == [[], []]
        for response in (
            _upload(c, _image_bytes(tiny_rows[0]), k="3", collapse="false"),
            c.post("/api/search", json={"url": f"{image_server}/shirt.jpg", "k": 3, "collapse": False}),
        ):
            hits = response.json()["hits"]
            assert {h["id"] for h in hits[:2]} == pair and all(h["duplicates"] == [] for h in hits), response.text
        assert c.post("/api/search", json={"url": f"{image_server}/shirt.jpg", "collapse": "maybe"}).status_code == 422
        schema = c.get("/openapi.json").json()["components"]["schemas"]
        assert (
            "collapse" in schema["SearchRequest"]["properties"] and "collapse" in schema["SearchUpload"]["properties"]
        )
        assert schema["HitOut"]["properties"]["duplicates"]["type"] == "array"
    with TestClient(create_app(twins, _settings(collapse_duplicates=False))) as off:
        hits = _upload(off, _image_bytes(tiny_rows[0]), k="3").json()["hits"]
        assert {h["id"] for h in hits[:2]} == pair
        hits = _upload(off, _image_bytes(tiny_rows[0]), k="3", collapse="true").json()["hits"]
        assert {hits[0]["id"], *hits[0]["duplicates"]} == pair


def test_collapse_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().collapse_duplicates is True
    monkeypatch.setenv("LOOKALIKE_COLLAPSE_DUPLICATES", "0")
    assert ServiceSettings().collapse_duplicates is False
