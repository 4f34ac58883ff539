"""Issue 23 item 8: the OpenAPI schema says what the server does (Schemathesis ST201/ST202; the live run is
tests/test_schemathesis.py). Here, the cases the issue names, each checked directly."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike import Catalog, read_csv
from lookalike.colour.families import family_index, known_names
from lookalike.service import ServiceSettings, create_app
from lookalike.service.patterns import WORDS_PATTERN, colour_pattern

from .conftest import PRODUCTS_CSV

TOKEN = "strict-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("strict") / "cat"
    with Catalog.create(path, extractor="colour-histogram") as cat:
        cat.ingest(read_csv(PRODUCTS_CSV), batch_size=8)
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[], default_k=5, max_k=20)
    with TestClient(create_app(path, settings)) as c:
        yield c


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_an_empty_price_range_matches_nothing_instead_of_422(client: TestClient) -> None:
    empty = {"min_price": 50, "max_price": 10}
    page = client.get("/api/products", params=empty)
    assert page.status_code == 200 and page.json()["total"] == 0
    facets = client.get("/api/facets", params=empty)
    assert facets.status_code == 200 and facets.json()["price"] is None
    similar = client.get("/api/products/13466/similar", params=empty)
    assert similar.status_code == 200 and similar.json()["hits"] == []
    found = client.post("/api/search", json={"product_id": "13466", "filters": empty})
    assert found.status_code == 200 and found.json()["hits"] == []


def test_multipart_null_is_a_field_not_given(client: TestClient) -> None:
    files = {"image": ("p.jpg", jpeg(), "image/jpeg")}
    r = client.post("/api/products", data={"id": "nullish", "title": "null", "category": "null"}, files=files,
                    headers=ADMIN)  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["product"]["title"] is None and r.json()["product"]["category"] is None
    r = client.post("/api/products", data={"id": "13466", "title": "null", "image": "null"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["product"]["title"] == "United Colors of Benetton Men Stripes Blue Tshirts"  # kept
    r = client.post("/api/search", data={"k": "3", "collapse": "null", "prefer_colour": "null", "text": "null"},
                    files={"image": ("q.jpg", jpeg(), "image/jpeg")})  # fmt: skip
    assert r.status_code == 200, r.text


def test_the_colour_preference_pattern_is_the_servers_rule(client: TestClient) -> None:
    pattern = colour_pattern()
    spellings = [s for n in known_names() for s in (n, n.upper(), n.title().replace(" ", "_"), f" {n}-")]
    for text in [*spellings, "rouge", "reds", "navyblue", "-red", "bleu", "red!", "multi colour"]:
        assert bool(re.match(pattern, text)) == (family_index(text) >= 0), text
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["SearchRequest"]["properties"]["colour"]["pattern"] == pattern
    assert client.post("/api/search", json={"product_id": "13466", "colour": "rouge"}).status_code == 422
    assert client.post("/api/search", json={"product_id": "13466", "colour": " NAVY_blue"}).status_code == 200


def test_the_words_pattern_is_the_servers_rule(client: TestClient) -> None:
    for text in ["in red", "a\rb", "tab\tin", " ", "\u00a0", "ok\u00a0", "x\x85"]:
        allowed = bool(re.match(WORDS_PATTERN, text))
        r = client.post("/api/search", json={"text": text, "k": 2})
        assert (r.status_code == 200) == allowed, (text, r.status_code, r.text)


def _responses(schema: dict[str, Any], method: str, path: str) -> set[str]:
    return set(schema["paths"][path][method]["responses"])


def test_the_schema_documents_limits_and_full_disk(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "507" in _responses(schema, "post", "/api/products")
    assert "507" in _responses(schema, "delete", "/api/products/{product_id}")
    assert "507" not in _responses(schema, "post", "/api/search")
    k = schema["components"]["schemas"]["SearchRequest"]["properties"]["k"]["anyOf"][0]
    assert k["maximum"] == 20
    assert client.post("/api/search", json={"product_id": "13466", "k": 20}).status_code == 200
    assert client.post("/api/search", json={"product_id": "13466", "k": 21}).status_code == 422
    (values,) = [
        b
        for b in schema["components"]["schemas"]["FiltersIn"]["properties"]["colour"]["anyOf"]
        if b.get("type") == "array"
    ]
    assert values["maxItems"] == 50 and values["items"]["maxLength"] == 200
    many = client.get("/api/products", params={"colour": [""] * 51})  # counted as sent, empty values too
    assert many.status_code == 422


def test_product_form_ids_follow_the_one_rule(client: TestClient) -> None:
    form = client.get("/openapi.json").json()["components"]["schemas"]["ProductForm"]["properties"]["id"]
    for pid in ["a/b", "x y", " ", "a\x00b", "tab\t"]:
        assert bool(re.match(form["pattern"], pid)) == (pid.strip() != "" and pid.isprintable()), pid
    assert form["not"] == {"enum": [".", ".."]}
