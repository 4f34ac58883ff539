"""Issue 23 item 5: one rule for product ids everywhere (lookalike.product.validate_product_id), and every stored
id reachable through the API as one percent-encoded path segment, '/' included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike import Catalog, Product, read_csv
from lookalike.errors import InvalidProductError, SourceError
from lookalike.service import ServiceSettings, create_app
from lookalike.service.schemas import id_segment

from .conftest import PRODUCTS_CSV

TOKEN = "paths-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ODD_IDS = ["a/b", "../x", "/etc/passwd", "x y", "café/ünï ☂", "x/image", "x/similar", "50%off", "a?b#c", "x"]
CONTROL_IDS = ["a\x00b", "tab\there", "line\nbreak", "del\x7f", "c1\x85x"]


@pytest.fixture(scope="module")
def odd_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paths")
    with PRODUCTS_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    table = folder / "odd.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "title", "colour", "image"])
        writer.writeheader()
        for pid, row in zip(ODD_IDS, rows, strict=False):
            image = str(PRODUCTS_CSV.parent / row["image"])
            writer.writerow({"id": pid, "title": f"Product {pid}", "colour": row["colour"], "image": image})
    path = folder / "cat"
    with Catalog.create(path, extractor="colour-histogram") as cat:
        report = cat.ingest(read_csv(table), batch_size=4)
        assert report.added == len(ODD_IDS) and not report.failed
    return path


@pytest.fixture()
def client(odd_catalog: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[])
    with TestClient(create_app(odd_catalog, settings)) as c:
        yield c


def jpeg(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 80), (shade, 90, 200 - shade)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("pid", ODD_IDS)
def test_every_stored_id_is_reachable(client: TestClient, odd_catalog: Path, pid: str) -> None:
    listed = {p["id"]: p for p in client.get("/api/products", params={"limit": 50}).json()["items"]}
    image_url = listed[pid]["image_url"]
    assert image_url == f"/api/products/{id_segment(pid)}/image"
    base = image_url.removesuffix("/image")
    r = client.get(base)
    assert r.status_code == 200, (pid, r.status_code, r.text)
    assert r.json()["id"] == pid and r.json()["title"] == f"Product {pid}"
    picture = client.get(image_url)
    assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/")
    with Catalog.open(odd_catalog) as cat:
        assert picture.content == cat.image_path(pid).read_bytes()
    similar = client.get(f"{base}/similar", params={"k": 3})
    assert similar.status_code == 200, similar.text
    assert similar.json()["query"]["value"] == pid and pid not in [h["id"] for h in similar.json()["hits"]]


def test_ids_ending_like_a_sub_route_are_not_mistaken_for_it(client: TestClient) -> None:
    # "x/image" is a product of its own: /api/products/x%2Fimage is that product, /api/products/x/image x's picture
    assert client.get("/api/products/x%2Fimage").json()["id"] == "x/image"
    assert client.get("/api/products/x/image").headers["content-type"].startswith("image/")
    assert client.get("/api/products/x%2Fsimilar").json()["id"] == "x/similar"
    assert client.get("/api/products/x/similar").json()["query"]["value"] == "x"
    assert client.get("/api/products/a%2Fb/image").status_code == 200
    assert client.get("/api/products/nope%2Fnothing").status_code == 404


def test_ids_with_a_slash_are_added_and_deleted_through_the_api(client: TestClient) -> None:
    for i, pid in enumerate(["new/one", "../new", "/abs/new", "ü ñ/é"]):
        r = client.post("/api/products", data={"id": pid}, files={"image": ("p.jpg", jpeg(i * 40), "image/jpeg")},
                        headers=ADMIN)  # fmt: skip
        assert r.status_code == 201, (pid, r.text)
        url = r.json()["product"]["image_url"]
        assert client.get(url).status_code == 200
        gone = client.delete(url.removesuffix("/image"), headers=ADMIN)
        assert gone.status_code == 200 and gone.json() == {"id": pid, "deleted": True}
        assert client.get(url.removesuffix("/image")).status_code == 404


@pytest.mark.parametrize("pid", [*CONTROL_IDS, ".", ".."])
def test_control_characters_and_dot_segments_are_refused_everywhere(client: TestClient, tmp_path: Path,
                                                                    pid: str) -> None:  # fmt: skip
    with pytest.raises(InvalidProductError, match="product id"):
        Product(id=pid)
    table = tmp_path / "p.csv"
    with table.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "title"], ["fine", "Fine"], [pid, "Odd"]])
    rows = read_csv(table)
    assert next(rows).product.id == "fine"
    with pytest.raises(SourceError, match="line 3"):
        next(rows)
    r = client.post("/api/products", data={"id": pid}, files={"image": ("p.jpg", jpeg(7), "image/jpeg")},
                    headers=ADMIN)  # fmt: skip
    assert r.status_code == 422, r.text
