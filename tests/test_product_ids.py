"""Product ids of only whitespace, and NaN or infinite prices, are refused before anything is written,
in one place for every way in (issue 14, items 5 and 7)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from lookalike import Catalog, Product, read_csv
from lookalike.errors import InvalidProductError, LookalikeError, SourceError
from lookalike.product import validate_price, validate_product_id
from lookalike.sources import read_folder

BLANK_IDS = [" ", "\u00a0", "\u3000", "\x85", "\t \u2003", ""]
TOKEN = "s3cret-token"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("pid", BLANK_IDS)
def test_blank_ids_are_refused_by_product(pid: str) -> None:
    with pytest.raises(InvalidProductError, match="product id"):
        Product(id=pid)
    with pytest.raises(InvalidProductError):
        Product.from_dict({"id": pid, "title": "x"})
    err = InvalidProductError("x")
    assert isinstance(err, LookalikeError) and err.status_code == 422


def test_missing_or_non_string_ids_are_refused() -> None:
    with pytest.raises(InvalidProductError, match="missing"):
        Product(id=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidProductError, match="string"):
        Product(id=12)  # type: ignore[arg-type]
    assert validate_product_id(" a b ") == " a b "  # ids with something besides whitespace are kept as given
    assert Product(id="shoes/123").id == "shoes/123"


@pytest.mark.parametrize("price", [float("nan"), float("inf"), -float("inf"), "12", True])
def test_non_finite_or_non_number_prices_are_refused(price: object) -> None:
    with pytest.raises(InvalidProductError, match="price"):
        Product(id="p1", price=price)  # type: ignore[arg-type]


def test_finite_prices_become_floats() -> None:
    assert Product(id="p1", price=12).price == 12.0 and isinstance(Product(id="p1", price=12).price, float)
    assert validate_price(None) is None and validate_price(0) == 0.0


@pytest.mark.parametrize("pid", BLANK_IDS)
def test_blank_ids_in_a_csv_are_reported_with_their_line(tmp_path: Path, pid: str) -> None:
    csv_path = tmp_path / "products.csv"
    csv_path.write_text(f"id,title\nok1,first\n{pid},second\n", encoding="utf-8")
    rows = read_csv(csv_path)
    assert next(rows).product.id == "ok1"
    with pytest.raises(SourceError, match="line 3: product id"):
        next(rows)


@pytest.mark.parametrize("price", ["nan", "inf", "-Infinity"])
def test_non_finite_prices_in_a_csv_are_reported_with_their_line(tmp_path: Path, price: str) -> None:
    csv_path = tmp_path / "products.csv"
    csv_path.write_text(f"id,title,price\nok1,first,10\nok2,second,{price}\n", encoding="utf-8")
    rows = read_csv(csv_path)
    assert next(rows).product.price == 10.0
    bad = next(rows)  # that row's error: the ingest reports it and goes on
    assert bad.product.id == "ok2" and bad.error is not None and re.search(r"line 3.*finite", bad.error)


@pytest.mark.parametrize("stem", ["\u3000", " ", "\u00a0"])
def test_blank_file_names_in_a_folder_are_reported(tmp_path: Path, stem: str) -> None:
    (tmp_path / f"{stem}.jpg").write_bytes(_jpeg())
    with pytest.raises(SourceError, match="product id"):
        list(read_folder(tmp_path))


def test_api_upsert_of_a_blank_id_is_422_and_writes_no_picture(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lookalike.service import create_app
    from lookalike.service.settings import ServiceSettings

    path = tmp_path / "cat"
    Catalog.create(path, extractor="colour-histogram").close()
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[])
    app = create_app(path, settings)

    def pictures() -> list[Path]:
        return [p for p in path.rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]

    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for pid in (" ", "\u00a0", "\u3000", "\x85"):
            resp = client.post("/api/products", data={"id": pid}, files={"image": ("p.jpg", _jpeg(), "image/jpeg")})
            assert resp.status_code == 422, (pid, resp.status_code, resp.text)
            assert "product id" in resp.json()["detail"]
        assert pictures() == []
        ok = client.post("/api/products", data={"id": "real"}, files={"image": ("p.jpg", _jpeg(), "image/jpeg")})
        assert ok.status_code == 201, ok.text
        assert len(pictures()) == 1  # a stored picture is seen
        assert client.get("/api/products").json()["total"] == 1
