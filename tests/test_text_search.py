"""Search by words: the FTS5 word index, the query checks, the fusion, and words through the catalogue,
the CLI and the API."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog.text_query import check_text, fuse_ranked, move_by_words, read_intent
from lookalike.errors import InvalidQueryError
from lookalike.product import PREDICTED_COLOUR, Hit, Product
from lookalike.store.text_index import TermStats, match_query

from .conftest import PHOTOS, PRODUCTS_CSV, run_cli

HOSTILE = ['"', "AND(", "NEAR(a b", "*", "title:red", "^shirt", "a OR", '"red" AND "blue"', "(((", "- red", "NOT"]


@pytest.fixture(scope="module")
def fashion_pictures(tmp_path_factory: pytest.TempPathFactory):
    """The 16 test products as pictures only (ids and images, no text), in lookalike-fashion's space."""
    from lookalike import Catalog, read_csv

    records = [r for r in read_csv(PRODUCTS_CSV)]
    for r in records:
        p = r.product
        r.product = Product(id=p.id, image=p.image)
    cat = Catalog.create(tmp_path_factory.mktemp("pictures") / "cat", extractor="lookalike-fashion")
    cat.ingest(records, batch_size=8)
    yield cat
    cat.close()


# --- the word index -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_fts_query_syntax_never_raises_on_user_text(built_catalog, text: str) -> None:
    built_catalog.backend.text_search(text, 5)  # no sqlite3.OperationalError


def test_match_query_quotes_each_word_and_drops_glue() -> None:
    assert match_query('Navy "blue" shirt for men NEAR(') == '"navy" OR "blue" OR "shirt" OR "men" OR "near"'
    assert match_query('" * ( ^') is None


def test_match_query_drops_words_most_products_have_but_keeps_the_rarest() -> None:
    counts = {"navy": 30, "shirt": 400, "men": 5000, "casual": 8000}
    assert match_query("navy shirt for men", counts, 3_000, 0.1) == '"navy"'
    assert match_query("casual men", counts, 10_000, 0.1) == '"men"'
    assert match_query("navy shirt for men", counts, 10_000, 0.1) == '"navy" OR "shirt"'
    assert match_query("navy shirt for men", counts, 10_000, 1.0) == '"navy" OR "shirt" OR "men"'


def test_term_stats_count_products_per_word_and_forget_them_on_a_write() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE products_fts USING fts5(title, tokenize='porter unicode61')")
    conn.executemany("INSERT INTO products_fts(rowid, title) VALUES (?, ?)", [(1, "navy shirts"), (2, "red shirt")])
    stats = TermStats()
    assert stats.lookup(conn, ["shirt", "navy", "blue"]) == ({"shirt": 2, "navy": 1, "blue": 0}, 2)
    conn.execute("INSERT INTO products_fts(rowid, title) VALUES (3, 'blue shirt')")
    assert stats.lookup(conn, ["blue"]) == ({"blue": 1}, 3)


def test_word_index_follows_upsert_update_and_delete(new_catalog) -> None:
    cat = new_catalog
    img = next(PRODUCTS_CSV.parent.glob("images/*.jpg"))
    cat.upsert(Product(id="p1", title="Crimson velvet blazer", colour="Maroon"), img)
    assert [p.id for p, _ in cat.backend.text_search("velvet", 5)] == ["p1"]
    assert [p.id for p, _ in cat.backend.text_search("red", 5)] == ["p1"]  # the colour's family is indexed
    cat.upsert(Product(id="p1", title="Linen summer dress", colour="Maroon"))  # metadata only
    assert cat.backend.text_search("velvet", 5) == []
    assert [p.id for p, _ in cat.backend.text_search("linen dresses", 5)] == ["p1"]  # stemmed plural
    cat.delete(["p1"])
    assert cat.backend.text_search("linen", 5) == []
    conn = sqlite3.connect(cat.path / "products.db")
    assert conn.execute("SELECT COUNT(*) FROM products_fts").fetchone()[0] == 0


