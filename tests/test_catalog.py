from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import Catalog, Filters, Hit, Product, read_csv, read_folder
from lookalike.catalog.prepare import normalise as _normalise
from lookalike.catalog.ranking import DEFAULT_STAGES, EXACT_SIMILARITY, QueryContext, merge_views, rank
from lookalike.colour import family_of
from lookalike.colour.ranking import DEFAULT_KIND_WEIGHT
from lookalike.errors import (
    CatalogError,
    CatalogExistsError,
    CatalogNotFoundError,
    InvalidQueryError,
    ModelMismatchError,
    ProductNotFoundError,
    SourceError,
)
from lookalike.extractors.base import PreprocessCfg
from lookalike.index import FaissIndex, FlatIndex

from .conftest import BACKENDS, PHOTOS, PRODUCTS_CSV, PRODUCTS_DIR, CatalogMaker


# --- catalogues on both backends ------------------------------------------------------------------
# Tests of catalogue behaviour take `catalogs`, `built_catalog` or `new_catalog` and run once on the
# embedded backend (SQLite + FAISS) and once on Milvus (Milvus Lite, one server for the session).
# Tests of embedded internals (FAISS checkpoints, SIGKILL) build their catalogues themselves.
@pytest.fixture(scope="module", params=BACKENDS)
def catalogs(request, catalog_maker) -> CatalogMaker:
    return catalog_maker(request.param)


@pytest.fixture(scope="module")
def built_catalog(catalogs, lite0):
    """A read-mostly catalogue of the 16 test products, on each backend."""
    cat = catalogs.create("shared", extractor=lite0)
    report = cat.ingest(read_csv(PRODUCTS_CSV), batch_size=5)
    assert report.added == 16 and not report.failed
    yield cat
    cat.close()


@pytest.fixture()
def new_catalog(catalogs, lite0):
    """A fresh empty catalogue, on each backend."""
    cat = catalogs.create("cat", extractor=lite0)
    yield cat
    cat.close()


