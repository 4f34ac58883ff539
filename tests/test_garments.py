"""Garments in a photo and region search through the shells: the detector on a tiny synthetic outfit, REST
(``region`` in JSON and multipart, ``POST /api/garments``) and the CLI (``search --region``, ``look``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike.garment.detector import Garment, box_iou, decode, default_detector
from lookalike.garment.kinds import CLASSES, KINDS, kind_of
from lookalike.garment.mask import catalogue_mask

from .conftest import PRODUCTS_DIR, run_cli

IMAGES = PRODUCTS_DIR / "images"
# three test-split products (id % 5 == 0: never seen by the detector's training) worn as one outfit
OUTFIT = (("12055", "top"), ("16520", "bottom"), ("14380", "footwear"))


def outfit_picture() -> tuple[Image.Image, list[tuple[float, float, float, float]]]:
    """A T-shirt above jeans above shoes on a white page, and where each landed (fractions)."""
    canvas = Image.new("RGB", (300, 600), "white")
    slots = ((20, 10, 280, 230), (50, 215, 250, 445), (70, 460, 230, 590))
    boxes = []
    for (pid, _), (x0, y0, x1, y1) in zip(OUTFIT, slots, strict=True):
        img = Image.open(IMAGES / f"{pid}.jpg").convert("RGB")
        mask = Image.fromarray(catalogue_mask(img).astype(np.uint8) * 255)
        left, top, right, bottom = mask.getbbox()
        img, mask = img.crop((left, top, right, bottom)), mask.crop((left, top, right, bottom))
        scale = min((x1 - x0) / img.width, (y1 - y0) / img.height)
        size = (int(img.width * scale), int(img.height * scale))
        at = (x0 + ((x1 - x0) - size[0]) // 2, y0 + ((y1 - y0) - size[1]) // 2)
        canvas.paste(img.resize(size), at, mask.resize(size))
        boxes.append((at[0] / 300, at[1] / 600, (at[0] + size[0]) / 300, (at[1] + size[1]) / 600))
    return canvas, boxes


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_kinds_of_article_types() -> None:
    assert kind_of("Tshirts") == "top" and kind_of("Jeans") == "bottom" and kind_of("Dresses") == "dress"
    assert kind_of("Casual Shoes") == "footwear" and kind_of("Handbags") == "bag" and kind_of("Caps") == "hat"
    assert kind_of("Jackets") == "outerwear" and kind_of("Watches") == "other" and kind_of("Perfume") is None
    assert len(CLASSES) == len(KINDS) + 1 and CLASSES[-1] == "other"


def test_decode_keeps_peaks_and_drops_repeats() -> None:
    heat = np.zeros((len(CLASSES), 4, 4), np.float32)
    dist = np.full((4, 4, 4), 0.125, np.float32)
    heat[0, 0, 0] = 0.9  # a top at the first cell
    heat[0, 0, 1] = 0.5  # its neighbour: not a peak
    heat[7, 3, 3] = 0.6  # another thing: kind None
    heat[1, 3, 3] = 0.55  # the same cell, a lower class: counted once
    heat[4, 2, 0] = 0.2  # under the threshold
    found = decode(heat, dist, threshold=0.3)
    assert [(g.kind, round(g.score, 2)) for g in found] == [("top", 0.9), (None, 0.6)]
    assert found[0].box == (0.0, 0.0, 0.25, 0.25)
    assert decode(np.zeros_like(heat), dist) == []


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 0.5, 0.5]]), np.array([[0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5], [0.6, 0.6, 1, 1]]))
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_the_detector_finds_a_tiny_outfit() -> None:
    picture, truth = outfit_picture()
    found = default_detector().detect(picture)
    assert all(isinstance(g, Garment) and 0 <= g.score <= 1 for g in found)
    assert [g.score for g in found] == sorted((g.score for g in found), reverse=True)
    iou = box_iou(np.array(truth), np.array([g.box for g in found]).reshape(-1, 4))
    hit = [int(iou[i].argmax()) if len(found) and iou[i].max() >= 0.5 else None for i in range(len(truth))]
    assert sum(h is not None for h in hit) >= 2, (found, truth)
    kinds = [found[h].kind for h in hit if h is not None]
    wanted = [kind for (_, kind), h in zip(OUTFIT, hit, strict=True) if h is not None]
    assert sum(a == b for a, b in zip(kinds, wanted, strict=True)) >= len(wanted) - 1


def test_a_photo_with_no_garment_is_an_empty_list(built_catalog) -> None:
    assert built_catalog.garments(Image.new("RGB", (320, 240), (128, 128, 128))) == []


def test_shop_the_look_searches_each_box(built_catalog) -> None:
    picture, _ = outfit_picture()
    looks = built_catalog.shop_the_look(png(picture), k=3)
    assert looks and all(len(lk.result.hits) == 3 for lk in looks)
    first = looks[0]
    same = built_catalog.search(png(picture), region=first.garment.box, k=3)
    assert [h.id for h in first.result.hits] == [h.id for h in same]


def test_auto_region_searches_the_first_garment(built_catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    picture, _ = outfit_picture()
    data = png(picture)
    first = built_catalog.garments(data)[0]
    boxed = [h.id for h in built_catalog.search(data, region=first.box, k=5)]
    whole = [h.id for h in built_catalog.search(data, k=5)]
    monkeypatch.setattr(built_catalog, "auto_region", True)
    assert [h.id for h in built_catalog.search(data, k=5)] == boxed
    assert [h.id for h in built_catalog.search(data, region=(0, 0, 1, 1), k=5)] == whole  # a region given wins
    blank = png(Image.new("RGB", (200, 200), (128, 128, 128)))
    assert built_catalog.search(blank, k=3)  # no garment: the whole picture


# --- REST ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(built_catalog) -> Iterator[TestClient]:
    from lookalike.service import ServiceSettings, create_app

    built_catalog.checkpoint()
    settings = ServiceSettings(allow_private_urls=False, cors_origins=[], default_k=5, max_k=20)
    with TestClient(create_app(built_catalog.path, settings)) as c:
        yield c


def _upload(client: TestClient, data: bytes, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/api/search", files={"image": ("q.png", data, "image/png")}, data=fields)


def test_rest_region_in_multipart(client: TestClient) -> None:
    picture, truth = outfit_picture()
    region = ",".join(f"{v:.4f}" for v in truth[1])
    r = _upload(client, png(picture), region=region, k="3")
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["product"]["article_type"] == "Jeans"


@pytest.mark.parametrize(
    ("region", "says"),
    [
        ("0.6,0,0.4,1", "x0 < x1"),
        ("0,0,0.05,1", "minimum is 32"),
        ("0,0,1.5,1", "pattern"),
        ("0,0,1", "pattern"),
    ],
)
def test_rest_refuses_a_bad_region_with_422(client: TestClient, region: str, says: str) -> None:
    r = _upload(client, png(Image.open(IMAGES / "13466.jpg")), region=region)
    assert r.status_code == 422, r.text
    assert says in r.text


def test_rest_region_in_json(client: TestClient) -> None:
    r = client.post("/api/search", json={"product_id": "13466", "region": [0, 0, 1, 1]})
    assert r.status_code == 422 and "region goes with a picture" in r.text
    for bad in ([0, 0, 2, 1], [0, 0, 1], ["0", 0, 1, 1]):
        r = client.post("/api/search", json={"url": "http://127.0.0.1:9/x.jpg", "region": bad})
        assert r.status_code == 422, (bad, r.text)


def test_rest_garments(client: TestClient) -> None:
    picture, _ = outfit_picture()
    r = client.post("/api/garments", files={"image": ("o.png", png(picture), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["garments"]) >= 1
    g = body["garments"][0]
    assert set(g) == {"box", "kind", "score", "hits"} and g["hits"] is None and len(g["box"]) == 4
    r = client.post("/api/garments", files={"image": ("o.png", png(picture), "image/png")}, data={"k": "2"})
    assert r.status_code == 200 and all(len(g["hits"]) == 2 for g in r.json()["garments"])
    blank = png(Image.new("RGB", (200, 200), (128, 128, 128)))
    r = client.post("/api/garments", files={"image": ("b.png", blank, "image/png")})
    assert r.status_code == 200 and r.json() == {**r.json(), "count": 0, "garments": []}
    assert client.post("/api/garments", json={"k": 1}).status_code == 422
    assert client.post("/api/garments", files={"image": ("x.jpg", b"not a picture", "image/jpeg")}).status_code == 400


def test_openapi_documents_region_and_garments(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/garments" in schema["paths"]
    parts = schema["components"]["schemas"]
    assert "region" in parts["SearchRequest"]["properties"] and "region" in parts["SearchUpload"]["properties"]
    assert {"GarmentsUpload", "GarmentsRequest", "GarmentsResponse"} <= set(parts)


# --- CLI -------------------------------------------------------------------------------------------
def test_cli_search_region(capsys: pytest.CaptureFixture[str], built_catalog, tmp_path: Path) -> None:
    picture, truth = outfit_picture()
    path = tmp_path / "outfit.png"
    picture.save(path)
    region = ",".join(f"{v:.4f}" for v in truth[2])
    code, out, _ = run_cli(capsys, "search", built_catalog.path, path, "--region", region, "-k", "2", "--json")
    assert code == 0
    assert json.loads(out)["hits"][0]["article_type"] == "Casual Shoes"
    code, _, err = run_cli(capsys, "search", built_catalog.path, path, "--region", "0.5,0,0.2,1")
    assert code != 0 and "x0 < x1" in err
    code, _, err = run_cli(capsys, "search", built_catalog.path, path, "--region", "0,0,0.05,0.05")
    assert code != 0 and "minimum is 32 pixels" in err
    code, _, err = run_cli(capsys, "search", built_catalog.path, "--product", "13466", "--region", "0,0,1,1")
    assert code != 0 and "region goes with a picture" in err


def test_cli_look(capsys: pytest.CaptureFixture[str], built_catalog, tmp_path: Path) -> None:
    picture, _ = outfit_picture()
    path = tmp_path / "outfit.png"
    picture.save(path)
    code, out, _ = run_cli(capsys, "look", built_catalog.path, path, "-k", "2", "--json")
    assert code == 0
    garments = json.loads(out)["garments"]
    assert garments and all({"box", "kind", "score", "hits"} <= set(g) and len(g["hits"]) == 2 for g in garments)
    code, out, _ = run_cli(capsys, "look", built_catalog.path, path, "-k", "2")
    assert code == 0 and "--region" in out
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    code, out, _ = run_cli(capsys, "look", built_catalog.path, blank)
    assert code == 0 and "No garment found" in out