def test_word_index_is_built_on_open_for_an_older_catalogue(built_catalog, tmp_path: Path) -> None:
    import shutil

    from lookalike import Catalog

    built_catalog.checkpoint()
    copy = tmp_path / "old"
    shutil.copytree(built_catalog.path, copy)
    with sqlite3.connect(copy / "products.db") as conn:  # as a catalogue made before the word index
        conn.execute("DROP TABLE products_fts")
        conn.execute("DELETE FROM meta WHERE key = 'text_index'")
    with Catalog.open(copy, extractor=built_catalog.extractor) as cat:
        assert next(p.id for p, _ in cat.backend.text_search("Guess chronograph", 3)) == "19265"


def test_filters_apply_to_the_word_search(built_catalog) -> None:
    from lookalike.product import Filters

    found = built_catalog.backend.text_search("black", 10, Filters(category="Footwear"))
    assert [p.id for p, _ in found] == ["17831"]


def _word_store(tmp_path: Path):
    """A product store of 300 seeded products: words drawn from a small vocabulary (repeats, plurals, one title
    of 300 words so a length takes two bytes), genders for a filter."""
    import random

    from lookalike.backends.base import UpsertItem
    from lookalike.store import ProductStore

    vocab = [
        "navy",
        "blue",
        "shirt",
        "shirts",
        "men",
        "women",
        "red",
        "dress",
        "casual",
        "formal",
        "watch",
        "watches",
        "sneaker",
        "sneakers",
        "denim",
    ]
    rng = random.Random(7)
    store = ProductStore(tmp_path / "products.db", 4, create=True)
    items = []
    for i in range(300):
        title = " ".join(rng.choice(vocab) for _ in range(300 if i == 5 else rng.randint(1, 9)))
        p = Product(
            id=f"p{i}", title=title, colour=rng.choice(["Navy Blue", "Red", None]), gender=rng.choice(["Men", "Women"])
        )
        items.append(UpsertItem(p, np.ones(4, dtype=np.float32)))
    store.upsert(items)
    return store, vocab, rng


def test_word_scores_are_fts5_bm25_exactly(tmp_path: Path) -> None:
    from lookalike.product import Filters
    from lookalike.store.text_index import search_text_rows
    from lookalike.store.word_scores import WordScores

    store, vocab, rng = _word_store(tmp_path)
    conn = store._conn()
    women = store.filter_rowids(Filters(gender="Women"))
    where, params = store._where(Filters(gender="Women"))
    scores, answered = WordScores(), 0
    for _ in range(150):
        text = " ".join(rng.choice([*vocab, "for", "zebra", "blue"]) for _ in range(rng.randint(1, 5)))
        for k in (1, 7, 50):
            fts = search_text_rows(conn, text, k)
            assert scores.search(conn, text, k) == fts  # the very same floats, in the same order
            answered += bool(fts)
        assert scores.search(conn, text, 20, women) == search_text_rows(conn, text, 20, where, params)
    assert answered > 300  # most phrases found products
    store.close()


def test_word_scores_follow_every_write_and_another_process(tmp_path: Path) -> None:
    from lookalike.backends.base import UpsertItem
    from lookalike.store import ProductStore
    from lookalike.store.text_index import search_text_rows

    store, _, _ = _word_store(tmp_path)
    other = ProductStore(tmp_path / "products.db", 4)  # another process's store on the same file

    def ids(text: str) -> list[str]:
        found = store.text_rowids(text, 400)
        assert found == search_text_rows(store._conn(), text, 400)  # never a stale answer
        return [p.id for p in store.products_by_rowid([r for r, _ in found]).values()]

    assert ids("velvet") == [] and len(ids("navy")) > 50  # remembered now
    store.upsert([UpsertItem(Product(id="v1", title="velvet navy blazer"), np.ones(4, dtype=np.float32))])
    assert ids("velvet") == ["v1"]
    other.upsert([UpsertItem(Product(id="v2", title="velvet velvet"), np.ones(4, dtype=np.float32))])
    assert sorted(ids("velvet")) == ["v1", "v2"]
    other.upsert([UpsertItem(Product(id="v1", title="linen"), None)])  # metadata only
    assert ids("velvet") == ["v2"] and "v1" not in ids("navy")
    other.delete_rows(["v2"])
    assert ids("velvet") == [] and ids("linen") == ["v1"]
    store._word_scores._stems["linen"] = None  # a word the tokenizer would split: FTS5 answers
    assert store._word_scores.search(store._conn(), "linen", 5) is None and ids("linen") == ["v1"]
    other.close()
    store.close()