# --- round trip and search ------------------------------------------------------------------------
def test_every_product_finds_itself_first(built_catalog, product_rows):
    for row in product_rows:
        hits = built_catalog.search(PRODUCTS_DIR / row["image"], k=3)
        assert hits[0].id == row["id"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        assert hits[0].order_key >= hits[1].order_key >= hits[2].order_key  # similarity + colour agreement


def test_a_search_picture_counts_as_itself_or_its_mirror_image(built_catalog, lite0):
    built_catalog.colour_rank = False  # the mirror merge alone (the colour stage is tested below)
    img = Image.open(PRODUCTS_DIR / "images/20842.jpg").convert("RGB")
    mirrored = ImageOps.mirror(img)
    views = built_catalog.query_vectors(mirrored)
    np.testing.assert_allclose(views, lite0.embed([mirrored, img]), atol=1e-5)
    # the mirror image of a catalogue picture finds the product with its own score
    hit = built_catalog.search(mirrored, k=1)[0]
    assert hit.id == "20842" and hit.score == pytest.approx(1.0, abs=1e-3)
    # every product scores the better of the two views, and the ranking is exact
    hits = built_catalog.search(mirrored, k=16)
    stored = built_catalog.store.vectors_of([h.id for h in hits])
    best = {pid: float(max(views @ vec)) for pid, vec in stored.items()}
    assert [h.id for h in hits] == sorted(best, key=lambda pid: -best[pid])
    assert [h.score for h in hits] == pytest.approx([best[h.id] for h in hits], abs=1e-4)
    assert [h.id for h in built_catalog.search(mirrored, k=5)] == [h.id for h in hits[:5]]
    many = built_catalog.search_many([mirrored, PRODUCTS_DIR / "images/13466.jpg"], k=5)
    assert [h.id for h in many[0]] == [h.id for h in hits[:5]]
    assert many[1][0].id == "13466"
    built_catalog.query_flip = False
    try:
        assert len(built_catalog.query_vectors(mirrored)) == 1
        plain = built_catalog.search(mirrored, k=1)[0]
        assert plain.score < 0.999  # the picture alone: the mirror image is another picture
        assert built_catalog.search_many([mirrored], k=1)[0][0].score == pytest.approx(plain.score, abs=1e-5)
    finally:
        built_catalog.query_flip = True
        built_catalog.colour_rank = True


def test_the_mirror_merge_keeps_each_products_best_view_and_the_top_k():
    def hits(*pairs: tuple[str, float]) -> list[Hit]:
        return [Hit(pid, score, Product(pid)) for pid, score in pairs]

    picture = hits(("a", 0.9), ("b", 0.8), ("c", 0.5))
    mirror = hits(("b", 0.95), ("d", 0.7), ("a", 0.6))
    merged = merge_views([picture, mirror], 3)
    assert [(h.id, h.score) for h in merged] == [("b", 0.95), ("a", 0.9), ("d", 0.7)]
    assert rank(QueryContext(3), [picture, mirror]) == merged
    assert rank(QueryContext(2), [picture]) == picture[:2]
    with pytest.raises(CatalogError, match="fuse them into one"):
        rank(QueryContext(3), [picture, mirror], stages=())


def test_ranking_stages_run_in_order_on_every_query(built_catalog):
    seen: list[tuple[int, int]] = []

    def reverse(ctx: QueryContext, ranked: list[list[Hit]]) -> list[list[Hit]]:
        seen.append((ctx.k, len(ranked)))
        return [ranked[0][::-1]]

    picture = PRODUCTS_DIR / "images/20842.jpg"
    built_catalog.colour_rank = False
    plain = [h.id for h in built_catalog.search(picture, k=4)]
    more = [h.id for h in built_catalog.search(product_id="20842", k=4)]
    built_catalog.ranking_stages = (*DEFAULT_STAGES, reverse)
    try:
        assert [h.id for h in built_catalog.search(picture, k=4)] == plain[::-1]
        assert [h.id for h in built_catalog.search_many([picture], k=4)[0]] == plain[::-1]
        assert [h.id for h in built_catalog.search(product_id="20842", k=4)] == more[::-1]
    finally:
        built_catalog.ranking_stages = DEFAULT_STAGES
        built_catalog.colour_rank = True
    assert seen == [(4, 1)] * 3  # after the mirror merge: one list
    assert [h.id for h in built_catalog.search(picture, k=4, colour_rank=False)] == plain


def test_colour_ranking_orders_by_similarity_plus_colour_agreement(built_catalog, product_rows):
    picture = PRODUCTS_DIR / "images/20842.jpg"
    result = built_catalog.search_result(picture, k=8)
    assert result.colour_source == "detected" and result.colour == result.detected.family
    keys = [h.order_key for h in result.hits]
    assert keys == sorted(keys, reverse=True)
    w, kw = built_catalog.colour_weight, DEFAULT_KIND_WEIGHT
    for h in result.hits:  # similarity + colour agreement + a kind vote of at most kw
        if h.score >= EXACT_SIMILARITY:  # the query's very picture: first whatever the stages say
            assert h is result.hits[0]
            continue
        assert h.score + w * h.colour_match - 1e-5 <= h.rank_score <= h.score + w * h.colour_match + kw + 1e-5
    off = built_catalog.search_result(picture, k=8, colour_rank=False)
    assert off.colour is None and all(h.colour_match is None for h in off.hits)
    assert [h.score for h in off.hits] == sorted((h.score for h in off.hits), reverse=True)


def test_a_colour_preference_brings_that_colour_up_and_is_not_a_filter(built_catalog, product_rows):
    picture = PRODUCTS_DIR / "images/20842.jpg"
    colours = {r["id"]: r["colour"] for r in product_rows}
    wanted = family_of(next(c for c in colours.values() if family_of(c) not in (None, "black")))
    before = built_catalog.search(picture, k=len(product_rows), colour_rank=False)
    after = built_catalog.search_result(picture, k=len(product_rows), colour=wanted)
    assert after.colour == wanted and after.colour_source == "preference"
    fam = [family_of(h.product.colour) == wanted for h in after.hits]
    n = sum(fam)
    assert 0 < n < len(fam)  # other colours still come, after
    top_before = sum(family_of(h.product.colour) == wanted for h in before[:n])
    assert sum(fam[:n]) > top_before
    with pytest.raises(InvalidQueryError, match="unknown colour"):
        built_catalog.search(picture, colour="sparkly")


def test_more_like_this_ranks_by_the_products_own_colour(built_catalog, product_rows):
    pid = product_rows[0]["id"]
    result = built_catalog.search_result(product_id=pid, k=5)
    assert result.colour_source == "product"
    assert result.colour == family_of(product_rows[0]["colour"])
    assert pid not in [h.id for h in result.hits]


def test_metadata_comes_back_with_hits(built_catalog):
    hit = built_catalog.search(PRODUCTS_DIR / "images/20842.jpg", k=1)[0]
    p = hit.product
    assert (p.article_type, p.colour, p.gender, p.brand, p.price) == ("Casual Shoes", "Brown", "Men", "Red Tape", 45.0)
    assert p.title and p.image.endswith("20842.jpg")


def test_search_by_bytes_and_pil_agree_with_path(built_catalog):
    from lookalike.imaging import load_image

    path = PHOTOS / "tshirt.jpg"
    by_path = [h.id for h in built_catalog.search(path, k=5)]
    by_bytes = [h.id for h in built_catalog.search(path.read_bytes(), k=5)]
    by_pil = [h.id for h in built_catalog.search(load_image(path), k=5)]
    assert by_path == by_bytes == by_pil


def test_a_phone_photo_of_a_tshirt_finds_tshirts(built_catalog):
    hits = built_catalog.search(PHOTOS / "tshirt.jpg", k=3)
    assert [h.product.article_type for h in hits].count("Tshirts") >= 2


def test_more_like_this_excludes_the_product(built_catalog):
    hits = built_catalog.search(product_id="13466", k=15)
    assert len(hits) == 15 and "13466" not in [h.id for h in hits]


def test_more_like_this_unknown_product(built_catalog):
    with pytest.raises(ProductNotFoundError):
        built_catalog.search(product_id="nope")


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        (Filters(article_type="Tshirts"), lambda p: p.article_type == "Tshirts"),
        (Filters(article_type="tshirts"), lambda p: p.article_type == "Tshirts"),  # case-insensitive
        (Filters(gender="Women"), lambda p: p.gender == "Women"),
        (Filters(colour="Black"), lambda p: p.colour == "Black"),
        (Filters(brand="Nike"), lambda p: p.brand == "Nike"),
        (Filters(category="Accessories"), lambda p: p.category == "Accessories"),
        (Filters(min_price=40, max_price=100), lambda p: 40 <= p.price <= 100),
        (Filters(article_type=("Jeans", "Watches")), lambda p: p.article_type in ("Jeans", "Watches")),
        (Filters(gender="Men", colour="Black"), lambda p: p.gender == "Men" and p.colour == "Black"),
    ],
)
def test_filters_restrict_results(built_catalog, product_rows, filters, check):
    hits = built_catalog.search(PHOTOS / "tshirt.jpg", k=16, filters=filters)
    assert hits and all(check(h.product) for h in hits)
    expected = built_catalog.store.count(filters)
    assert len(hits) == expected  # filtering happens inside the search: all matches come back


