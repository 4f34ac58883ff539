"""Misspelt words of a words query: corrected against the catalogue's own words, said back as ``understood``
(the result, the API, the CLI), real words and numbers kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.catalog.spelling import Speller, english_words, max_distance, speller_for
from lookalike.product import Product

from .conftest import PRODUCTS_DIR, run_cli

IMAGES = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
JEANS = [
    ("blue-1", "Flying Machine Men Blue Jeans", "Jeans", "Blue"),
    ("blue-2", "Spykar Women Blue Jeans", "Jeans", "Blue"),
    ("blue-3", "Locomotive Men Washed Blue Jeans", "Jeans", "Blue"),
    ("black-1", "Roadster Men Black Jeans", "Jeans", "Black"),
    ("black-2", "Levis Women Black Jeans", "Jeans", "Black"),
    ("tee-1", "Adidas Men Black Tshirt", "Tshirts", "Black"),
]
BLACK_JEANS = {"black-1", "black-2"}


@pytest.fixture(scope="module")
def jeans(tmp_path_factory: pytest.TempPathFactory, lite0):
    """Three blue jeans, two black jeans and a black T-shirt (lite0: words are searched by BM25 alone)."""
    from lookalike import Catalog

    cat = Catalog.create(tmp_path_factory.mktemp("spelling") / "cat", extractor=lite0)
    for (pid, title, kind, colour), img in zip(JEANS, IMAGES, strict=False):
        cat.upsert(Product(id=pid, title=title, article_type=kind, colour=colour, gender="Men"), img)
    cat.checkpoint()
    yield cat
    cat.close()


# --- the speller ----------------------------------------------------------------------------------------
def test_a_missing_letter_of_a_colour_word_is_put_back() -> None:
    speller = Speller({"black": 5, "jeans": 9}, names=("black", "blue"))
    assert speller.correct("blak jeans") == "black jeans"


def test_a_swapped_pair_of_letters_counts_as_one_edit() -> None:
    speller = Speller({"jeans": 9, "black": 5}, names=("jeans",))
    assert speller.correct("black jaens") == "black jeans"
    assert speller.correct("balck jeans") == "black jeans"


def test_a_real_word_is_kept_even_next_to_a_more_frequent_one() -> None:
    speller = Speller({"black": 500, "back": 2, "pack": 2})
    assert speller.correct("back pack") == "back pack"


def test_english_words_and_plurals_of_known_words_are_real() -> None:
    speller = Speller({"cardiac": 50, "thong": 3, "jeans": 9}, keep=english_words())
    assert speller.correct("cardigan thongs jean") == "cardigan thongs jean"  # English; a plural; a singular


def test_numbers_codes_and_short_words_are_kept() -> None:
    speller = Speller({"jeans": 9, "watch": 3, "red": 4}, names=("red",))
    assert speller.correct("501 jeans") == "501 jeans"
    assert speller.correct("watch W11610L1 90s") == "watch W11610L1 90s"
    assert speller.correct("rd watch") == "rd watch"
    assert max_distance(2) == 0 and max_distance(5) == 1 and max_distance(9) == 2


def test_three_letter_words_are_only_corrected_to_names_by_a_swap_or_a_missing_letter() -> None:
    speller = Speller({"bag": 9, "men": 9}, names=("blue", "red", "men", "tan"))
    assert speller.correct("blu bga mne rde taj") == "blue bga men red taj"  # "bag": no name; "taj" → "tan": a change


def test_the_nearest_wins_then_names_then_frequent_catalogue_words_then_the_towers() -> None:
    assert Speller({"bat": 1, "cat": 90}).word("batt") == "bat"  # nearer
    assert Speller({"shirt": 90, "skirt": 1}, names=("skirt",)).word("sxirt") == "skirt"  # a name
    assert Speller({"shirt": 90, "skirt": 1}).word("sxirt") == "shirt"  # more frequent
    assert Speller({"actor": 1}, extra=("actual",)).word("acsual") == "actual"  # the tower's words last
    assert Speller({"casual": 1}, extra=("actual",)).word("acsual") == "casual"


def test_without_catalogue_words_only_names_are_corrections() -> None:
    speller = Speller({}, names=("black", "jeans"), extra=("kurt",))
    assert speller.correct("blak kurta jaens") == "black kurta jeans"


def test_the_typed_case_is_kept() -> None:
    speller = Speller({"black": 5, "jeans": 9})
    assert speller.correct("Blak JAENS, please!") == "Black JEANS, please!"


def test_nothing_near_enough_is_left_as_typed() -> None:
    assert Speller({"jeans": 9}).correct("zzzzz") == "zzzzz"


# --- through the catalogue ------------------------------------------------------------------------------
def test_blak_jeans_is_understood_as_black_jeans_and_finds_them(jeans) -> None:
    result = jeans.search_result(text="blak jeans", k=2)
    assert result.understood == "black jeans"
    assert {h.id for h in result.hits} == BLACK_JEANS
    assert (result.colour, result.colour_source) == ("black", "words")
    assert [h.id for h in result.hits] == [h.id for h in jeans.search(text="black jeans", k=2)]


def test_a_swapped_letter_in_a_kind_word_still_finds_the_kind(jeans) -> None:
    result = jeans.search_result(text="black jaens", k=3)
    assert result.understood == "black jeans"
    assert {h.id for h in result.hits[:2]} == BLACK_JEANS
    assert [h.id for h in result.hits] == [h.id for h in jeans.search(text="black jeans", k=3)]


def test_words_searched_as_typed_leave_understood_empty(jeans) -> None:
    assert jeans.search_result(text="black jeans", k=2).understood is None
    assert jeans.search_result(text="denim jeans 501", k=2).understood is None


def test_a_batch_of_phrases_is_corrected_too(jeans) -> None:
    typed, fine = jeans.search_texts(["blak jeans", "blue jeans"], k=2)
    assert typed.understood == "black jeans" and {h.id for h in typed.hits} == BLACK_JEANS
    assert fine.understood is None


def test_spelling_can_be_switched_off(jeans) -> None:
    jeans.spelling = False
    try:
        assert jeans.search_result(text="blak jeans", k=2).understood is None
    finally:
        jeans.spelling = True


def test_words_of_products_added_later_are_known(new_catalog) -> None:
    cat = new_catalog
    cat.upsert(Product(id="p1", title="Velvet blazer", colour="Maroon"), IMAGES[0])
    assert cat.search_result(text="velvet blazr", k=1).understood == "velvet blazer"
    assert cat.search_result(text="tartn skirt", k=1).understood is None  # "tartn": nothing near enough yet
    cat.upsert(Product(id="p2", title="Tartan skirt", colour="Red"), IMAGES[1])
    result = cat.search_result(text="tartn skirt", k=1)
    assert result.understood == "tartan skirt" and result.hits[0].id == "p2"


def test_a_catalogue_of_pictures_only_spells_against_colour_and_gender_names(new_catalog) -> None:
    new_catalog.upsert(Product(id="p1"), IMAGES[0])  # no text at all: no words, no article types
    assert new_catalog.search_result(text="blak kurta for gilrs", k=1).understood == "black kurta for girls"


def test_a_backend_without_a_word_index_spells_against_colour_kind_and_gender_names() -> None:
    class Host:
        backend = type("NoWords", (), {})()

        def article_types(self) -> tuple[str, ...]:
            return ("Jeans", "Flip Flops")

    speller = speller_for(Host())  # type: ignore[arg-type]
    assert speller.correct("blak flip flosp for mne") == "black flip flops for men"


# --- the API and the CLI --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(jeans):
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceSettings, create_app

    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=5, max_k=20)
    with TestClient(create_app(jeans.path, settings)) as client:
        yield client


def test_api_says_what_it_understood(api) -> None:
    r = api.post("/api/search", json={"text": "blak jeans", "k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["understood"] == "black jeans" and body["query"]["value"] == "blak jeans"
    assert {h["id"] for h in body["hits"]} == BLACK_JEANS
    assert api.post("/api/search", json={"text": "black jeans", "k": 2}).json()["understood"] is None


def test_cli_shows_the_corrected_words(jeans, capsys, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "search", jeans.path, "--text", "blak jeans", "--json", "-k", "2")
    assert code == 0, err
    body = json.loads(out)
    assert body["understood"] == "black jeans" and {h["id"] for h in body["hits"]} == BLACK_JEANS
    code, out, err = run_cli(capsys, "search", jeans.path, "--text", "blak jeans", "-k", "2")
    assert code == 0, err
    assert "Showing results for: black jeans" in out
    code, out, _ = run_cli(capsys, "search", jeans.path, "--text", "black jeans", "--json", "-k", "2")
    assert "understood" not in json.loads(out)


# --- the measurement's typos ----------------------------------------------------------------------------
def test_misspell_drops_or_swaps_one_letter_of_the_longest_word() -> None:
    import random

    from lookalike.evaluate.misspell import misspell

    typos = {misspell("navy blue shirt for men", random.Random(i)) for i in range(40)}
    for t in typos:
        words = t.split()
        assert words[:2] == ["navy", "blue"] and words[3:] == ["for", "men"] and words[2] != "shirt"
        assert sorted(words[2]) == sorted("shirt") or len(words[2]) == 4
    assert misspell("a b", random.Random(0)) == "a b"
    assert misspell("black jeans", random.Random(3)) == misspell("black jeans", random.Random(3))
