"""Several pictures per product (issue 21): one vector per picture, one hit per product at its best picture,
the matched picture named, stock, partial failures, picture changes, and an earlier release's catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike import Catalog, read_csv
from lookalike.errors import InvalidQueryError, ProductNotFoundError
from lookalike.product import Filters

DATA = Path(__file__).parent / "data"
IMAGES = DATA / "exports" / "images"
IDS = ["10003", "10016", "10051", "10127", "10438", "10196"]


def _csv(
    tmp_path: Path, rows: list[str], header: str = "id,title,colour,image,additional_image_link,availability"
) -> Path:
    path = tmp_path / "shop.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _two_pictures(tmp_path: Path) -> Path:
    stock = ["in stock", "out of stock", "in stock", "", "in stock", "out of stock"]
    rows = [f"{i},Product {i},,{IMAGES}/{i}.jpg,{IMAGES}/{i}_2.jpg,{s}" for i, s in zip(IDS, stock, strict=True)]
    return _csv(tmp_path, rows)


@pytest.fixture()
def shop(tmp_path: Path, lite0) -> Catalog:
    cat = Catalog.create(tmp_path / "cat", extractor=lite0)
    report = cat.ingest(read_csv(_two_pictures(tmp_path)))
    assert report.added == 6 and not report.failed and report.embedded == 12
    yield cat
    cat.close()


def test_every_picture_is_stored_and_the_main_one_stays_first(shop: Catalog) -> None:
    product = shop.get("10051")
    assert [Path(p).name for p in product.images] == ["10051.jpg", "10051_2.jpg"]
    assert Path(product.image).name == "10051.jpg"
    assert shop.info()["pictures"] == 12 and shop.info()["products"] == 6
    assert shop.verify()["ok"] and shop.verify()["vectors"] == 12
    assert shop.image_path("10051", 1).read_bytes() == (IMAGES / "10051_2.jpg").read_bytes()


def test_a_second_picture_finds_its_product_first_and_says_which_matched(shop: Catalog) -> None:
    for pid in IDS:
        hits = shop.search(IMAGES / f"{pid}_2.jpg", k=6, colour_rank=False)
        assert hits[0].id == pid and hits[0].matched_image == 1 and hits[0].score == pytest.approx(1.0, abs=1e-4)
        main = shop.search(IMAGES / f"{pid}.jpg", k=6)
        assert main[0].id == pid and main[0].matched_image == 0


def test_each_product_comes_back_once_scored_by_its_best_picture(shop: Catalog) -> None:
    query = shop.query_vectors(IMAGES / "10127_2.jpg")
    hits = shop.search(IMAGES / "10127_2.jpg", k=6, colour_rank=False)
    assert len({h.id for h in hits}) == len(hits) == 6
    for hit in hits:
        vecs = shop.backend.picture_vectors_of([hit.id])[hit.id]
        best = (vecs @ query.T).max()  # the best picture under the best view (picture or mirror image)
        assert hit.score == pytest.approx(float(best), abs=1e-4)
        assert hit.matched_image == int((vecs @ query.T).max(axis=1).argmax())


def test_more_like_this_searches_with_every_picture(shop: Catalog) -> None:
    hits = shop.search(product_id="10003", k=5, colour_rank=False)
    assert "10003" not in [h.id for h in hits] and len(hits) == 5
    vecs = shop.backend.picture_vectors_of(["10003"])["10003"]
    for hit in hits:
        theirs = shop.backend.picture_vectors_of([hit.id])[hit.id]
        assert hit.score == pytest.approx(float((vecs @ theirs.T).max()), abs=1e-4)


def test_stock_is_read_filtered_and_counted(shop: Catalog) -> None:
    assert shop.get("10003").in_stock is True and shop.get("10016").in_stock is False
    assert shop.get("10127").in_stock is None
    in_stock = {h.id for h in shop.search(IMAGES / "10016.jpg", k=6, filters=Filters(in_stock=True))}
    assert in_stock == {"10003", "10051", "10127", "10438"}  # unknown stock stays
    assert shop.count(Filters(in_stock=False)) == 2
    assert dict(shop.facets()["in_stock"]) == {True: 3, False: 2}


def test_a_product_keeps_the_pictures_that_can_be_read(tmp_path: Path, lite0) -> None:
    rows = [
        f"p1,Some missing,,{IMAGES}/10003.jpg,{tmp_path}/missing.jpg,",
        f"p2,All missing,,{tmp_path}/gone.jpg,{tmp_path}/gone2.jpg,",
        f"p3,Twice the same,,{IMAGES}/10016.jpg,{IMAGES}/10016.jpg|{IMAGES}/10016_2.jpg,",
    ]
    with Catalog.create(tmp_path / "cat", extractor=lite0) as cat:
        report = cat.ingest(read_csv(_csv(tmp_path, rows)))
        assert report.added == 2 and [f[0] for f in report.failed] == ["p2"]
        assert [(i, Path(s).name) for i, s, _ in report.partial] == [("p1", "missing.jpg")]
        assert [Path(p).name for p in cat.get("p1").images] == ["10003.jpg"]
        assert [Path(p).name for p in cat.get("p3").images] == ["10016.jpg", "10016_2.jpg"]
        errors = {e["id"]: e for e in cat.backend.errors()}
        assert set(errors) == {"p1", "p2"} and "missing.jpg" in errors["p1"]["image"]
        again = cat.ingest(read_csv(_csv(tmp_path, rows)))  # the good one unchanged; the missing still missing
        assert again.added == 0 and [f[0] for f in again.failed] == ["p2"]


def test_an_unchanged_product_is_skipped_and_a_new_picture_re_embeds_it(shop: Catalog, tmp_path: Path) -> None:
    assert shop.ingest(read_csv(_two_pictures(tmp_path))).unchanged == 6
    rows = [f"10003,Product 10003,,{IMAGES}/10003.jpg,{IMAGES}/10003_2.jpg|{IMAGES}/10016.jpg,in stock"]
    report = shop.ingest(read_csv(_csv(tmp_path, rows)))
    assert report.updated == 1 and report.embedded == 3
    assert len(shop.get("10003").images) == 3 and shop.verify()["ok"]
    rows = [f"10003,Product 10003,,{IMAGES}/10003.jpg,,in stock"]  # back to one picture: the others go
    shop.ingest(read_csv(_csv(tmp_path, rows)))
    assert len(shop.backend.picture_vectors_of(["10003"])["10003"]) == 1 and shop.verify()["ok"]


def test_pictures_are_added_and_removed_one_at_a_time(shop: Catalog) -> None:
    assert shop.add_picture("10051", IMAGES / "10196.jpg") == 2
    assert shop.add_picture("10051", IMAGES / "10196.jpg") == 2  # the same picture again: nothing new
    hits = shop.search(IMAGES / "10196.jpg", k=2, colour_rank=False)
    assert {h.id for h in hits} == {"10051", "10196"}
    shop.remove_picture("10051", 0)  # the main picture goes: the next becomes the main one
    assert Path(shop.get("10051").image).name == "10051_2.jpg" and len(shop.get("10051").images) == 2
    assert shop.verify()["ok"]
    with pytest.raises(ProductNotFoundError):
        shop.remove_picture("10051", 7)
    shop.remove_picture("10051", 1)
    with pytest.raises(InvalidQueryError):
        shop.remove_picture("10051", 0)  # the last one stays


def test_a_catalogue_of_the_earlier_release_opens_upgraded(tmp_path: Path) -> None:
    shutil.copytree(DATA / "old-catalog" / "cat", tmp_path / "old")
    with Catalog.open(tmp_path / "old") as cat:
        assert len(cat) == 6 and cat.verify()["ok"] and cat.info()["pictures"] == 6
        first = cat.get("13466")
        hits = cat.search(DATA / "products" / "images" / "13466.jpg", k=3)
        assert hits[0].id == "13466" and hits[0].matched_image == 0
        assert cat.search(product_id="13466", k=2)[0].id != "13466"
        position = cat.add_picture("13466", DATA / "products" / "images" / "19675.jpg")
        assert position == 1 and cat.verify()["ok"] and first.title == cat.get("13466").title
    with Catalog.open(tmp_path / "old") as cat:  # and again, with the index checkpoint of the new layout
        assert cat.verify()["ok"] and len(cat.get("13466").images) == 2


def test_both_backends_agree_on_products_with_several_pictures(tmp_path: Path, catalog_maker) -> None:
    rows = [f"{i},Product {i},,{IMAGES}/{i}.jpg,{IMAGES}/{i}_2.jpg,in stock" for i in IDS]
    source = _csv(tmp_path, rows)
    found = {}
    for backend in ("embedded", "milvus"):
        cat = catalog_maker(backend).create("pics")
        try:
            assert cat.ingest(read_csv(source)).added == 6
            runs = []
            for pid in IDS:
                hits = cat.search(IMAGES / f"{pid}_2.jpg", k=4, colour_rank=False)
                runs.append([(h.id, h.matched_image, round(h.score, 4)) for h in hits])
            runs.append([(h.id, h.matched_image) for h in cat.search(product_id="10003", k=4, colour_rank=False)])
            found[backend] = (runs, cat.count(Filters(in_stock=True)), len(cat.get("10051").images))
        finally:
            cat.close()
    assert found["embedded"] == found["milvus"]
    assert np.all([r[0][0] == pid for r, pid in zip(found["embedded"][0], IDS, strict=False)])


def test_the_api_lists_serves_adds_and_removes_pictures(shop: Catalog) -> None:
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceSettings, create_app

    path = shop.path
    shop.close()
    settings = ServiceSettings(admin_token="t" * 32, allow_private_urls=False)
    auth = {"Authorization": "Bearer " + "t" * 32}
    with TestClient(create_app(path, settings)) as api:
        product = api.get("/api/products/10051").json()
        assert product["images"] == ["/api/products/10051/image", "/api/products/10051/images/1"]
        assert product["in_stock"] is True
        assert api.get("/api/products/10051/images/1").content == (IMAGES / "10051_2.jpg").read_bytes()
        assert api.get("/api/products/10051/images/5").status_code == 404
        with (IMAGES / "10051_2.jpg").open("rb") as fh:
            found = api.post("/api/search", files={"image": ("q.jpg", fh, "image/jpeg")}, data={"k": "3"}).json()
        assert found["hits"][0]["id"] == "10051" and found["hits"][0]["matched_image"] == 1
        assert found["hits"][0]["matched_image_url"] == "/api/products/10051/images/1"
        stocked = api.post("/api/search", json={"product_id": "10003", "k": 6, "filters": {"in_stock": True}}).json()
        assert {h["id"] for h in stocked["hits"]} == {"10051", "10127", "10438"}
        with (IMAGES / "10196.jpg").open("rb") as fh:
            added = api.post("/api/products/10051/images", files={"image": ("x.jpg", fh, "image/jpeg")}, headers=auth)
        assert added.status_code == 201 and len(added.json()["images"]) == 3
        assert api.post("/api/products/10051/images", files={"image": ("x.jpg", b"x", "image/jpeg")}).status_code in (
            401,
            403,
        )
        gone = api.delete("/api/products/10051/images/0", headers=auth)
        assert gone.status_code == 200 and len(gone.json()["images"]) == 2
        assert api.delete("/api/products/10051/images/9", headers=auth).status_code == 404
        assert api.get("/api/facets").json()["in_stock"] == [[True, 3], [False, 2]]
        out_of_stock = api.get("/api/products", params={"in_stock": "false"}).json()["items"]
        assert [p["id"] for p in out_of_stock] == ["10016", "10196"]


def test_migrate_copies_every_picture(shop: Catalog, catalog_maker) -> None:
    from lookalike.migrate import migrate

    dst = catalog_maker("milvus").create("moved", extractor=shop.extractor)
    try:
        report = migrate(shop, dst)
        assert report.copied == 6 and dst.info()["products"] == 6
        assert len(dst.backend.picture_vectors_of(["10051"])["10051"]) == 2
        hit = dst.search(IMAGES / "10051_2.jpg", k=1, colour_rank=False)[0]
        assert hit.id == "10051" and hit.matched_image == 1
        assert dst.image_path("10051", 1).read_bytes() == (IMAGES / "10051_2.jpg").read_bytes()
    finally:
        dst.close()