def test_filter_matching_nothing_gives_no_hits(built_catalog):
    assert built_catalog.search(PHOTOS / "tshirt.jpg", k=5, filters=Filters(brand="No Such Brand")) == []


def test_bad_k_and_ambiguous_queries(built_catalog):
    with pytest.raises(InvalidQueryError):
        built_catalog.search(PHOTOS / "tshirt.jpg", k=0)
    with pytest.raises(InvalidQueryError):
        built_catalog.search(PHOTOS / "tshirt.jpg", product_id="13466")
    with pytest.raises(InvalidQueryError):
        built_catalog.search()


def test_search_many_keeps_order_and_reports_bad_queries(built_catalog, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    queries = [str(PRODUCTS_DIR / "images/13466.jpg"), str(bad), str(PRODUCTS_DIR / "images/19265.jpg")]
    results = built_catalog.search_many(queries, k=2)
    assert results[0][0].id == "13466"
    assert "bad.jpg" in str(results[1])
    assert results[2][0].id == "19265"


def test_faiss_and_flat_index_agree_with_filters():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1000, 1300, dtype=np.int64)
    flat, fa = FlatIndex(16), FaissIndex(16)
    for idx in (flat, fa):
        idx.add(ids, vecs)
        idx.remove(ids[:10])
    q = rng.normal(size=(5, 16)).astype(np.float32)
    allowed = ids[::3]
    for allowed_ids in (None, allowed):
        s1, i1 = flat.search(q, 7, allowed_ids)
        s2, i2 = fa.search(q, 7, allowed_ids)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert len(flat) == len(fa) == 290


