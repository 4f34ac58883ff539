"""Issue 26 on Milvus: ``lookalike reindex NAME --backend milvus`` builds the next generation in a collection of its
own (``NAME__g<n>``) and switches by moving the alias ``NAME``; the gate, writes caught up (before the swap and
right after it), rollback, gc, a plain collection adopted (and an adoption cut short), a server following the swap.
On the session's Milvus Lite database (``milvus_uri``); one run on the 2.3 server where it can start."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lookalike import Catalog
from lookalike.backends.milvus_alias import (
    GuardedMilvusBackend,
    alias_target,
    generation_collections,
    previous_alias,
    resolve,
)
from lookalike.backends.milvus_client import connect
from lookalike.catalog import milvus_reindex as mx
from lookalike.errors import CatalogError, CatalogNotFoundError, CatalogSwitchedError
from lookalike.product import Product
from tests.conftest import PHOTOS, PRODUCTS_DIR, run_cli
from tests.reindex_helpers import HIST, LITE0, ingested, write_gate_csv

PICTURE = PRODUCTS_DIR / "images" / "10773.jpg"


def _catalogue(uri: str, model: str = HIST, **kwargs: Any) -> str:
    """A new plain Milvus catalogue of the 16 test products; its name."""
    name = f"shop_{uuid.uuid4().hex[:10]}"
    ingested(name, model, backend="milvus", uri=uri, **kwargs)
    return name


def _open(name: str, uri: str, **kwargs: Any) -> Catalog:
    return Catalog.open(name, backend="milvus", uri=uri, **kwargs)


def _served(name: str, uri: str) -> tuple[str, str, int]:
    """(the collection the name names, its model, its products) as a fresh open sees them."""
    with _open(name, uri) as cat:
        return cat.backend.collection, cat.extractor_name, len(cat)  # type: ignore[attr-defined]


@pytest.fixture()
def client(milvus_uri: str) -> Iterator[Any]:
    c = connect(milvus_uri, create=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def gate_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gate_csv(tmp_path_factory.mktemp("gate") / "gate.csv")


# --- build and switch ---------------------------------------------------------------------------------------
def test_reindex_adopts_a_plain_collection_builds_the_next_and_swaps_the_alias(milvus_uri: str, client: Any) -> None:
    name = _catalogue(milvus_uri)
    with _open(name, milvus_uri) as before:
        pictures, old_dim = before.images_dir, before.dim
    assert resolve(client, name) == name  # a plain collection, as every catalogue made before
    seen: list[tuple[int, int]] = []
    result = mx.reindex(name, LITE0, uri=milvus_uri, progress=lambda d, t: seen.append((d, t)), tail_s=0)
    assert result.switched and (result.generation, result.previous) == (1, 0) and result.model == LITE0
    assert result.build.embedded == 16 and not result.build.failed and seen[-1] == (16, 16)
    assert resolve(client, name) == f"{name}__g1" and alias_target(client, previous_alias(name)) == f"{name}__g0"
    assert generation_collections(client, name) == {0: f"{name}__g0", 1: f"{name}__g1"}
    with _open(name, milvus_uri) as cat:
        assert cat.extractor_name == LITE0 and len(cat) == 16 and cat.manifest["generation"] == 1
        assert cat.dim == cat.extractor.dim != old_dim  # the new model's vectors
        assert cat.images_dir == pictures  # the picture folder is shared, not copied
        assert cat.search(PICTURE, k=1)[0].id == "10773"
        assert str(cat.get("13466").title).startswith("United Colors")
    with _open(f"{name}__g0", milvus_uri) as old:  # kept for a rollback, whole
        assert old.extractor_name == HIST and len(old) == 16


def test_a_catalogue_open_before_the_swap_keeps_its_model_and_its_writes_fail(milvus_uri: str) -> None:
    name = _catalogue(milvus_uri)
    first = mx.reindex(name, LITE0, uri=milvus_uri, switch_to=False)  # adopts, builds, does not switch
    assert not first.switched and first.reason == "not asked to switch" and first.build.embedded == 16
    with _open(name, milvus_uri) as old:
        assert old.backend.collection == f"{name}__g0"  # type: ignore[attr-defined]
        again = mx.reindex(name, LITE0, uri=milvus_uri, tail_s=0)  # resumes: nothing to embed again
        assert again.switched and again.generation == 1 and again.build.embedded == 0
        assert old.search(PICTURE, k=1)[0].id == "10773"  # still its own collection, its own model
        with pytest.raises(CatalogSwitchedError, match="open it again"):
            old.upsert(Product(id="late", title="Late"), PHOTOS / "shoes.jpg")
        with pytest.raises(CatalogSwitchedError):
            old.delete(["10773"])
    assert _served(name, milvus_uri) == (f"{name}__g1", LITE0, 16)
    with _open(f"{name}__g0", milvus_uri) as g0:
        assert g0.store.get("late") is None and g0.store.get("10773") is not None  # nothing written


def test_writes_during_the_build_and_right_after_the_swap_are_caught_up(
    milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _catalogue(milvus_uri)
    done: list[bool] = []

    def write(_done: int, _total: int) -> None:  # while the build runs: through the name (the serving collection)
        if not done:
            done.append(True)
            with _open(name, milvus_uri) as cat:
                cat.upsert(Product(id="new-1", title="New bag", article_type="Handbags"), PHOTOS / "shoes.jpg")
                cat.delete(["10773"])
                cat.upsert(Product(**{**cat.get("13466").to_dict(), "title": "Renamed"}))

    def slipped(_seconds: float) -> None:  # after the swap: a writer that passed its check just before it
        with _open(f"{name}__g0", milvus_uri, images_dir=pictures) as old:
            old.upsert(Product(id="new-2", title="Late bag", article_type="Handbags"), PHOTOS / "tshirt.jpg")
            old.upsert(Product(**{**old.get("19675").to_dict(), "title": "Late rename"}))

    with _open(name, milvus_uri) as cat:
        pictures = cat.images_dir
    monkeypatch.setattr(mx, "_wait", slipped)
    result = mx.reindex(name, LITE0, uri=milvus_uri, progress=write)
    assert result.switched and done and result.final is not None
    assert result.final.embedded >= 1 and result.final.updated >= 1, result.final.to_dict()
    with _open(name, milvus_uri) as new:
        assert new.extractor_name == LITE0 and len(new) == 17  # 16 + 2 added - 1 deleted
        assert new.store.get("10773") is None and new.get("13466").title == "Renamed"
        assert new.get("new-1").title == "New bag" and new.get("19675").title == "Late rename"
        assert new.search(PHOTOS / "tshirt.jpg", k=3)[0].id == "new-2"  # embedded with the new model


# --- the gate, rollback, gc -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_gate_refuses_a_worse_model_and_gc_drops_what_it_built(
    milvus_uri: str, client: Any, gate_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _catalogue(milvus_uri, LITE0)
    where = ("--backend", "milvus", "--uri", milvus_uri)
    code, out, _ = run_cli(capsys, "reindex", name, *where, "--model", HIST, "--gate", gate_csv, "-q", "--nice", "0")
    assert code == 1 and "not switched" in out and "worse" in out, out
    assert _served(name, milvus_uri) == (f"{name}__g0", LITE0, 16)  # adopted, still the same rows and model
    assert generation_collections(client, name) == {0: f"{name}__g0", 1: f"{name}__g1"}  # kept for inspection
    code, out, _ = run_cli(capsys, "gc", name, *where)
    assert code == 0 and "removed generation(s) 1" in out, out
    assert generation_collections(client, name) == {0: f"{name}__g0"}
    assert not client.has_collection(f"{name}__g1__lookalike_errors")


def test_rollback_returns_with_the_writes_made_since_and_gc_keeps_the_previous(
    milvus_uri: str, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _catalogue(milvus_uri)
    where = ("--backend", "milvus", "--uri", milvus_uri)
    code, out, _ = run_cli(capsys, "reindex", name, *where, "--model", LITE0, "-q", "--nice", "0")
    assert code == 0 and "switched: generation 1 serves (untested: no --gate)" in out, out
    with _open(name, milvus_uri) as cat:  # a write to the new generation
        cat.upsert(Product(id="new-1", title="New bag", article_type="Handbags"), PHOTOS / "shoes.jpg")
    code, out, _ = run_cli(capsys, "reindex", name, *where, "--rollback")
    assert code == 0 and "generation 0 serves again" in out, out
    assert _served(name, milvus_uri) == (f"{name}__g0", HIST, 17)
    assert alias_target(client, previous_alias(name)) == f"{name}__g1"
    with _open(name, milvus_uri) as cat:
        assert cat.search(PHOTOS / "shoes.jpg", k=1)[0].id == "new-1"  # embedded with the histogram
    code, out, _ = run_cli(capsys, "gc", name, *where)
    assert code == 0 and "no generation to remove" in out  # the previous one is kept
    assert mx.rollback(name, uri=milvus_uri, tail_s=0).target == 1  # and back again
    code, out, _ = run_cli(capsys, "gc", name, *where, "--all", "--json")
    assert code == 0 and json.loads(out) == {"removed": [0]}, out
    assert generation_collections(client, name) == {1: f"{name}__g1"}
    assert alias_target(client, previous_alias(name)) is None
    assert not client.has_collection(f"{name}__g0__lookalike_errors")
    with pytest.raises(CatalogError, match="no previous generation"):
        mx.rollback(name, uri=milvus_uri)
    assert _served(name, milvus_uri) == (f"{name}__g1", LITE0, 17)


# --- plain collections ------------------------------------------------------------------------------------------
def test_a_plain_collection_opens_and_takes_writes_as_before(milvus_uri: str) -> None:
    name = _catalogue(milvus_uri)
    with _open(name, milvus_uri) as cat:
        assert isinstance(cat.backend, GuardedMilvusBackend) and cat.backend.collection == name
        cat.upsert(Product(id="new-1", title="New bag"), PHOTOS / "shoes.jpg")
        assert cat.delete(["10773"]) == 1 and len(cat) == 16
        assert cat.search(PICTURE, k=1)[0].id != "10773"
    assert mx.gc(name, uri=milvus_uri) == []
    with pytest.raises(CatalogError, match="no previous generation"):
        mx.rollback(name, uri=milvus_uri)
    assert _served(name, milvus_uri) == (name, HIST, 16)  # neither made it an alias


def test_an_adoption_cut_short_between_rename_and_alias_is_finished(milvus_uri: str, client: Any) -> None:
    from lookalike.backends.milvus_alias import GENERATION_OF

    name = _catalogue(milvus_uri)
    client.alter_collection_properties(name, {GENERATION_OF: name})
    client.rename_collection(name, f"{name}__g0")  # what adopt() does before its alias: then killed
    with pytest.raises(CatalogNotFoundError):
        _open(name, milvus_uri)
    assert mx.gc(name, uri=milvus_uri) == []  # any operation finishes it
    assert _served(name, milvus_uri) == (f"{name}__g0", HIST, 16)


# --- a server follows the swap ----------------------------------------------------------------------------------
def test_a_running_server_follows_the_swap_and_the_rollback(milvus_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from lookalike.service import live
    from lookalike.service.app import create_app
    from lookalike.service.settings import ServiceSettings

    monkeypatch.setattr(live, "POLL_S", 0.1)
    name = _catalogue(milvus_uri)
    settings = ServiceSettings(backend="milvus", milvus_uri=milvus_uri)

    def serving(http: TestClient, model: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = http.get("/healthz").json()
            if body["extractor"] == model:
                return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"the server still serves {body}")

    with TestClient(create_app(name, settings)) as http:
        assert serving(http, HIST)["generation"] == 0
        assert mx.reindex(name, LITE0, uri=milvus_uri, tail_s=0).switched
        assert serving(http, LITE0) == {**serving(http, LITE0), "generation": 1, "products": 16}
        found = http.post("/api/search", files={"image": ("p.jpg", PICTURE.read_bytes(), "image/jpeg")})
        assert found.status_code == 200 and found.json()["hits"][0]["id"] == "10773"
        mx.rollback(name, uri=milvus_uri, tail_s=0)
        assert serving(http, HIST)["generation"] == 0
        assert http.get("/api/products/10773").status_code == 200


# --- a real server ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_reindex_rollback_and_gc_on_a_milvus_server(milvus_server_uri: str, tmp_path: Path) -> None:
    uri, pictures = milvus_server_uri, tmp_path / "pictures"
    name = _catalogue(uri, index_type="FLAT", images_dir=pictures)
    result = mx.reindex(name, LITE0, uri=uri, images_dir=pictures, tail_s=0)
    assert result.switched and result.build.embedded == 16
    with _open(name, uri, images_dir=pictures) as cat:
        assert cat.extractor_name == LITE0 and len(cat) == 16
        assert cat.search(PICTURE, k=1)[0].id == "10773"
    assert mx.rollback(name, uri=uri, images_dir=pictures, tail_s=0).target == 0
    with _open(name, uri, images_dir=pictures) as cat:
        assert cat.extractor_name == HIST and cat.search(PICTURE, k=1)[0].id == "10773"
    assert mx.gc(name, uri=uri, images_dir=pictures, keep_previous=False) == [1]
