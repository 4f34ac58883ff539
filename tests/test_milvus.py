"""The Milvus backend: filter escaping, agreement with the embedded backend, migration, CLI options.

Catalogue behaviour on both backends is in test_catalog.py; this file covers what is Milvus's own. Every test
taking ``milvus`` runs twice: on the session's Milvus Lite database (``milvus_uri``) and on a real Milvus server
(``milvus_server_uri``: the ``milvus`` package's 2.3.5 standalone server, skipped where it cannot start).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from lookalike import Catalog, Filters, Product, read_csv
from lookalike.backends.base import UpsertItem
from lookalike.backends.milvus import IndexConfig, connect, filter_expression, milvus_number, milvus_string
from lookalike.backends.milvus_compat import parse_version, server_features
from lookalike.backends.milvus_schema import fold
from lookalike.errors import CatalogError, InvalidProductError, InvalidQueryError, ModelMismatchError
from lookalike.migrate import migrate_catalog

from .conftest import PHOTOS, PRODUCTS_CSV, PRODUCTS_DIR, CatalogMaker, ServerCatalogMaker
from .conftest import run_cli as run


@pytest.fixture(scope="module")
def embedded(catalog_maker) -> CatalogMaker:
    return catalog_maker("embedded")


@pytest.fixture(scope="module", params=["lite", "server"])
def milvus(request, catalog_maker) -> CatalogMaker:
    return catalog_maker("milvus" if request.param == "lite" else "milvus-server")


@pytest.fixture(autouse=True)
def _server_pictures(_isolated_model_home, request, monkeypatch):
    """On the server, catalogues made by URI alone (the CLI, migrations) keep pictures in LOOKALIKE_IMAGES_DIR."""
    if "milvus" in request.fixturenames:
        maker = request.getfixturevalue("milvus")
        if isinstance(maker, ServerCatalogMaker):
            monkeypatch.setenv("LOOKALIKE_IMAGES_DIR", str(maker.root / "images"))


def _lite_string(literal: str) -> str:
    """What Milvus Lite's expression tokenizer reads from ``literal`` (which must be one string token)."""
    from milvus_lite.search.filter.tokens import TokenKind, tokenize

    tokens = tokenize(literal)
    assert [t.kind for t in tokens] == [TokenKind.STRING, TokenKind.EOF]
    return str(tokens[0].value)


# --- escaping -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ['say "hi"', "back\\slash", "trailing\\", '\\"', "Levi's", 'x" or id != "', '"] or id in ["', "Café 東京", ""],
)
def test_milvus_string_reads_back_as_the_same_single_string(value):
    literal = milvus_string(value)
    assert literal.startswith('"') and literal.endswith('"')
    assert _lite_string(literal) == value


@pytest.mark.parametrize("value", ["a\nb", "tab\there", "nul\x00", "del\x7f", "c1\x85", "cr\r"])
def test_control_characters_are_refused(value):
    with pytest.raises(InvalidQueryError, match="control character"):
        milvus_string(value)


def test_numbers_must_be_finite():
    assert milvus_number(40) == "40.0" and milvus_number(-2.5) == "-2.5"
    for bad in (float("nan"), float("inf"), "cheap"):
        with pytest.raises(InvalidQueryError):
            milvus_number(bad)  # type: ignore[arg-type]


def test_filter_expression_compares_lower_cased_shadow_fields():
    expr = filter_expression(Filters(colour="Black", article_type=("Jeans", 'Odd"One'), min_price=40, max_price=100))
    assert expr == (
        'article_type_lc in ["jeans", "odd\\"one"] and colour_lc in ["black"] and price >= 40.0 and price <= 100.0'
    )
    assert filter_expression(None) == "" and filter_expression(Filters()) == ""


# --- filters on real collections: Milvus agrees with the embedded backend ----------------------------
TRICKY_BRANDS = [
    "Nike", "NIKE", "nike", "Levi's", 'The "Quoted" Brand', "back\\slash", 'x" or id != "', "Café", "CAFÉ", None,
]  # fmt: skip
COLOURS = ["Black", "black", "Navy Blue", "White", None]