# --- upsert and delete ----------------------------------------------------------------------------
def test_metadata_only_update_does_not_re_embed(new_catalog, products_copy):
    new_catalog.ingest(read_csv(products_copy))
    rows = list(csv.DictReader(products_copy.open()))
    rows[0]["price"] = "1.00"
    rows[0]["title"] = "Renamed"
    with products_copy.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = new_catalog.ingest(read_csv(products_copy))
    assert (report.updated, report.unchanged, report.embedded) == (1, 15, 0)
    p = new_catalog.get(rows[0]["id"])
    assert p.price == 1.0 and p.title == "Renamed"


def test_changed_picture_is_re_embedded(new_catalog, products_copy):
    new_catalog.ingest(read_csv(products_copy))
    folder = products_copy.parent / "images"
    shutil.copyfile(folder / "19265.jpg", folder / "13466.jpg")  # t-shirt now shows a watch
    report = new_catalog.ingest(read_csv(products_copy))
    assert (report.updated, report.embedded) == (1, 1)
    hits = new_catalog.search(PRODUCTS_DIR / "images/19265.jpg", k=2, collapse=False)
    assert {h.id for h in hits} == {"19265", "13466"}
    top = new_catalog.search(PRODUCTS_DIR / "images/19265.jpg", k=2)[0]  # the same bytes now: shown once
    assert {top.id, *top.duplicates} == {"19265", "13466"}
    assert new_catalog.verify()["ok"]


def test_upsert_one_product_and_update_it(new_catalog):
    img = (PRODUCTS_DIR / "images/17831.jpg").read_bytes()
    assert new_catalog.upsert(Product(id="sku-1", title="Shoe", price=10.0), img) == "added"
    assert new_catalog.search(img, k=1)[0].id == "sku-1"
    assert new_catalog.upsert(Product(id="sku-1", title="Shoe v2", price=12.0)) == "updated"
    assert new_catalog.get("sku-1").title == "Shoe v2"
    with pytest.raises(ProductNotFoundError):
        new_catalog.upsert(Product(id="sku-2", title="no picture"))


def test_delete_removes_from_search_store_and_disk(new_catalog, products_copy):
    new_catalog.ingest(read_csv(products_copy))
    image_file = new_catalog.image_path("13466")
    assert new_catalog.delete(["13466", "does-not-exist"]) == 1
    assert len(new_catalog) == 15
    assert "13466" not in [h.id for h in new_catalog.search(PRODUCTS_DIR / "images/13466.jpg", k=16)]
    with pytest.raises(ProductNotFoundError):
        new_catalog.get("13466")
    assert not image_file.exists()
    report = new_catalog.verify()
    assert {k: report[k] for k in ("products", "vectors", "missing_from_index", "orphans_in_index", "ok")} == {
        "products": 15, "vectors": 15, "missing_from_index": 0, "orphans_in_index": 0, "ok": True,
    }  # fmt: skip


def test_deleted_product_can_come_back(new_catalog, products_copy):
    new_catalog.ingest(read_csv(products_copy))
    new_catalog.delete(["13466"])
    report = new_catalog.ingest(read_csv(products_copy))
    assert (report.added, report.unchanged) == (1, 15)
    assert new_catalog.search(PRODUCTS_DIR / "images/13466.jpg", k=1)[0].id == "13466"


def test_image_path_stays_inside_the_catalogue(built_catalog):
    p = built_catalog.image_path("13466")
    assert built_catalog.images_dir.resolve() in p.parents and p.is_file()
    with pytest.raises(ProductNotFoundError):
        built_catalog.image_path("../../etc/passwd")