def test_a_words_query_sees_products_added_and_deleted(new_catalog) -> None:
    cat = new_catalog
    img, other = sorted(PRODUCTS_CSV.parent.glob("images/*.jpg"))[:2]
    cat.upsert(Product(id="p1", title="Crimson velvet blazer", colour="Maroon"), img)
    assert [h.id for h in cat.search(text="velvet blazer", k=3)] == ["p1"]
    cat.upsert(Product(id="p2", title="Velvet blazers, velvet trousers", colour="Black"), other)
    assert [h.id for h in cat.search(text="velvet blazer", k=3)] == ["p2", "p1"]
    cat.delete(["p2"])
    assert [h.id for h in cat.search(text="velvet blazer", k=3)] == ["p1"]


def test_search_rows_are_kept_for_the_store_state_they_were_read_in() -> None:
    from lookalike.store.rows import SearchRows

    memory = SearchRows()
    row_a = (1, "a", *([None] * 11), "h1")
    row_b = (2, "b", *([None] * 11), None)
    memory.remember(3, [row_a, row_b])
    assert memory.known(3, ["a", "b", "c"]) == ({"a": "h1", "b": None}, ["c"])
    assert memory.rows(3, [2, 5]) == ([row_b], [5])
    assert memory.known(4, ["a"]) == ({}, ["a"])  # another state: nothing known
    assert memory.rows(4, [1]) == ([], [1])
    memory.remember(4, [(7, "c", *([None] * 11), "h2")])
    assert memory.known(4, ["a", "c"]) == ({"c": "h2"}, ["a"])
    assert memory.rows(4, [1, 7])[1] == [1]


def test_a_search_reads_rows_again_after_a_write_and_its_products_are_its_own(new_catalog, products_copy) -> None:
    from lookalike import read_csv

    cat = new_catalog
    cat.ingest(read_csv(products_copy))
    pid = cat.search(text="shirt", k=1)[0].id
    first = cat.search(product_id=pid, k=5)
    first[0].product.extra["changed by the caller"] = True  # a caller's change stays with its hits
    again = cat.search(product_id=pid, k=5)
    assert [h.id for h in again] == [h.id for h in first]
    assert "changed by the caller" not in again[0].product.extra
    renamed = again[0].product
    cat.upsert(Product(**{**renamed.to_dict(), "title": "Renamed after the first search"}))
    after = {h.id: h.product for h in cat.search(product_id=pid, k=5)}
    assert after[renamed.id].title == "Renamed after the first search"


def test_twins_collapse_in_a_words_query_until_one_gets_another_picture(new_catalog, products_copy) -> None:
    from lookalike import read_csv

    from .conftest import add_twin

    cat = new_catalog
    assert cat.ingest(read_csv(add_twin(products_copy))).added == 17
    title = cat.get("20842").title
    first = cat.search(text=title, k=3)
    assert {first[0].id, *first[0].duplicates} == {"20842", "twin-20842"}
    twin = cat.get("twin-20842")
    cat.upsert(twin, next(p for p in products_copy.parent.glob("images/*.jpg") if p.stem != "20842"))
    again = cat.search(text=title, k=3)
    assert {"20842", "twin-20842"} <= {h.id for h in again} and not again[0].duplicates


