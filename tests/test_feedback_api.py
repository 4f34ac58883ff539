"""Feedback through the REST API (JSON and repeated multipart fields) and the CLI (``--like`` / ``--unlike``),
with their bad input: unknown ids 404 naming them, too many ids or one id in both lists 422, a product deleted
between rounds ignored and reported, empty lists a plain search (issue 24)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.service import ServiceSettings, create_app
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data"
PHOTO = DATA / "photos" / "tshirt.jpg"


@pytest.fixture(scope="module")
def served(built_catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """The 16 test products served from a copy (a test deletes one), and the copy's folder."""
    built_catalog.checkpoint()
    copy = tmp_path_factory.mktemp("feedback") / "cat"
    shutil.copytree(built_catalog.path, copy)
    settings = ServiceSettings(default_k=5, max_k=20, allow_private_urls=False, cors_origins=[])
    with TestClient(create_app(copy, settings)) as client:
        yield client, copy


def _upload(client: TestClient, fields: list[tuple[str, str]]) -> Any:
    """A multipart search with the photo and ``fields`` (a name given twice: the field repeated)."""
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    files = {"image": ("tshirt.jpg", PHOTO.read_bytes(), "image/jpeg")}
    return client.post("/api/search", files=files, data=data)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [h["id"] for h in response.json()["hits"]]


def test_json_feedback_on_a_product_search(served) -> None:
    client, _ = served
    plain = _ids(client.post("/api/search", json={"product_id": "18990", "k": 15}))
    body = {"product_id": "18990", "k": 15, "positive": [plain[-1]], "negative": [plain[0]]}
    steered = _ids(client.post("/api/search", json=body))
    assert steered[0] == plain[-1] and steered[-1] == plain[0]


def test_json_more_like_these_alone(served) -> None:
    client, _ = served
    r = client.post("/api/search", json={"positive": ["16520", "11237"], "k": 3})
    assert r.json()["query"]["type"] == "feedback"
    assert set(_ids(r)[:2]) == {"16520", "11237"}
    assert r.json()["colour"]["source"] in ("liked", None)


def test_repeated_multipart_fields_carry_the_feedback(served) -> None:
    client, _ = served
    plain = _ids(_upload(client, [("k", "16")]))
    fields = [("k", "16"), ("positive", plain[4]), ("positive", plain[6]), ("negative", plain[0])]
    steered = _ids(_upload(client, fields))
    assert set(steered[:2]) == {plain[4], plain[6]} and steered[-1] == plain[0]


def test_empty_lists_are_a_plain_search(served) -> None:
    client, _ = served
    plain = _ids(client.post("/api/search", json={"product_id": "18990"}))
    assert _ids(client.post("/api/search", json={"product_id": "18990", "positive": [], "negative": []})) == plain
    assert _ids(_upload(client, [("positive", ""), ("negative", "")])) == _ids(_upload(client, []))


def test_unknown_ids_are_404_naming_them(served) -> None:
    client, _ = served
    r = client.post("/api/search", json={"product_id": "18990", "positive": ["nope"], "negative": ["gone"]})
    assert r.status_code == 404 and "'nope'" in r.json()["detail"] and "'gone'" in r.json()["detail"]
    r = _upload(client, [("positive", "nope")])
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"product_id": "18990", "positive": [f"p{i}" for i in range(101)]},
        {"product_id": "18990", "positive": [f"p{i}" for i in range(60)], "negative": [f"n{i}" for i in range(41)]},
        {"product_id": "18990", "positive": ["16520"], "negative": ["16520"]},
        {"negative": ["16520"]},
        {"product_id": "18990", "positive": "16520x" * 50},
    ],
)
def test_bad_feedback_is_422(served, body: dict) -> None:
    client, _ = served
    assert client.post("/api/search", json=body).status_code == 422


def test_too_many_multipart_ids_are_422(served) -> None:
    client, _ = served
    r = _upload(client, [("negative", f"n{i}") for i in range(101)])
    assert r.status_code == 422, r.text
    r = _upload(client, [("positive", "16520"), ("negative", "16520")])
    assert r.status_code == 422 and "liked and disliked" in r.json()["detail"]


def test_a_product_deleted_between_rounds_is_ignored_and_reported(served) -> None:
    from lookalike import Catalog

    client, path = served
    first = _ids(client.post("/api/search", json={"product_id": "17831", "k": 4}))
    with Catalog.open(path) as cat:
        cat.delete([first[1]])
    body = {"product_id": "17831", "k": 4, "positive": [first[0]], "negative": [first[1]]}
    assert client.post("/api/search", json=body).status_code == 404  # unknown now, unless told to ignore
    r = client.post("/api/search", json={**body, "ignore_missing": True})
    assert r.json()["ignored"] == [first[1]] and _ids(r)[0] == first[0]


def test_the_openapi_schema_lists_the_feedback_fields(served) -> None:
    client, _ = served
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("SearchRequest", "SearchUpload"):
        props = schemas[name]["properties"]
        assert props["positive"]["maxItems"] == 100 and "ignore_missing" in props


# --- CLI --------------------------------------------------------------------------------------------
def test_cli_like_and_unlike(built_catalog, capsys: pytest.CaptureFixture[str]) -> None:
    path = built_catalog.path
    code, out, _ = run_cli(capsys, "search", path, PHOTO, "-k", "16", "--json")
    plain = [h["id"] for h in json.loads(out)["hits"]]
    args = ["--like", plain[3], "--like", plain[5], "--unlike", plain[0]]
    code, out, err = run_cli(capsys, "search", path, PHOTO, "-k", "16", "--json", *args)
    assert code == 0, err
    steered = [h["id"] for h in json.loads(out)["hits"]]
    assert set(steered[:2]) == {plain[3], plain[5]} and steered[-1] == plain[0]
    code, out, err = run_cli(capsys, "search", path, "--like", "16520", "-k", "2", "--json")  # alone
    assert code == 0, err and json.loads(out)["hits"][0]["id"] == "16520"


def test_cli_refuses_unknown_ids(built_catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "search", built_catalog.path, PHOTO, "--unlike", "nope")
    assert code != 0 and "nope" in err
