"""Feedback ("more like these, less like those"): the ranking stage, the Python API, bad input, an exact picture
first and the twins' representative (issue 24)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog.feedback_rank import FeedbackQuery, FeedbackWeights, Judgements, family_shares, kind_pairs
from lookalike.catalog.feedback_rank import kind_shares as shares
from lookalike.catalog.ranking import (
    EXACT_SIMILARITY,
    QueryContext,
    collapse_duplicates,
    exact_first,
    feedback_stage,
    merge_mirror_views,
)
from lookalike.colour.families import family_index
from lookalike.errors import InvalidQueryError, ProductNotFoundError
from lookalike.product import Filters, Hit, Product

DATA = Path(__file__).parent / "data"
PHOTO = DATA / "photos" / "tshirt.jpg"
PICTURES = DATA / "products" / "images"
DIM = 4


# --- the stage, on made-up vectors ------------------------------------------------------------------
def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def _products() -> dict[str, Product]:
    rows = [
        ("a", "Tshirts", "Black"),
        ("b", "Tshirts", "White"),
        ("c", "Shirts", "Black"),
        ("d", "Shirts", "White"),
        ("liked", "Shirts", "Blue"),
        ("disliked", "Tshirts", "Red"),
    ]
    return {pid: Product(id=pid, article_type=kind, colour=colour) for pid, kind, colour in rows}


def _ranked(products: dict[str, Product], liked: list[str], disliked: list[str], weights: FeedbackWeights) -> list[str]:
    """The order the feedback stage gives candidates a-d, all equally similar to the query."""
    same = _unit(1, 0, 0, 0)
    vectors = {pid: same[None, :] for pid in products}
    judged = Judgements(
        tuple(liked),
        tuple(disliked),
        np.stack([vectors[i][0] for i in liked]) if liked else np.zeros((0, DIM), np.float32),
        np.arange(len(liked)),
        np.stack([vectors[i][0] for i in disliked]) if disliked else np.zeros((0, DIM), np.float32),
        np.arange(len(disliked)),
        shares([products[i].article_type for i in liked]),
        shares([products[i].article_type for i in disliked]),
        family_shares([family_index(products[i].colour or "") for i in liked]),
        family_shares([family_index(products[i].colour or "") for i in disliked]),
        kind_pairs([products[i].article_type for i in liked], [family_index(products[i].colour or "") for i in liked]),
        kind_pairs(
            [products[i].article_type for i in disliked], [family_index(products[i].colour or "") for i in disliked]
        ),
    )
    fb = FeedbackQuery(judged, weights, same[None, :], lambda ids: {i: vectors[i] for i in ids})
    hits = [Hit(pid, 0.5, products[pid]) for pid in "abcd"]
    (out,) = feedback_stage(QueryContext(k=4, feedback=fb), [hits])
    assert all(h.score == 0.5 for h in out)  # the similarity to the query is kept
    assert [h.rank_score for h in out] == sorted((h.rank_score for h in out), reverse=True)
    return [h.id for h in out]


ONLY_KIND = FeedbackWeights(disliked_colour=0.0, liked_pair=0.0, disliked_pair=0.0)
ONLY_COLOUR = FeedbackWeights(liked_kind=0.0, disliked_kind=0.0, liked_pair=0.0, disliked_pair=0.0)


def test_the_liked_kind_goes_up() -> None:
    order = _ranked(_products(), ["liked"], [], ONLY_KIND)  # a liked shirt: shirts first
    assert set(order[:2]) == {"c", "d"}


def test_the_disliked_kind_goes_down() -> None:
    order = _ranked(_products(), [], ["disliked"], ONLY_KIND)  # a disliked T-shirt: T-shirts last
    assert set(order[2:]) == {"a", "b"}


def test_the_disliked_colour_goes_down() -> None:
    products = _products()
    products["disliked"] = Product(id="disliked", article_type="Jeans", colour="Black")
    order = _ranked(products, [], ["disliked"], ONLY_COLOUR)  # disliked black jeans: black goes down
    assert set(order[2:]) == {"a", "c"}


def test_a_disliked_colour_a_liked_product_has_does_not_go_down() -> None:
    products = _products()
    products["liked"] = Product(id="liked", article_type="Jeans", colour="Black")
    products["disliked"] = Product(id="disliked", article_type="Jeans", colour="Black")
    # both judged black: black is not held against a candidate (the four tie and keep their order)
    assert _ranked(products, ["liked"], ["disliked"], ONLY_COLOUR) == ["a", "b", "c", "d"]


def test_the_kind_in_the_colour_of_a_disliked_product_goes_down_and_a_liked_one_up() -> None:
    products = _products()
    products["liked"] = Product(id="liked", article_type="Shirts", colour="White")
    products["disliked"] = Product(id="disliked", article_type="Tshirts", colour="Black")
    pairs = FeedbackWeights(liked_kind=0.0, disliked_kind=0.0, disliked_colour=0.0)
    order = _ranked(products, ["liked"], ["disliked"], pairs)
    assert order[0] == "d" and order[-1] == "a"


def test_the_judged_products_come_first_and_last() -> None:
    products = _products()
    vectors = {pid: _unit(1, 0, 0, 0)[None, :] for pid in products}
    judged = Judgements(("b",), ("a",), vectors["b"], np.zeros(1, np.int64), vectors["a"], np.zeros(1, np.int64))
    fb = FeedbackQuery(judged, FeedbackWeights(), _unit(1, 0, 0, 0)[None, :], lambda ids: {i: vectors[i] for i in ids})
    hits = [Hit(pid, 0.5, products[pid]) for pid in "abcd"]
    (out,) = feedback_stage(QueryContext(k=4, feedback=fb), [hits])
    assert out[0].id == "b" and out[-1].id == "a"


def test_rocchio_and_best_score_both_move_towards_the_liked_product() -> None:
    products = {p: Product(id=p, article_type="Tshirts", colour="Black") for p in ("near-liked", "near-query", "lk")}
    vectors = {
        "near-liked": _unit(0.2, 1, 0, 0)[None, :],
        "near-query": _unit(1, 0.3, 0, 0.3)[None, :],
        "lk": _unit(0, 1, 0, 0)[None, :],
    }
    for strategy in ("average", "best"):
        judged = Judgements(("lk",), (), vectors["lk"], np.zeros(1, np.int64), np.zeros((0, DIM), np.float32),
                            np.zeros(0, np.int64))  # fmt: skip
        w = FeedbackWeights(strategy=strategy, liked=2.0, judged=0.0)
        fb = FeedbackQuery(judged, w, _unit(1, 0, 0, 0)[None, :], lambda ids: {i: vectors[i] for i in ids})
        hits = [Hit("near-query", 0.9, products["near-query"]), Hit("near-liked", 0.2, products["near-liked"])]
        (out,) = feedback_stage(QueryContext(k=2, feedback=fb), [hits])
        assert out[0].id == "near-liked", strategy


def test_no_feedback_leaves_the_lists_alone() -> None:
    hits = [Hit("x", 0.4, Product(id="x")), Hit("y", 0.9, Product(id="y"))]
    assert feedback_stage(QueryContext(k=2), [hits]) == [hits]


# --- exact picture first; the twins' representative ---------------------------------------------------
def test_an_exact_picture_goes_first_whatever_the_stages_did() -> None:
    hits = [
        Hit("other", 0.80, Product(id="other"), 1.0, 1.70),
        Hit("exact", 0.999, Product(id="exact"), 0.0, 1.20),
        Hit("near", 0.960, Product(id="near"), 0.0, 1.10),
        Hit("re-encoded", 0.975, Product(id="re-encoded"), 0.0, 1.00),
    ]
    (out,) = exact_first(QueryContext(k=4), [hits])
    assert [h.id for h in out] == ["exact", "re-encoded", "other", "near"]  # 0.960 is below the threshold: stays
    assert [h.rank_score for h in out] == sorted((h.rank_score for h in out), reverse=True)
    assert out[0].score == 0.999 and out[0].rank_score > 1.70
    assert 0.96 < EXACT_SIMILARITY <= 0.975  # above every shopper's photo (0.886), below a re-encoded JPEG


def test_a_list_in_similarity_order_is_left_alone() -> None:
    hits = [Hit("exact", 1.0, Product(id="exact")), Hit("other", 0.5, Product(id="other"))]
    assert exact_first(QueryContext(k=2), [hits]) == [hits]


@pytest.mark.parametrize("order", [("b-twin", "a-twin"), ("a-twin", "b-twin")])
def test_twins_are_shown_as_the_smallest_id_whichever_comes_first(order: tuple[str, str]) -> None:
    hits = [Hit(order[0], 0.9, Product(id=order[0])), Hit(order[1], 0.9 - 1e-7, Product(id=order[1]))]
    hits.append(Hit("c", 0.5, Product(id="c")))
    ctx = QueryContext(k=3, pictures=lambda ids: {i: ("sha" if i.endswith("twin") else i) for i in ids})
    (out,) = collapse_duplicates(ctx, [hits])
    assert [h.id for h in out] == ["a-twin", "c"]
    assert out[0].duplicates == ["b-twin"]


# --- the Python API, on the 16 test products --------------------------------------------------------
def _ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


def test_a_photo_with_feedback_brings_the_liked_product_first_and_the_disliked_last(built_catalog) -> None:
    plain = built_catalog.search(PHOTO, k=16)
    liked, disliked = plain[5].id, plain[0].id
    result = built_catalog.search_result(PHOTO, k=16, positive=[liked], negative=[disliked])
    assert result.hits[0].id == liked
    assert result.hits[-1].id == disliked  # judged products may come back: this one last
    assert result.ignored == []


def test_the_liked_products_agreed_colour_becomes_the_colour_preference(built_catalog) -> None:
    result = built_catalog.search_result(PHOTO, k=5, positive=["18990", "12055"])  # two black T-shirts
    assert (result.colour, result.colour_source) == ("black", "liked")
    asked = built_catalog.search_result(PHOTO, k=5, positive=["18990", "12055"], colour="red")
    assert (asked.colour, asked.colour_source) == ("red", "preference")  # an asked colour wins


def test_more_like_these_alone_and_with_a_product_or_words(built_catalog) -> None:
    alone = built_catalog.search(k=4, positive=["16520", "11237"])  # two pairs of jeans
    assert set(_ids(alone[:2])) == {"16520", "11237"} and alone[2].product.article_type == "Jeans"
    product = built_catalog.search(product_id="10438", k=3, negative=["11237"])
    assert "10438" not in _ids(product) and _ids(product)[-1] != "11237"
    words = built_catalog.search(text="black shoes", k=3, positive=["17831"])
    assert words[0].id == "17831"


def test_feedback_keeps_the_filters(built_catalog) -> None:
    hits = built_catalog.search(PHOTO, k=16, positive=["16520"], filters=Filters(article_type="Tshirts"))
    assert hits and all(h.product.article_type == "Tshirts" for h in hits)  # the liked jeans stay out


def test_empty_lists_are_a_plain_search(built_catalog) -> None:
    assert _ids(built_catalog.search(PHOTO, k=5, positive=[], negative=[])) == _ids(built_catalog.search(PHOTO, k=5))


def test_unknown_ids_are_named(built_catalog) -> None:
    with pytest.raises(ProductNotFoundError, match=r"'nope'.*'gone'"):
        built_catalog.search(PHOTO, positive=["18990", "nope"], negative=["gone"])
    result = built_catalog.search_result(PHOTO, k=3, positive=["18990", "nope"], ignore_missing=True)
    assert result.ignored == ["nope"] and result.hits[0].id == "18990"


@pytest.mark.parametrize(
    ("positive", "negative", "message"),
    [
        ([str(i) for i in range(60)], [f"n{i}" for i in range(41)], "at most 100"),
        (["18990"], ["18990"], "liked and disliked"),
        (["a\nb"], [], "control character"),
        ("18990", [], "list of product ids"),
    ],
)
def test_bad_judgements_are_refused(built_catalog, positive, negative, message) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        built_catalog.search(PHOTO, positive=positive, negative=negative)


def test_only_dislikes_need_a_query(built_catalog) -> None:
    with pytest.raises(InvalidQueryError, match="liked product"):
        built_catalog.search(negative=["18990"])


def test_a_product_deleted_between_rounds_is_ignored_and_reported(new_catalog) -> None:
    from lookalike import read_csv

    new_catalog.ingest(read_csv(DATA / "products" / "products.csv"), batch_size=8)
    first = new_catalog.search(PHOTO, k=4)
    new_catalog.delete([first[1].id])
    again = new_catalog.search_result(PHOTO, k=4, positive=[first[0].id], negative=[first[1].id], ignore_missing=True)
    assert again.ignored == [first[1].id] and again.hits[0].id == first[0].id


def test_a_catalogue_picture_finds_its_product_first_whatever_the_stages_do(built_catalog, monkeypatch) -> None:
    def last_first(ctx, ranked):  # a stage that turns the order upside down, with keys to match
        return [[Hit(h.id, h.score, h.product, 0.0, -h.score) for h in reversed(hits)] for hits in ranked]

    monkeypatch.setattr(built_catalog, "ranking_stages", (merge_mirror_views, last_first, exact_first))
    hits = built_catalog.search(PICTURES / "17831.jpg", k=5)
    assert hits[0].id == "17831" and hits[0].rank_score > hits[1].rank_score
    assert built_catalog.search(PICTURES / "10729.jpg", k=3, colour="red")[0].id == "10729"


@pytest.mark.parametrize("backend", ["embedded", "milvus"])
def test_twins_are_shown_as_the_same_product_on_both_backends(catalog_maker, lite0, products_copy, backend) -> None:
    from lookalike import read_csv

    from .conftest import add_twin

    cat = catalog_maker(backend).create("twins", extractor=lite0)
    try:
        assert cat.ingest(read_csv(add_twin(products_copy))).added == 17
        for colour_rank in (True, False):
            top = cat.search(PICTURES / "20842.jpg", k=3, colour_rank=colour_rank)[0]
            assert (top.id, top.duplicates) == ("20842", ["twin-20842"])  # the smaller id, whichever came first
    finally:
        cat.close()