# --- checks and pure parts --------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", "x" * 501, "red\x00shirt", "tab\there", "bell\x07"])
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidQueryError):
        check_text(text)


def test_words_name_colour_gender_and_type() -> None:
    intent = read_intent("Navy blue shirts for men", ["Shirts", "Tshirts", "Jeans"])
    assert (intent.colour, intent.gender, intent.article_types) == ("blue", "Men", ("Shirts",))
    assert read_intent("a watch for her", ["Watches"]).article_types == ("Watches",)
    assert read_intent("something nice").colour is None


def _hit(i: str, s: float) -> Hit:
    return Hit(i, s, Product(id=i))


def test_weighted_fusion_scores_word_only_hits_by_their_exact_cosine() -> None:
    vec = [_hit("a", 0.5), _hit("b", 0.4)]
    words = [(_hit("c", 0.0), 10.0), (_hit("b", 0.0), 5.0)]
    fused = fuse_ranked(vec, words, lambda ids: {"c": 0.3}, 3, "weighted", 0.3)
    assert [h.id for h in fused] == ["c", "b", "a"]  # c 0.3+0.3, b 0.4+0.15, a 0.5
    assert fused[0].score == pytest.approx(0.6)
    assert [h.id for h in fuse_ranked(vec, [], lambda ids: {}, 2)] == ["a", "b"]  # no words: the vector list
    assert next(h.id for h in fuse_ranked(vec, words, lambda ids: {}, 3, "rrf")) == "b"  # in both lists


def test_move_by_words_is_unit_length() -> None:
    q = move_by_words(np.eye(2, 4, dtype=np.float32), np.array([0, 0, 1, 0], dtype=np.float32), 0.5)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0) and q[0, 2] > 0


# --- through the catalogue ----------------------------------------------------------------------------
def test_words_alone_on_a_catalogue_with_text_and_another_model_use_bm25(built_catalog) -> None:
    result = built_catalog.search_result(text="red watch", k=3)
    assert built_catalog.text_encoder is None  # lite0's space is not the text tower's
    assert result.hits[0].id == "21483" and (result.colour, result.colour_source) == ("red", "words")


def test_words_alone_on_pictures_only_use_the_text_tower(fashion_pictures) -> None:
    assert fashion_pictures.backend.text_search("watch", 5) == []  # no words stored
    hits = fashion_pictures.search(text="wrist watch", k=2)
    assert {h.id for h in hits} <= {"19265", "21483"} and hits


def test_words_alone_leave_predicted_colours_to_the_words_vector(fashion_pictures) -> None:
    words = fashion_pictures.search_result(text="red wrist watch", k=5)
    assert (words.colour, words.colour_source) == ("red", "words")
    assert words.hits and all(h.colour_match == 0.0 for h in words.hits)  # no product has its own colour field
    stated = fashion_pictures.search_result(text="wrist watch", colour="red", k=5)  # a stated preference: they count
    predicted = {h.id: h.product.extra.get(PREDICTED_COLOUR) for h in stated.hits}
    assert [h.colour_match for h in stated.hits] == [float(predicted[h.id] == "red") for h in stated.hits]
    assert any(h.colour_match == 1.0 for h in stated.hits)


def test_the_colour_stage_can_leave_predicted_colours_out() -> None:
    from lookalike.catalog.ranking import QueryContext, colour_stage
    from lookalike.colour.ranking import preference_distribution

    hits = [
        Hit("guessed", 0.9, Product("guessed", extra={PREDICTED_COLOUR: "red"})),
        Hit("own", 0.8, Product("own", colour="Red")),
    ]
    ctx = QueryContext(2, candidates=2, colour=preference_distribution("red"), colour_weight=0.5, kind_weight=0)
    assert [h.colour_match for h in colour_stage(ctx, [hits])[0]] == [1.0, 1.0]
    ranked = colour_stage(replace(ctx, predicted_colours=False), [hits])[0]
    assert [(h.id, h.colour_match) for h in ranked] == [("own", 1.0), ("guessed", 0.0)]