# --- bad input in a batch -------------------------------------------------------------------------
def test_broken_images_are_skipped_and_reported(new_catalog, products_copy):
    folder = products_copy.parent / "images"
    (folder / "10773.jpg").write_bytes(b"")  # zero bytes
    data = (folder / "10729.jpg").read_bytes()
    (folder / "10729.jpg").write_bytes(data[: len(data) // 3])  # truncated
    (folder / "20479.jpg").unlink()  # missing
    report = new_catalog.ingest(read_csv(products_copy), batch_size=4)
    failed = {pid: msg for pid, _, msg in report.failed}
    assert set(failed) == {"10773", "10729", "20479"}
    assert "empty" in failed["10773"] and "no such file" in failed["20479"]
    assert report.added == 13 and len(new_catalog) == 13
    assert new_catalog.verify()["ok"]
    assert {e["id"] for e in new_catalog.store.errors()} == set(failed)
    # fixing a picture and re-running picks it up and clears its error
    shutil.copyfile(PRODUCTS_DIR / "images/20479.jpg", folder / "20479.jpg")
    report = new_catalog.ingest(read_csv(products_copy))
    assert report.added == 1 and len(new_catalog) == 14
    assert {e["id"] for e in new_catalog.store.errors()} == {"10773", "10729"}


# --- the ingest pipeline's fast path --------------------------------------------------------------
@pytest.mark.parametrize(
    "cfg",
    [
        PreprocessCfg(),  # EfficientNet-Lite: (x - 127) / 128
        PreprocessCfg(mean=(122.77, 116.75, 104.09), std=(68.5, 66.63, 70.32)),  # CLIP statistics
        PreprocessCfg(size=64, layout="NHWC", mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)),
    ],
    ids=["lite", "clip", "nhwc"],
)
def test_batch_normalisation_is_bit_identical_to_the_extractors_preprocessing(cfg, product_rows):
    images = [Image.open(PRODUCTS_DIR / row["image"]).convert("RGB") for row in product_rows[:6]]
    pixels = np.stack([np.asarray(cfg.resize(img), dtype=np.uint8) for img in images])
    expected = np.stack([cfg.to_array(img) for img in images])
    got = _normalise(cfg, pixels)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_worker_processes_and_threads_store_the_same_vectors(tmp_path, lite0):
    records = list(read_csv(PRODUCTS_CSV))
    vectors = []
    for processes in (True, False):
        cat = Catalog.create(tmp_path / f"cat-{processes}", extractor=lite0)
        report = cat.ingest(records, batch_size=6, processes=processes)
        assert report.added == 16 and not report.failed
        vectors.append(cat.store.vectors_of([r.product.id for r in records]))
        cat.close()
    assert vectors[0].keys() == vectors[1].keys() and len(vectors[0]) == 16
    for pid, vec in vectors[0].items():
        np.testing.assert_allclose(vec, vectors[1][pid], atol=1e-6)


# --- resume and crashes ---------------------------------------------------------------------------
def test_interrupted_ingest_resumes(new_catalog):
    records = list(read_csv(PRODUCTS_CSV))

    def stop_after_first_batch(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        new_catalog.ingest(records, batch_size=5, progress=stop_after_first_batch)
    assert len(new_catalog) == 5 and new_catalog.verify()["ok"]
    report = new_catalog.ingest(records, batch_size=5)
    assert (report.added, report.unchanged) == (11, 5)
    assert len(new_catalog) == 16


CRASH_SCRIPT = """
import sys, lookalike
from lookalike import Catalog, read_csv
cat = Catalog.create(sys.argv[1], extractor="efficientnet-lite0", exist_ok=True)
def show(p):
    print("COMMITTED", " ".join(p.committed_ids), flush=True)
cat.ingest(read_csv(sys.argv[2]), batch_size=3, progress=show)
print("DONE", flush=True)
"""


def test_sigkill_mid_ingest_loses_nothing_committed(tmp_path):
    catalog = tmp_path / "cat"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(catalog), str(PRODUCTS_CSV)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOOKALIKE_THREADS": "1"},
    )
    committed: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("COMMITTED"):
            committed += line.split()[1:]
            if len(committed) >= 6:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(committed) >= 6
    with Catalog.open(catalog) as cat:
        check = cat.verify()
        assert check["ok"] and check["products"] >= len(committed)
        for pid in committed:
            assert cat.search(product_id=pid, k=1) is not None
            assert cat.get(pid).id == pid
        report = cat.ingest(read_csv(PRODUCTS_CSV))
        assert len(cat) == 16 and report.added == 16 - check["products"]


def test_missing_or_corrupt_index_is_rebuilt_from_the_store(tmp_path, lite0):
    path = tmp_path / "cat"
    with Catalog.create(path, extractor=lite0) as cat:
        cat.ingest(read_csv(PRODUCTS_CSV))
    index_files = list(path.glob("index.*.faiss"))
    assert len(index_files) == 1
    index_files[0].write_bytes(b"corrupt")
    with Catalog.open(path, extractor=lite0) as cat:
        assert cat.verify()["ok"] and len(cat.index) == 16
        assert cat.search(PRODUCTS_DIR / "images/13466.jpg", k=1)[0].id == "13466"
    for f in path.glob("index.*.faiss"):
        f.unlink()
    with Catalog.open(path, extractor=lite0) as cat:
        assert len(cat.index) == 16


def test_a_second_reader_sees_writes_without_reopening(catalogs, lite0):
    writer = catalogs.create(extractor=lite0)
    reader = catalogs.open(writer, extractor=lite0)
    try:
        writer.ingest(read_csv(PRODUCTS_CSV))
        assert reader.search(PRODUCTS_DIR / "images/13466.jpg", k=1)[0].id == "13466"
        writer.delete(["13466"])
        assert reader.search(PRODUCTS_DIR / "images/13466.jpg", k=1)[0].id != "13466"
    finally:
        writer.close()
        reader.close()


# --- opening and creating ------------------------------------------------------------------------
def test_open_missing_catalogue(catalogs):
    with pytest.raises(CatalogNotFoundError):
        catalogs.open(catalogs.location("nothing"))


def test_open_with_another_extractor_is_refused(built_catalog, catalogs):
    with pytest.raises(ModelMismatchError, match="efficientnet-lite0"):
        catalogs.open(built_catalog, extractor="colour-histogram")


def test_create_twice_is_refused_unless_exist_ok(catalogs):
    with catalogs.create() as cat:
        with pytest.raises(CatalogExistsError):
            Catalog.create(cat.path, extractor="colour-histogram", **catalogs.options)
        with Catalog.create(cat.path, extractor="colour-histogram", exist_ok=True, **catalogs.options) as again:
            assert again.extractor_name == "colour-histogram"
        with pytest.raises(ModelMismatchError):
            Catalog.create(cat.path, extractor="efficientnet-lite0", exist_ok=True, **catalogs.options)


def test_create_refuses_a_non_empty_foreign_directory(tmp_path):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(CatalogError, match="non-empty"):
        Catalog.create(tmp_path, extractor="colour-histogram")


def test_colour_histogram_catalogue_ranks_by_colour(catalogs):
    with catalogs.create("hist", extractor="colour-histogram") as cat:
        cat.ingest(read_csv(PRODUCTS_CSV))
        assert cat.dim == 360
        assert cat.search(PRODUCTS_DIR / "images/10773.jpg", k=1)[0].id == "10773"
    with catalogs.open(cat) as cat:  # extractor comes from the manifest
        assert cat.extractor.name == "colour-histogram"


def test_info_reports_size_and_counts(built_catalog, catalogs):
    info = built_catalog.info()
    assert info["products"] == 16 and info["extractor"] == "efficientnet-lite0" and info["bytes_on_disk"] > 0
    assert info["backend"] == catalogs.backend and info["ingest_errors"] == 0


def test_facets_count_values_case_insensitively(new_catalog):
    new_catalog.ingest(read_csv(PRODUCTS_CSV))
    image = PRODUCTS_DIR / "images/18990.jpg"
    new_catalog.upsert(Product(id="loud", colour="BLACK", article_type="Tshirts", price=5.0), image.read_bytes())
    facets = new_catalog.facets()
    assert set(facets) == {"category", "subcategory", "article_type", "gender", "colour", "brand", "price", "in_stock"}
    colours = [(value.lower(), n) for value, n in facets["colour"]]
    assert colours[0] == ("black", 5) and len(colours) == len(set(colours))  # one group, most frequent first
    assert sum(n for _, n in colours) == 17
    assert facets["article_type"][0] == ("Tshirts", 6) and facets["subcategory"] == []
    assert facets["price"] == [("min", 5.0), ("max", 210.0)]
    assert new_catalog.count(Filters(colour="black")) == 5


def test_products_pages_cover_every_product_once(built_catalog):
    pages = [built_catalog.products(offset=o, limit=5) for o in range(0, 20, 5)]
    ids = [p.id for page in pages for p in page]
    assert [len(page) for page in pages] == [5, 5, 5, 1] and len(set(ids)) == 16
    shirts = built_catalog.products(Filters(article_type="TSHIRTS"), limit=50)
    assert len(shirts) == 5 and all(p.article_type == "Tshirts" for p in shirts)


# --- sources --------------------------------------------------------------------------------------
def test_folder_ingest_uses_paths_as_ids_and_subfolders_as_categories(tmp_path, lite0, catalogs):
    src = tmp_path / "pics"
    (src / "shoes").mkdir(parents=True)
    shutil.copy(PRODUCTS_DIR / "images/17831.jpg", src / "shoes" / "a.jpg")
    shutil.copy(PRODUCTS_DIR / "images/13466.jpg", src / "b.jpg")
    (src / "readme.txt").write_text("not an image")
    records = list(read_folder(src))
    assert [r.product.id for r in records] == ["b", "shoes/a"]
    assert records[1].product.category == "shoes"
    with catalogs.create(extractor=lite0) as cat:
        assert cat.ingest(records).added == 2
        assert cat.search(src / "shoes" / "a.jpg", k=1)[0].id == "shoes/a"


def test_kaggle_labels_columns_are_mapped(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "image,id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        "images/1.jpg,1,Men,Apparel,Topwear,Tshirts,Black,Fall,2011.0,Sports,Nike Men Black Tshirt\n"
    )
    rec = next(read_csv(csv_path))
    p = rec.product
    assert (p.id, p.article_type, p.colour, p.category, p.subcategory, p.gender, p.title) == (
        "1", "Tshirts", "Black", "Apparel", "Topwear", "Men", "Nike Men Black Tshirt",
    )  # fmt: skip
    assert p.extra == {"season": "Fall", "year": "2011.0", "usage": "Sports"}
    assert rec.source == str(tmp_path / "images/1.jpg")


def test_csv_without_image_column_finds_images_by_id(tmp_path):
    (tmp_path / "images").mkdir()
    shutil.copy(PRODUCTS_DIR / "images/13466.jpg", tmp_path / "images" / "13466.jpg")
    (tmp_path / "styles.csv").write_text("id,articleType\n13466,Tshirts\n99,Jeans\n")
    recs = list(read_csv(tmp_path / "styles.csv"))
    assert recs[0].source == str(tmp_path / "images/13466.jpg") and recs[1].source is None


def test_csv_column_mapping_overrides_and_urls(tmp_path):
    (tmp_path / "p.csv").write_text('sku,name,cost,pic\nA1,Red dress,"$1,299.00",https://example.com/a.jpg\n')
    rec = next(read_csv(tmp_path / "p.csv", {"id": "sku", "image": "pic", "price": "cost"}))
    assert (rec.product.id, rec.product.title, rec.product.price) == ("A1", "Red dress", 1299.0)
    assert rec.source == "https://example.com/a.jpg"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,image\nx,a.jpg\n", "no id column"),
        ("", "no header"),
    ],
)
def test_bad_csvs_are_clear_errors(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(SourceError, match=message):
        list(read_csv(tmp_path / "bad.csv"))


def test_a_bad_price_is_that_rows_error_and_a_repeated_id_adds_pictures(tmp_path):
    (tmp_path / "p.csv").write_text("id,image,price\n1,a.jpg,3\n1,b.jpg,\n2,c.jpg,cheap\n")
    first, second = list(read_csv(tmp_path / "p.csv"))
    assert [os.path.basename(s) for s in first.sources] == ["a.jpg", "b.jpg"] and first.product.price == 3.0
    assert first.error is None and second.error is not None and "not a number" in second.error


def test_url_image_on_a_private_host_is_refused_at_ingest(new_catalog, tmp_path):
    (tmp_path / "u.csv").write_text("id,image\nu1,http://127.0.0.1:9/x.jpg\nu2,file:///etc/passwd\n")
    report = new_catalog.ingest(read_csv(tmp_path / "u.csv"))
    reasons = {pid: msg for pid, _, msg in report.failed}
    assert "not allowed" in reasons["u1"]
    assert len(new_catalog) == 0 and "u2" in reasons


def test_unreadable_source_folder(tmp_path):
    with pytest.raises(SourceError):
        list(read_folder(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no image files"):
        list(read_folder(tmp_path / "empty"))


# --- identical pictures ------------------------------------------------------------------------------
def _hit(pid: str, score: float) -> Hit:
    return Hit(pid, score, Product(pid))


def test_collapse_stage_keeps_the_best_ranked_of_each_picture_and_lists_the_others():
    from lookalike.catalog.ranking import collapse_duplicates

    hits = [_hit(p, 1.0 - i / 10) for i, p in enumerate("abcdef")]
    pictures = {"a": "x", "b": "y", "c": "x", "d": None, "e": "y", "f": "x"}
    asked: list[list[str]] = []

    def keys(ids):
        asked.append(list(ids))
        return {i: pictures[i] for i in ids}

    out = collapse_duplicates(QueryContext(3, pictures=keys), [hits])
    assert asked == [list("abcdef")]  # one look-up per list
    assert [(h.id, h.duplicates) for h in out[0]] == [("a", ["c", "f"]), ("b", ["e"]), ("d", [])]
    assert [h.score for h in out[0]] == [1.0, 0.9, 0.7]  # order and scores kept
    assert all(h.duplicates == [] for h in hits)  # the input hits are left as they were
    assert collapse_duplicates(QueryContext(3), [hits]) == [hits]  # no look-up: unchanged
    assert rank(QueryContext(2, candidates=6, pictures=keys), [hits]) == out[0][:2]


def test_rank_filled_fetches_deeper_until_k_distinct_pictures():
    from lookalike.catalog.query import rank_filled

    pool = [_hit(f"p{i}", 1.0 - i / 100) for i in range(40)]
    picture = {h.id: f"pic{int(h.id[1:]) // 4}" for h in pool}  # every picture shared by four products
    depths: list[int] = []

    def fetch(depth):
        depths.append(depth)
        return [pool[:depth], pool[:depth]]  # two views, as a picture query has

    ctx = QueryContext(3, pictures=lambda ids: {i: picture[i] for i in ids})
    hits = rank_filled(ctx, fetch, DEFAULT_STAGES)
    assert [h.id for h in hits] == ["p0", "p4", "p8"] and hits[0].duplicates == ["p1", "p2", "p3"]
    assert depths == [3, 6, 12]
    depths.clear()
    assert len(rank_filled(QueryContext(20, pictures=ctx.pictures), fetch, DEFAULT_STAGES)) == 10  # only 10 pictures
    assert depths == [20, 40, 80]  # stops once the lists come back short of the depth asked
    depths.clear()
    assert [h.id for h in rank_filled(QueryContext(3), fetch, DEFAULT_STAGES)] == ["p0", "p1", "p2"]
    assert depths == [3]


def test_products_sharing_a_picture_show_once_unless_collapse_is_off(catalogs, lite0, products_copy):
    from .conftest import add_twin

    cat = catalogs.create("twins", extractor=lite0)
    try:
        assert cat.ingest(read_csv(add_twin(products_copy))).added == 17
        picture = PRODUCTS_DIR / "images/20842.jpg"
        for colour_rank in (True, False):
            hits = cat.search(picture, k=4, colour_rank=colour_rank)
            ids = [h.id for h in hits]
            assert len(ids) == 4 and len(set(ids)) == 4
            assert {ids[0], *hits[0].duplicates} == {"20842", "twin-20842"}
            assert all(h.duplicates == [] for h in hits[1:])
            both = [h.id for h in cat.search(picture, k=4, colour_rank=colour_rank, collapse=False)]
            assert {"20842", "twin-20842"} <= set(both[:2]) and len(both) == 4
        # every distinct picture still comes back: 17 products, 16 pictures
        everything = cat.search(picture, k=16, colour_rank=False)
        assert len(everything) == 16 and sum(len(h.duplicates) for h in everything) == 1
        assert len(cat.search(picture, k=17, colour_rank=False)) == 16
        assert len(cat.search(picture, k=17, colour_rank=False, collapse=False)) == 17
        assert len(cat.search_many([picture], k=16, colour_rank=False)[0]) == 16
        words = cat.search(picture, text="in red", k=4)
        assert len({h.id for h in words}) == 4
        assert not {"20842", "twin-20842"} <= {h.id for h in words}
        # "more like this" leaves the product out; its twin is then a plain hit
        more = cat.search(product_id="20842", k=3)
        assert more[0].id == "twin-20842" and more[0].duplicates == []
        cat.collapse_duplicates = False
        assert {"20842", "twin-20842"} <= {h.id for h in cat.search(picture, k=4)}
        assert cat.search(picture, k=4, collapse=True)[0].duplicates
        from lookalike.catalog.duplicates import duplicate_groups

        assert duplicate_groups(cat.backend) == [["20842", "twin-20842"]]
    finally:
        cat.close()