def _random_products(n: int, seed: int = 0) -> tuple[list[Product], np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, 360)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    products = [
        Product(
            id=f"p{i:05d}",
            title=f"product {i}",
            brand=TRICKY_BRANDS[int(rng.integers(len(TRICKY_BRANDS)))],
            colour=COLOURS[int(rng.integers(len(COLOURS)))],
            gender=["Men", "Women"][i % 2],
            price=None if i % 7 == 0 else float(rng.integers(1, 300)),
            extra={"season": "Fall", "n": i},
        )
        for i in range(n)
    ]
    return products, vecs


@pytest.fixture(scope="module")
def vector_twins(embedded, milvus):
    """The same 1,200 products with random vectors and awkward metadata, on both backends."""
    products, vecs = _random_products(1200)
    items = [UpsertItem(p, v, image_sha=f"sha{p.id}", image_file=None) for p, v in zip(products, vecs, strict=True)]
    cats = (embedded.create("vec"), milvus.create("vec"))
    for cat in cats:
        for start in range(0, len(items), 400):
            cat.backend.upsert(items[start : start + 400])
    yield cats
    for cat in cats:
        cat.close()


FILTERS = [
    None,
    Filters(brand="nike"),
    Filters(brand="Levi's"),
    Filters(brand='the "quoted" brand'),
    Filters(brand="BACK\\SLASH"),
    Filters(brand='x" or id != "'),
    Filters(brand='x\\" or id != \\"'),
    Filters(brand="café"),  # SQLite's NOCASE folds ASCII only: "CAFÉ" stays apart in both backends
    Filters(brand=("Nike", "Café"), colour="black"),
    Filters(colour="navy blue", gender="women", min_price=50, max_price=150.5),
    Filters(min_price=299.5),
    Filters(brand="no such brand"),
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: filter_expression(f) or "none")
def test_filters_select_the_same_products_and_neighbours(vector_twins, filters):
    emb, mil = vector_twins
    assert mil.count(filters) == emb.count(filters)
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(8, 360)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for a, b in zip(
        emb.search_vectors(queries, k=10, filters=filters),
        mil.search_vectors(queries, k=10, filters=filters),
        strict=True,
    ):
        assert [h.id for h in a] == [h.id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        assert [h.product for h in a] == [h.product for h in b]  # metadata, extra and null prices round-trip


def test_an_injection_attempt_is_just_a_brand_name(vector_twins):
    _, mil = vector_twins
    hits = mil.search_vectors(np.ones((1, 360), np.float32), k=50, filters=Filters(brand='x" or id != "'))[0]
    assert hits and {h.product.brand for h in hits} == {'x" or id != "'}
    assert mil.count(Filters(brand='nothing" or id != "')) == 0


def test_control_characters_in_a_filter_are_a_query_error(vector_twins):
    _, mil = vector_twins
    with pytest.raises(InvalidQueryError):
        mil.search_vectors(np.ones((1, 360), np.float32), k=5, filters=Filters(brand="a\nb"))


def test_facets_and_pages_agree(vector_twins):
    emb, mil = vector_twins

    def folded(facets):
        return {f: sorted((str(v).lower(), n) for v, n in pairs) for f, pairs in facets.items() if f != "price"}

    assert folded(mil.facets()) == folded(emb.facets())
    assert mil.facets()["price"] == emb.facets()["price"]
    ids = [p.id for o in range(0, 1200, 500) for p in mil.products(offset=o, limit=500)]
    assert ids == sorted(p.id for p in emb.products(limit=2000))  # Milvus pages in id order
    women = Filters(gender="WOMEN")
    assert {p.id for p in mil.products(women, limit=1000)} == {p.id for p in emb.products(women, limit=1000)}
    assert list(mil.backend.iter_ids()) == ids


FACET_FILTERS = [
    Filters(colour="BLACK"),
    Filters(brand=("nike", "Café"), gender="women"),
    Filters(colour="navy blue", min_price=50, max_price=150.5),
    Filters(brand='x" or id != "', colour="white", gender="Men"),
    Filters(brand="no such brand"),
]


@pytest.mark.parametrize("filters", FACET_FILTERS, ids=filter_expression)
def test_filtered_facets_agree(vector_twins, filters):
    emb, mil = vector_twins

    def folded(facets):
        return {f: sorted((str(v).lower(), n) for v, n in pairs) for f, pairs in facets.items() if f != "price"}

    got, want = mil.facets(filters=filters), emb.facets(filters=filters)
    assert folded(got) == folded(want)
    assert got["price"] == want["price"]
    # brute force: a field's counts are over the products passing the other filters, the price over all
    products = emb.products(limit=2000)
    for name in ("brand", "colour", "gender"):
        own = getattr(filters, name)
        others = Filters(**{**{f: getattr(filters, f) for f in Filters.__dataclass_fields__}, name: None})
        passing = {p.id for p in emb.products(others, limit=2000)}
        values = [fold(str(getattr(p, name))) for p in products if p.id in passing and getattr(p, name)]
        assert {fold(str(v)): n for v, n in got[name]} == {v: values.count(v) for v in set(values)}, (name, own)
    prices = [p.price for p in emb.products(filters, limit=2000) if p.price is not None]
    assert got["price"] == ([("min", min(prices)), ("max", max(prices))] if prices else [])


def test_a_product_id_with_a_control_character_is_refused(vector_twins):
    _, mil = vector_twins
    with pytest.raises(InvalidProductError, match="control character"):  # the one id rule, before any backend
        Product(id="bad\nid")
    with pytest.raises(CatalogError, match="U\\+E000"):  # kept for picture keys in a Milvus catalogue
        mil.backend.upsert([UpsertItem(Product(id="bad\ue000id"), np.ones(360, np.float32))])
    assert mil.store.get("bad\nid") is None and mil.delete(["bad\nid"]) == 0


# --- the same images give the same results ---------------------------------------------------------
def _variants(img: Image.Image) -> list[Image.Image]:
    w, h = img.size
    return [
        img,
        ImageOps.mirror(img),
        img.crop((w // 10, h // 10, w - w // 10, h - h // 10)),
        img.rotate(8, expand=False, fillcolor="white"),
        ImageEnhance.Brightness(img).enhance(1.25),
        ImageOps.grayscale(img).convert("RGB"),
    ]


@pytest.fixture(scope="module")
def image_twins(tmp_path_factory, embedded, milvus, product_rows):
    """108 pictures (18 photos, 6 variants each), ingested into both backends (colour histograms: many
    near-ties, so a demanding comparison, and quick to embed)."""
    folder = tmp_path_factory.mktemp("variants")
    rows = []
    sources = [(r, PRODUCTS_DIR / r["image"]) for r in product_rows]
    sources += [({"article_type": "Photo", "gender": "Unisex"}, p) for p in sorted(PHOTOS.glob("*.jpg"))]
    for n, (row, path) in enumerate(sources):
        with Image.open(path) as img:
            for v, variant in enumerate(_variants(img.convert("RGB"))):
                name = f"{n:02d}-{v}.jpg"
                variant.save(folder / name, quality=90)
                rows.append(
                    {"id": f"{n:02d}-{v}", "image": name, **{k: row.get(k, "") for k in ("article_type", "gender")}}
                )
    with (folder / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "image", "article_type", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    cats = (embedded.create("img"), milvus.create("img"))
    for cat in cats:
        assert cat.ingest(read_csv(folder / "products.csv"), batch_size=32).added == len(rows)
    yield cats
    for cat in cats:
        cat.close()


def test_both_backends_find_the_same_top_10(image_twins):
    emb, mil = image_twins
    ids = sorted(emb.store.iter_ids())
    vectors = emb.store.vectors_of(ids)
    mil_vectors = mil.store.vectors_of(ids)
    assert all(np.array_equal(vectors[i], mil_vectors[i]) for i in ids)  # same pictures, same embeddings
    queries = np.stack([vectors[i] for i in ids])
    for filters in (None, Filters(gender="men"), Filters(article_type=("Tshirts", "Photo"))):
        a = emb.search_vectors(queries, k=10, filters=filters)
        b = mil.search_vectors(queries, k=10, filters=filters)
        same = sum({h.id for h in x} == {h.id for h in y} for x, y in zip(a, b, strict=True))
        assert same >= 0.95 * len(ids), (filters, same, len(ids))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose([h.score for h in x], [h.score for h in y], atol=1e-4)
    photo = PHOTOS / "shoes.jpg"
    assert [h.id for h in emb.search(photo, k=10)] == [h.id for h in mil.search(photo, k=10)]


# --- opening, creating ---------------------------------------------------------------------------
def test_opening_with_another_extractor_is_a_model_mismatch(milvus):
    with milvus.create(extractor="colour-histogram") as cat:
        with pytest.raises(ModelMismatchError, match="colour-histogram"):
            milvus.open(cat, extractor="efficientnet-lite0")
        with milvus.open(cat, extractor="colour-histogram") as same:
            assert same.dim == 360 and same.manifest["extractor"]["name"] == "colour-histogram"


def test_a_collection_that_is_not_a_catalogue_is_refused(milvus):
    from pymilvus import MilvusClient

    name = f"plain_{uuid.uuid4().hex[:8]}"
    client = MilvusClient(milvus.milvus_uri)
    client.create_collection(name, dimension=4)
    client.close()
    with pytest.raises(CatalogError, match="not a lookalike catalogue"):
        milvus.open(name)


class _Versioned:
    """A client that only answers ``get_server_version``."""

    def __init__(self, version: str) -> None:
        self.version = version

    def get_server_version(self) -> str:
        return self.version


@pytest.mark.parametrize(
    ("version", "nullable", "scalar", "key"),
    [
        ("v2.3.5-lite", False, "Trie", False),
        ("v2.3.21", False, "Trie", False),
        ("v2.4.15", False, "INVERTED", True),
        ("v2.5.4", True, "INVERTED", True),
        ("2.6.0", True, "INVERTED", True),
        ("milvus_lite-3.2.2", True, "INVERTED", True),
    ],
)
def test_the_server_version_chooses_indexes_and_nulls(version, nullable, scalar, key):
    features = server_features(_Versioned(version), "http://127.0.0.1:19530")
    assert (features.nullable, features.scalar_index, features.partition_key) == (nullable, scalar, key)


def test_a_server_older_than_2_3_is_refused():
    assert parse_version("v2.2.16") == (2, 2, 16) and parse_version("nightly") is None
    with pytest.raises(CatalogError, match=r"version v2\.2\.16; lookalike needs Milvus 2\.3 or newer"):
        server_features(_Versioned("v2.2.16"), "http://user:secret@127.0.0.1:19530")


def test_missing_values_are_stored_as_the_server_allows(milvus):
    """A product without brand, colour or price round-trips; on the 2.3 server as markers under Trie indexes."""
    with milvus.create() as cat:
        cat.upsert(Product(id="bare", gender="Women"), (PRODUCTS_DIR / "images/13466.jpg").read_bytes())
        got = cat.get("bare")
        assert (got.brand, got.colour, got.price, got.url) == (None, None, None, None)
        assert cat.count(Filters(max_price=1000)) == 0 and cat.count(Filters(gender="women")) == 1
        assert cat.facets()["price"] == [] and cat.facets()["brand"] == []
        client, name = cat.backend.client, str(cat.path)
        scalar = client.describe_index(name, "colour_lc")["index_type"]
        server = isinstance(milvus, ServerCatalogMaker)
        assert (scalar, cat.backend.nulls_encoded) == (("Trie", True) if server else ("INVERTED", False))
        assert [e["image"] for e in cat.store.errors()] == []


def test_a_failed_creation_leaves_nothing_behind(milvus, monkeypatch):
    from lookalike.backends import milvus_backend
    from lookalike.backends.milvus_compat import ServerFeatures

    monkeypatch.setattr(milvus_backend, "server_features", lambda *_: ServerFeatures("v9", True, "NO_SUCH_INDEX"))
    where = milvus.location("broken")
    with pytest.raises(CatalogError, match="creating collection"):
        Catalog.create(where, extractor="colour-histogram", **milvus.options, **_server_kwargs(milvus, where))
    monkeypatch.undo()
    with _client(milvus.milvus_uri) as client:
        assert not [n for n in client.list_collections() if n.startswith(str(where))]
    with pytest.raises(CatalogError, match="no lookalike catalogue"):
        milvus.open(where)


def test_an_unfinished_catalogue_is_refused(capsys, milvus):
    """A collection whose creation stopped half-way (an older lookalike on a 2.3 server) is not searched as an
    empty catalogue."""
    with milvus.create("half") as cat:
        name = str(cat.path)
    with _client(milvus.milvus_uri) as client:
        client.release_collection(name)
        client.drop_index(name, "product")
    with pytest.raises(CatalogError, match="not a complete lookalike catalogue"):
        milvus.open(name)
    code, _, err = run(capsys, "search", name, PHOTOS / "shoes.jpg", "--backend", "milvus", "--uri", milvus.milvus_uri)
    assert code == 1 and "not a complete lookalike catalogue" in err


@contextlib.contextmanager
def _client(uri: str):
    client = connect(uri)
    try:
        yield client
    finally:
        client.close()


def _server_kwargs(maker: CatalogMaker, where: object) -> dict[str, object]:
    return {"images_dir": maker.images_dir(where)} if isinstance(maker, ServerCatalogMaker) else {}


@pytest.mark.parametrize("name", ['bad"name', "with space", "9starts_with_digit", "a" * 201, "x;drop"])
def test_bad_collection_names_are_refused(milvus, name):
    with pytest.raises(CatalogError, match="collection name"):
        Catalog.create(name, extractor="colour-histogram", **milvus.options)


def test_milvus_needs_a_uri_and_a_server_needs_a_pictures_folder(tmp_path, monkeypatch):
    with pytest.raises(CatalogError, match="needs a URI"):
        Catalog.open("shop", backend="milvus")
    with pytest.raises(CatalogError, match="images_dir"):
        Catalog.create("shop", extractor="colour-histogram", backend="milvus", uri="http://127.0.0.1:1")
    monkeypatch.setenv("LOOKALIKE_IMAGES_DIR", str(tmp_path))
    with pytest.raises(CatalogError, match=r"connection to http://127\.0\.0\.1:1 failed"):  # no password shown
        Catalog.create("shop", extractor="colour-histogram", backend="milvus", uri="http://user:pw@127.0.0.1:1")
    with pytest.raises(CatalogError, match=r"\.db"):
        Catalog.create("shop", extractor="colour-histogram", backend="milvus", uri=str(tmp_path / "x.sqlite"))


def test_a_lite_connection_sends_no_idle_keepalive_pings(milvus_uri, milvus):
    """Milvus Lite's gRPC server drops a client that pings while idle ("too many pings"), which failed
    every later connection of a CI run; connect() turns pymilvus's 10 s keepalive off for a Lite file."""
    from lookalike.backends.milvus import LITE_GRPC_OPTIONS, connect

    client = connect(milvus_uri)
    try:
        handler = client._get_connection()
        assert handler._grpc_options == LITE_GRPC_OPTIONS
        assert LITE_GRPC_OPTIONS["grpc.keepalive_permit_without_calls"] == 0
        assert LITE_GRPC_OPTIONS["grpc.keepalive_time_ms"] >= 2**31 - 1  # gRPC's "never"
        assert isinstance(client.list_collections(), list)
    finally:
        client.close()


def test_index_choice_defaults_and_overrides(monkeypatch):
    assert IndexConfig.resolve(lite=True).type == "FLAT"
    server = IndexConfig.resolve(lite=False)
    assert server.type == "HNSW" and server.for_search(500)["params"]["ef"] == 500
    monkeypatch.setenv("LOOKALIKE_MILVUS_INDEX", "ivf_pq")
    monkeypatch.setenv("LOOKALIKE_MILVUS_INDEX_PARAMS", '{"nlist": 1024, "m": 16}')
    monkeypatch.setenv("LOOKALIKE_MILVUS_SEARCH_PARAMS", '{"nprobe": 32}')
    pq = IndexConfig.resolve(lite=False)
    assert (pq.type, pq.params, pq.for_search(10)) == (
        "IVF_PQ", {"nlist": 1024, "m": 16}, {"metric_type": "COSINE", "params": {"nprobe": 32}},
    )  # fmt: skip
    monkeypatch.setenv("LOOKALIKE_MILVUS_INDEX_PARAMS", "[1]")
    with pytest.raises(CatalogError, match="JSON object"):
        IndexConfig.resolve(lite=False)


def test_hnsw_index_and_partition_key(milvus):
    key = "category"
    if isinstance(milvus, ServerCatalogMaker):  # 2.3.5: an upsert lands in the wrong partition (milvus#30607)
        with pytest.raises(CatalogError, match=r"partition key needs Milvus 2\.4"):
            milvus.create(partition_key="category")
        key = None
    with milvus.create(index_type="HNSW", index_params={"M": 8, "efConstruction": 64}, partition_key=key) as cat:
        cat.ingest(read_csv(PRODUCTS_CSV))
        assert cat.info()["index"] == "HNSW" and cat.manifest["index"]["partition_key"] == key
        assert cat.search(PRODUCTS_DIR / "images/10773.jpg", k=1)[0].id == "10773"
        hits = cat.search(PRODUCTS_DIR / "images/10773.jpg", k=16, filters=Filters(category="ACCESSORIES"))
        assert len(hits) == 5 and {h.product.category for h in hits} == {"Accessories"}
        cat.upsert(Product(id="nocat", title="no category"), (PRODUCTS_DIR / "images/10773.jpg").read_bytes())
        assert cat.get("nocat").category is None
    with milvus.open(cat) as again:
        assert again.backend.index_config.type == "HNSW" and again.backend.partition_key == key


# --- migration ------------------------------------------------------------------------------------
def _snapshot(cat: Catalog) -> dict[str, tuple]:
    ids = list(cat.store.iter_ids())
    vectors = cat.store.vectors_of(ids)
    return {
        i: (cat.get(i).to_dict(), vectors[i].tobytes(), cat.image_path(i).read_bytes(), cat.store.states([i])[i])
        for i in ids
    }


def test_migrate_embedded_to_milvus_and_back(products_copy, embedded, milvus):
    (products_copy.parent / "images/10773.jpg").write_bytes(b"")  # one ingest error to carry over
    with embedded.create("src") as src:
        assert src.ingest(read_csv(products_copy)).added == 15
        before = _snapshot(src)
        query = [h.id for h in src.search(PHOTOS / "tshirt.jpg", k=8)]
    to_milvus = milvus.location("copy")
    report = migrate_catalog(src.path, to_milvus, dst_uri=milvus.milvus_uri, batch_size=4)
    assert (report.copied, report.unchanged, report.pictures, report.errors) == (15, 0, 15, 1)
    assert report.destination_products == report.source_products == 15
    back = embedded.location("back")
    report = migrate_catalog(
        to_milvus, back, src_backend="milvus", dst_backend="embedded", src_uri=milvus.milvus_uri, batch_size=6
    )
    assert (report.copied, report.destination_products) == (15, 15)
    for where, maker in ((to_milvus, milvus), (back, embedded)):
        with maker.open(where) as cat:
            assert _snapshot(cat) == before
            assert [h.id for h in cat.search(PHOTOS / "tshirt.jpg", k=8)] == query
            assert [e["id"] for e in cat.store.errors()] == ["10773"]
            assert cat.verify()["ok"] and cat.extractor_name == "colour-histogram"
    again = migrate_catalog(src.path, to_milvus, dst_uri=milvus.milvus_uri)  # resumable: nothing left to copy
    assert (again.copied, again.unchanged, again.pictures) == (0, 15, 0)


def test_migrate_refuses_another_extractor_and_the_same_catalogue(embedded, milvus, lite0):
    with embedded.create("hist") as src:
        src.ingest(read_csv(PRODUCTS_CSV, {}), batch_size=16)
    with milvus.create("lite0", extractor=lite0) as other:
        pass
    with pytest.raises(ModelMismatchError, match="efficientnet-lite0"):
        migrate_catalog(src.path, other.path, dst_uri=milvus.milvus_uri)
    with pytest.raises(CatalogError, match="same catalogue"):
        migrate_catalog(src.path, src.path, dst_backend="embedded")


# --- the command line -----------------------------------------------------------------------------


def test_cli_on_a_milvus_collection(capsys, milvus, tmp_path, monkeypatch):
    name = milvus.location("cli")
    opts = ["--backend", "milvus", "--uri", milvus.milvus_uri]
    code, out, err = run(capsys, "ingest", name, "--csv", PRODUCTS_CSV, "-m", "colour-histogram", *opts)
    assert code == 0 and "16 added" in out, err
    code, out, _ = run(capsys, "search", name, PRODUCTS_DIR / "images/13466.jpg", "-k", "3", "--json", *opts)
    assert code == 0 and json.loads(out)["hits"][0]["id"] == "13466"
    code, out, _ = run(capsys, "search", name, "--product", "13466", "--gender", "WOMEN", "--json", *opts)
    hits = json.loads(out)["hits"]
    assert code == 0 and len(hits) == 7 and "13466" not in [h["id"] for h in hits]
    monkeypatch.setenv("LOOKALIKE_BACKEND", "milvus")  # the settings variables work as well as the options
    monkeypatch.setenv("LOOKALIKE_MILVUS_URI", milvus.milvus_uri)
    code, out, _ = run(capsys, "info", name, "--json")
    data = json.loads(out)
    assert code == 0 and data["products"] == 16 and data["backend"] == "milvus" and data["consistent"]
    code, out, _ = run(capsys, "delete", name, "13466", "nope")
    assert code == 0 and "deleted 1 of 2 products; 15 left" in out
    code, out, err = run(
        capsys, "migrate", name, tmp_path / "copy", "--src-backend", "milvus", "--dst-backend", "embedded",
        "--src-uri", milvus.milvus_uri,
    )  # fmt: skip
    assert code == 0 and "15 copied" in out and "15 products" in out, err
    code, _, err = run(capsys, "info", "no_such_collection")
    assert code == 1 and "no lookalike catalogue" in err
    monkeypatch.delenv("LOOKALIKE_MILVUS_URI")
    code, _, err = run(capsys, "info", name)
    assert code == 1 and "needs a URI" in err


def test_pictures_of_a_lite_catalogue_sit_beside_its_file(milvus):
    if isinstance(milvus, ServerCatalogMaker):
        pytest.skip("a Milvus Lite layout")
    with milvus.create() as cat:
        cat.upsert(Product(id="a"), (PRODUCTS_DIR / "images/13466.jpg").read_bytes())
        assert cat.images_dir == Path(str(Path(milvus.milvus_uri).resolve()) + ".images") / str(cat.path)
        assert cat.images_dir in cat.image_path("a").parents
        shutil.rmtree(cat.images_dir)
        with pytest.raises(CatalogError, match="missing"):
            cat.image_path("a")


def test_the_web_service_serves_a_milvus_catalogue(tmp_path):
    from fastapi.testclient import TestClient

    from lookalike import Catalog, read_csv
    from lookalike.service import ServiceSettings, create_app

    uri = str(tmp_path / "served.db")
    with Catalog.create("served", extractor="colour-histogram", backend="milvus", uri=uri) as cat:
        cat.ingest(read_csv(PRODUCTS_CSV))
    settings = ServiceSettings(backend="milvus", milvus_uri=uri)
    with TestClient(create_app("served", settings)) as client:
        assert client.get("/healthz").json()["products"] == 16
        hits = client.post("/api/search", json={"product_id": "13466", "k": 3}).json()["hits"]
        assert len(hits) == 3 and "13466" not in [h["id"] for h in hits]
        assert client.get("/api/products/13466/image").status_code == 200
        assert client.get("/api/products", params={"article_type": "Jeans"}).json()["total"] == 3