def test_photo_plus_colour_words_rank_that_colour_first(fashion_pictures) -> None:
    result = fashion_pictures.search_result(PHOTOS / "tshirt.jpg", text="in red", k=3)
    assert (result.colour, result.colour_source) == ("red", "words")
    plain = fashion_pictures.search_result(PHOTOS / "tshirt.jpg", k=3)
    assert [h.id for h in result.hits] != [h.id for h in plain.hits]


def test_text_with_two_queries_is_refused(built_catalog) -> None:
    with pytest.raises(InvalidQueryError):
        built_catalog.search(url="https://example.com/a.jpg", product_id="13466", text="red")


def test_milvus_answers_words_by_the_vector_alone(catalog_maker) -> None:
    from lookalike import read_csv

    maker = catalog_maker("milvus")
    with maker.create(extractor="lookalike-fashion") as cat:
        cat.ingest(read_csv(PRODUCTS_CSV), batch_size=8)
        assert cat.backend.text_search("watch", 5) == []
        hits = cat.search(text="wrist watch", k=2)
        assert hits and {h.id for h in hits} <= {"19265", "21483"}


# --- CLI ----------------------------------------------------------------------------------------------
def test_cli_text_search_and_batch_of_phrases(built_catalog, capsys, tmp_path: Path) -> None:
    built_catalog.checkpoint()
    code, out, err = run_cli(capsys, "search", built_catalog.path, "--text", "red watch", "--json", "-k", "2")
    assert code == 0, err and json.loads(out)["hits"][0]["id"] == "21483"
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("red watch\nblack handbag\n")
    code, out, err = run_cli(capsys, "search", built_catalog.path, "--batch", phrases, "--phrases", "--json")
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert code == 0, err
    assert [ln["query"] for ln in lines] == ["red watch", "black handbag"] and lines[1]["hits"][0]["id"] == "10729"


def test_cli_refuses_empty_text_like_other_invalid_queries(built_catalog, capsys) -> None:
    code, _, err = run_cli(capsys, "search", built_catalog.path, "--text", "  ")
    bad_k, _, _ = run_cli(capsys, "search", built_catalog.path, "--text", "red", "-k", "0")
    assert code == bad_k != 0 and "empty" in err


# --- API ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(built_catalog):
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceSettings, create_app

    built_catalog.checkpoint()
    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=5, max_k=20)
    with TestClient(create_app(built_catalog.path, settings)) as client:
        yield client


def test_api_searches_by_words_alone_and_with_a_product(api) -> None:
    r = api.post("/api/search", json={"text": "red watch", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"type": "text", "value": "red watch"}
    assert body["hits"][0]["id"] == "21483" and body["colour"]["source"] == "words"
    r = api.post("/api/search", json={"product_id": "18990", "text": "in red", "k": 3})
    assert r.status_code == 200 and r.json()["colour"]["ranked_by"] == "red"
    assert r.json()["query"]["text"] == "in red"


def test_api_photo_with_words_in_multipart(api) -> None:
    files = {"image": ("tshirt.jpg", (PHOTOS / "tshirt.jpg").read_bytes(), "image/jpeg")}
    r = api.post("/api/search", files=files, data={"text": "in red", "k": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["colour"]["source"] == "words" and r.json()["query"]["text"] == "in red"


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 501},
        {"text": "red\u0000"},
        {"url": "https://a.b/c.jpg", "product_id": "1"},
        {},
    ],
)
def test_api_refuses_bad_words_with_422(api, body) -> None:
    r = api.post("/api/search", json=body)
    assert r.status_code == 422 and r.json()["detail"]


def test_openapi_documents_text_in_the_one_of(api) -> None:
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    req = schema["SearchRequest"]
    assert len(req["oneOf"]) == 4 and "text" in req["properties"]  # url, product_id, text, or liked ids alone
    assert "text" in schema["SearchUpload"]["properties"]
