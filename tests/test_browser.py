"""End to end: the web page in Debian's Chromium (driven by Playwright) over uvicorn on loopback.

Needs ``pip install playwright`` and ``apt-get install chromium`` (never ``playwright install``).
Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests", allow_module_level=True)

from playwright import sync_api  # noqa: E402  (after the skip: only a missing browser skips these tests)

from .http_server import serving_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
OUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TYPES = {"Tshirts": 6, "Shirts": 4, "Casual Shoes": 4, "Jeans": 4, "Watches": 3, "Handbags": 3}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def products() -> list[dict[str, str]]:
    """The catalogue's rows: 24 demo products of six article types (a pair of jeans has no brand)."""
    with (DEMO / "products.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for kind, n in TYPES.items() for r in [r for r in rows if r["article_type"] == kind][:n]]
    return picked


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory, products: list[dict[str, str]]) -> Path:
    """The demo products, with prices."""
    from lookalike.catalog import Catalog
    from lookalike.sources import read_csv

    picked = products
    src = tmp_path_factory.mktemp("browser-src")
    (src / "images").mkdir()
    with (src / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*picked[0].keys(), "price"])
        writer.writeheader()
        for i, row in enumerate(picked):
            shutil.copy(DEMO / row["image"], src / row["image"])
            writer.writerow({**row, "price": f"{19.99 + 7 * i:.2f}"})
    path = tmp_path_factory.mktemp("catalogs") / "browser"
    with Catalog.create(path) as cat:
        assert cat.ingest(read_csv(src / "products.csv")).added == len(picked)
    return path


@pytest.fixture(scope="module")
def base_url(catalog_dir: Path) -> Iterator[str]:
    """uvicorn serving the app on a free loopback port, in a background thread."""
    from lookalike.service import ServiceSettings, create_app

    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=24, max_k=100)
    with serving_app(create_app(catalog_dir, settings)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))  # type: ignore[attr-defined]
    pg.on("console", lambda msg: msg.type == "error" and pg.errors.append(msg.text))  # type: ignore[attr-defined]
    yield pg
    context.close()


def _result_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#results .card:not(.skeleton)", "cards => cards.map(c => c.dataset.id)")


_SETTLED = """previous => {
    const grid = document.querySelector('#results');
    if (grid.getAttribute('aria-busy') !== 'false') return false;
    const ids = [...grid.querySelectorAll('.card:not(.skeleton)')].map(c => c.dataset.id);
    return ids.length > 0 && (previous === null || ids.join('|') !== previous.join('|'));
}"""


def _wait_for_results(page: Any, previous: list[str] | None = None) -> list[str]:
    """The result ids once the grid has settled; with ``previous``, once it shows other results than those
    (a search that has not started yet leaves the old grid settled, so settling alone is not enough)."""
    page.wait_for_function(_SETTLED, arg=previous)
    ids = _result_ids(page)
    if previous is not None:
        assert ids != previous
    return ids


def test_upload_a_photo_then_click_a_result(page: Any) -> None:
    OUT.mkdir(exist_ok=True)
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#catalog-size').textContent.includes('24 products')")
    assert page.locator("select[name=article_type] option").count() == 1 + len(TYPES)
    assert page.locator("#file-input").get_attribute("accept") == "image/*"
    assert page.locator("#camera-input").get_attribute("capture") == "environment"

    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    first = _wait_for_results(page)
    assert len(first) == 24
    assert page.locator("#results-heading").inner_text() == "tshirt.jpg"
    assert "lookalikes" in page.locator("#results-meta").inner_text()
    top_card = page.locator("#results .card").first
    assert top_card.locator(".card-title").inner_text()
    assert top_card.locator(".card-price").inner_text()
    assert float(top_card.locator(".card-score").inner_text()) > 0
    assert page.locator("#results .card img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(OUT / "browser-upload.png"), full_page=True)

    clicked = page.locator("#results .card").nth(1)
    clicked_id = clicked.get_attribute("data-id")
    clicked_title = clicked.locator(".card-title").inner_text()
    clicked.click()
    page.wait_for_function(
        "title => document.querySelector('#results-heading').textContent === title", arg=clicked_title
    )
    second = _wait_for_results(page, previous=first)
    assert clicked_id not in second  # "more like this" leaves the product itself out
    assert page.locator("#query-kind").inner_text().lower() == "more like this product"
    assert page.url.endswith(f"#product/{clicked_id}")
    page.screenshot(path=str(OUT / "browser-results.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_filters_narrow_the_results(page: Any) -> None:
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "shoes.jpg"))
    before = _wait_for_results(page)
    page.select_option("select[name=article_type]", "Watches")
    after = _wait_for_results(page, previous=before)
    assert len(after) == TYPES["Watches"]
    assert page.locator("#filter-count").inner_text() == "1"
    page.click("#reset-filters")
    assert len(_wait_for_results(page, previous=after)) == 24


def test_bad_file_shows_a_clear_error(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_bytes(b"this is not a picture at all")
    page.goto("/")
    page.set_input_files("#file-input", str(fake))
    alert = page.locator("#alert")
    alert.wait_for(state="visible")
    assert "That image could not be used" in alert.inner_text()
    assert "not a recognised image" in alert.inner_text()
    assert page.locator("#search-progress").is_hidden()
    assert page.locator("#query-summary").is_hidden() and page.locator("#search-empty").is_visible()
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "browser-error.png"))
    page.click("#alert-close")
    assert alert.is_hidden()

    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    good = _wait_for_results(page)
    page.set_input_files("#file-input", str(fake))
    alert.wait_for(state="visible")
    assert _result_ids(page) == good  # the earlier results stay, still labelled as theirs
    assert page.locator("#results-heading").inner_text() == "tshirt.jpg"
    assert page.locator("#query-thumb").evaluate("img => img.complete && img.naturalWidth > 0")


def test_paste_and_drop_an_image(page: Any) -> None:
    page.goto("/")
    data = list((DEMO / "queries" / "pants.jpg").read_bytes())
    make_file = "bytes => new File([new Uint8Array(bytes)], 'pasted.jpg', {type: 'image/jpeg'})"
    page.evaluate(
        f"""bytes => {{
            const dt = new DataTransfer(); dt.items.add(({make_file})(bytes));
            document.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: dt, bubbles: true}}));
        }}""",
        data,
    )
    pasted = _wait_for_results(page)
    assert page.locator("#results-heading").inner_text() == "pasted.jpg"
    page.evaluate(
        f"""bytes => {{
            const dt = new DataTransfer(); dt.items.add(({make_file})(bytes));
            const zone = document.querySelector('#dropzone');
            zone.dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}}));
        }}""",
        list((DEMO / "queries" / "shirt.jpg").read_bytes()),
    )
    dropped = _wait_for_results(page, previous=pasted)
    assert len(dropped) == 24


def test_url_search_error_is_shown(page: Any, base_url: str) -> None:
    page.goto("/")
    page.fill("#url-input", f"{base_url}/static/favicon.svg")  # loopback: refused by the server
    page.click("#url-form button")
    alert = page.locator("#alert")
    alert.wait_for(state="visible")
    assert "not allowed" in alert.inner_text()


def test_browse_and_pick_a_product(page: Any) -> None:
    page.goto("/#browse")
    page.wait_for_selector("#browse-grid .card:not(.skeleton)")
    assert page.locator("#page-info").inner_text() == "Page 1 of 1"
    assert page.locator("#browse-grid .card").count() == 24
    assert page.locator("#prev-page").is_disabled() and page.locator("#next-page").is_disabled()
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "browser-browse.png"))
    page.select_option("select[name=gender]", "Women")
    page.wait_for_function(
        "() => document.querySelectorAll('#browse-grid .card').length < 24"
        " && document.querySelector('#browse-grid').getAttribute('aria-busy') === 'false'"
    )
    chosen = page.locator("#browse-grid .card").first
    title = chosen.locator(".card-title").inner_text()
    with page.expect_response("**/api/search") as response:
        chosen.click()
    page.wait_for_function("t => document.querySelector('#results-heading').textContent === t", arg=title)
    _wait_for_results(page)
    assert page.locator("#view-browse").is_hidden()
    hits = response.value.json()["hits"]
    assert hits and {h["product"]["gender"] for h in hits} == {"Women"}  # the filter carries over
    page.go_back()
    page.wait_for_selector("#view-browse:not([hidden])")


def test_phone_layout(browser: Any, base_url: str) -> None:
    OUT.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, base_url=base_url
    )
    page = context.new_page()
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "dress.jpg"))
    _wait_for_results(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    assert page.locator("label[for=camera-input]").is_visible()  # "Take photo" on touch screens
    assert not page.locator("#filters-panel").evaluate("d => d.open")  # filters folded away
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2
    page.wait_for_function("() => document.querySelector('#results').getBoundingClientRect().top < innerHeight / 2")
    page.screenshot(path=str(OUT / "browser-phone.png"), full_page=False)
    context.close()


def _option_labels(page: Any, name: str) -> dict[str, tuple[str, bool]]:
    """value -> (label, disabled) of a filter's options (not "All")."""
    rows = page.eval_on_selector_all(
        f"select[name={name}] option", "os => os.filter(o => o.value).map(o => [o.value, o.textContent, o.disabled])"
    )
    return {value: (label, disabled) for value, label, disabled in rows}


def test_facet_counts_follow_the_other_filters(page: Any, products: list[dict[str, str]]) -> None:
    page.goto("/#browse")
    page.wait_for_function("() => document.querySelectorAll('select[name=colour] option').length > 1")
    assert _option_labels(page, "colour")["Green"] == ("Green (1)", False)  # the whole catalogue
    page.select_option("select[name=article_type]", "Watches")
    watches = [r for r in products if r["article_type"] == "Watches"]
    page.wait_for_function("() => document.querySelector('select[name=colour] option[value=Green]').disabled")
    colours = _option_labels(page, "colour")
    for value, (label, disabled) in colours.items():
        n = sum(r["colour"] == value for r in watches)
        assert (label, disabled) == (f"{value} ({n})", n == 0)
    # a field's own filter does not narrow its counts: the other types stay on offer
    assert _option_labels(page, "article_type")["Jeans"] == ("Jeans (4)", False)

    page.select_option("select[name=colour]", "Silver")
    page.wait_for_function("() => document.querySelector('#browse-meta').textContent === '2 products'")
    page.wait_for_function("() => document.querySelector('select[name=article_type] option[value=Jeans]').disabled")
    types = _option_labels(page, "article_type")
    silver = [r for r in products if r["colour"] == "Silver"]
    assert types["Watches"] == (f"Watches ({len(silver)})", False)
    assert types["Jeans"] == ("Jeans (0)", True)
    page.click("#reset-filters")
    page.wait_for_function("() => !document.querySelector('select[name=colour] option[value=Green]').disabled")
    assert _option_labels(page, "colour")["Green"] == ("Green (1)", False)
    assert page.errors == []  # type: ignore[attr-defined]


def test_back_and_forward_show_the_search_the_url_describes(page: Any) -> None:
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    photo = _wait_for_results(page)
    first = page.locator("#results .card").nth(0)
    first_title = first.locator(".card-title").inner_text()
    first.click()
    page.wait_for_function("t => document.querySelector('#results-heading').textContent === t", arg=first_title)
    more = _wait_for_results(page, previous=photo)
    second = page.locator("#results .card").nth(0)
    second_title = second.locator(".card-title").inner_text()
    second.click()
    page.wait_for_function("t => document.querySelector('#results-heading').textContent === t", arg=second_title)
    _wait_for_results(page, previous=more)

    page.go_back()
    page.wait_for_function("t => document.querySelector('#results-heading').textContent === t", arg=first_title)
    assert _wait_for_results(page) == more
    page.go_back()
    page.wait_for_function("() => document.querySelector('#results-heading').textContent === 'tshirt.jpg'")
    assert _wait_for_results(page) == photo
    assert page.locator("#query-thumb").evaluate("img => img.complete && img.naturalWidth > 0")
    page.go_back()  # the page as it was loaded: no search
    page.wait_for_selector("#search-empty:not([hidden])")
    assert page.locator("#query-summary").is_hidden() and _result_ids(page) == []
    page.go_forward()
    page.wait_for_function("() => document.querySelector('#results-heading').textContent === 'tshirt.jpg'")
    assert _wait_for_results(page) == photo
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_product_without_a_brand_shows_no_brand(page: Any, products: list[dict[str, str]]) -> None:
    unbranded = next(r for r in products if not r["brand"])
    page.goto("/#browse")
    card = page.locator(f"#browse-grid .card[data-id='{unbranded['id']}']")
    card.wait_for()
    assert card.locator(".card-brand").inner_text() == ""
    branded = next(r for r in products if r["brand"])
    assert page.locator(f"#browse-grid .card[data-id='{branded['id']}'] .card-brand").inner_text().lower() == (
        branded["brand"].lower()
    )


def test_a_photo_or_product_search_clears_the_url_box(page: Any, base_url: str) -> None:
    page.goto("/")
    page.fill("#url-input", f"{base_url}/static/favicon.svg")
    page.click("#url-form button")
    page.locator("#alert").wait_for(state="visible")
    assert page.locator("#url-input").input_value()  # kept after the error, to be corrected
    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    photo = _wait_for_results(page)
    assert page.locator("#url-input").input_value() == ""
    page.fill("#url-input", "https://example.invalid/typed.jpg")  # typed, not searched
    page.select_option("select[name=gender]", "Men")
    _wait_for_results(page, previous=photo)
    assert page.locator("#url-input").input_value() == "https://example.invalid/typed.jpg"  # a re-run keeps it
    page.locator("#results .card").first.click()
    page.wait_for_function("() => document.querySelector('#query-kind').textContent === 'More like this product'")
    assert page.locator("#url-input").input_value() == ""


def test_phone_filter_change_brings_the_results_up(browser: Any, base_url: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, base_url=base_url
    )
    page = context.new_page()
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "shoes.jpg"))
    before = _wait_for_results(page)
    page.locator("#filters-panel summary").click()
    assert page.locator("#filters-panel").evaluate("d => d.open")
    page.select_option("select[name=article_type]", "Watches")
    _wait_for_results(page, previous=before)
    assert not page.locator("#filters-panel").evaluate("d => d.open")
    page.wait_for_function("() => document.querySelector('#results').getBoundingClientRect().top < innerHeight / 2")

    page.locator(".tab[data-view=browse]").click()
    page.wait_for_selector("#browse-grid .card:not(.skeleton)")
    page.locator("#filters-panel summary").click()
    page.select_option("select[name=gender]", "Women")
    assert not page.locator("#filters-panel").evaluate("d => d.open")
    page.wait_for_function(
        "() => { const r = document.querySelector('#browse-grid').getBoundingClientRect();"
        " return r.top < innerHeight / 2 && r.bottom > 0; }"
    )
    context.close()


# --- colour chips: "this, but in another colour" ------------------------------------------------------
def _families(hits: list[dict[str, Any]]) -> list[str | None]:
    from lookalike.colour import family_of

    return [family_of(h["product"]["colour"]) for h in hits]


def _chip(page: Any, family: str) -> Any:
    return page.locator(f"#colour-chips .chip[data-family={family}]")


def _is_search(response: Any) -> bool:
    return response.url.endswith("/api/search") and response.request.method == "POST"


# Chromium does not hand multipart bodies with a file to Playwright: the page's own fetch records the fields.
_RECORD_FORMS = """(() => {
    const send = window.fetch;
    window.sentForms = [];
    window.fetch = (input, init = {}) => {
        if (init.body instanceof FormData) {
            const fields = [...init.body.entries()].filter(([, value]) => typeof value === "string");
            window.sentForms.push(Object.fromEntries(fields));
        }
        return send(input, init);
    };
})()"""


def _last_form(page: Any) -> dict[str, str]:
    """The text fields of the last multipart request the page sent."""
    return page.evaluate("() => window.sentForms[window.sentForms.length - 1]")


def test_colour_chips_re_rank_a_photo_search(page: Any) -> None:
    page.add_init_script(_RECORD_FORMS)
    page.goto("/")
    with page.expect_response(_is_search) as first:
        page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    before = _wait_for_results(page)
    body = first.value.json()
    seen = body["colour"]["detected"]
    assert seen and body["colour"]["ranked_by"] == seen and body["colour"]["source"] == "detected"
    assert page.locator("#colour-bar").is_visible()
    assert page.locator("#colour-chips .chip").count() == len(body["colour"]["families"]) == 12
    assert page.locator("#colour-chips .chip.is-seen").get_attribute("data-family") == seen
    assert _chip(page, seen).get_attribute("aria-pressed") == "true"
    assert _chip(page, seen).locator(".chip-tag").inner_text().lower() == "seen"
    assert page.locator("#colour-chips .chip[aria-pressed=true]").count() == 1
    assert page.locator("label.field", has_text="Colour is").count() == 1  # the exact filter reads apart
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "browser-colour-chips.png"))

    wanted = "black"
    assert wanted != seen
    with page.expect_response(_is_search) as second:
        _chip(page, wanted).click()
    after = _wait_for_results(page, previous=before)
    assert _last_form(page)["prefer_colour"] == wanted
    ranked = second.value.json()
    assert ranked["colour"]["ranked_by"] == wanted and ranked["colour"]["source"] == "preference"
    top = 8
    assert _families(ranked["hits"])[:top].count(wanted) > _families(body["hits"])[:top].count(wanted)
    assert _chip(page, wanted).get_attribute("aria-pressed") == "true"
    assert _chip(page, seen).get_attribute("aria-pressed") == "false"
    assert page.locator("#colour-chips .chip.is-seen").get_attribute("data-family") == seen  # still seen
    assert wanted in page.locator("#colour-status").inner_text()
    assert page.locator("#colour-reset").is_visible()

    with page.expect_response(_is_search):  # the seen colour again: back to it
        _chip(page, seen).click()
    assert _wait_for_results(page, previous=after) == before
    assert "prefer_colour" not in _last_form(page)
    assert _chip(page, seen).get_attribute("aria-pressed") == "true"
    assert page.locator("#colour-reset").is_hidden()

    _chip(page, "brown").focus()  # keyboard: the chips are buttons
    with page.expect_response(_is_search) as fourth:
        page.keyboard.press("Enter")
    _wait_for_results(page, previous=before)
    assert fourth.value.json()["colour"]["ranked_by"] == "brown"
    assert _chip(page, "brown").get_attribute("aria-pressed") == "true"
    with page.expect_response(_is_search):
        page.click("#colour-reset")
    assert _wait_for_results(page) == before
    assert page.errors == []  # type: ignore[attr-defined]


def test_match_colour_off_sends_colour_rank_false(page: Any) -> None:
    page.add_init_script(_RECORD_FORMS)
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "shirt.jpg"))
    before = _wait_for_results(page)
    with page.expect_response(_is_search) as off:
        page.click("#colour-rank")
    page.wait_for_function("() => document.querySelector('#results').getAttribute('aria-busy') === 'false'")
    assert _last_form(page)["colour_rank"] == "false"
    body = off.value.json()
    assert body["colour"]["ranked_by"] is None and body["hits"]
    assert all(h["colour_match"] is None for h in body["hits"])
    assert page.locator("#colour-chips .chip[aria-pressed=true]").count() == 0
    assert page.locator("#colour-chips .chip:not([disabled])").count() == 0
    assert "off" in page.locator("#colour-status").inner_text()
    with page.expect_response(_is_search) as on:
        page.click("#colour-rank")
    assert _wait_for_results(page) == before
    assert "colour_rank" not in _last_form(page)
    assert all(h["colour_match"] is not None for h in on.value.json()["hits"])
    assert page.errors == []  # type: ignore[attr-defined]


def test_colour_chips_on_a_more_like_this_search(page: Any, products: list[dict[str, str]]) -> None:
    from lookalike.colour import family_of

    blue = next(r for r in products if r["article_type"] == "Jeans" and family_of(r["colour"]) == "blue")
    page.goto(f"/#product/{blue['id']}")
    before = _wait_for_results(page)
    assert page.locator("#colour-chips .chip.is-seen").get_attribute("data-family") == "blue"  # its own colour
    assert _chip(page, "blue").get_attribute("aria-pressed") == "true"
    with page.expect_response(_is_search) as ranked:
        _chip(page, "black").click()
    _wait_for_results(page, previous=before)
    sent = ranked.value.request.post_data_json
    assert sent["product_id"] == blue["id"] and sent["colour"] == "black" and "colour_rank" not in sent
    assert ranked.value.json()["colour"]["source"] == "preference"
    assert _chip(page, "black").get_attribute("aria-pressed") == "true"
    assert page.locator("#colour-chips .chip.is-seen").get_attribute("data-family") == "blue"  # remembered
    with page.expect_response(_is_search) as back:
        _chip(page, "blue").click()
    assert _wait_for_results(page) == before
    assert "colour" not in back.value.request.post_data_json
    assert page.errors == []  # type: ignore[attr-defined]


def test_facet_counts_come_from_the_api(page: Any, products: list[dict[str, str]]) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto("/#browse")
    page.wait_for_function("() => document.querySelectorAll('select[name=colour] option').length > 1")
    with page.expect_response(lambda r: "/api/facets?" in r.url and "gender=Women" in r.url) as facets:
        page.select_option("select[name=gender]", "Women")
    assert facets.value.ok
    women = [r for r in products if r["gender"] == "Women"]
    shirts = f"Tshirts ({sum(r['article_type'] == 'Tshirts' for r in women)})"
    page.wait_for_function(
        "t => document.querySelector('select[name=article_type] option[value=Tshirts]').textContent === t", arg=shirts
    )
    types = _option_labels(page, "article_type")
    for value, (label, disabled) in types.items():
        n = sum(r["article_type"] == value for r in women)
        assert (label, disabled) == (f"{value} ({n})", n == 0)
    men = sum(r["gender"] == "Men" for r in products)
    assert _option_labels(page, "gender")["Men"] == (f"Men ({men})", False)  # its own filter left out
    assert not [u for u in asked if "/api/products?" in u and "limit=200" in u]  # no reading every product


# --- words: alone, or moving a photo's or a URL's search ----------------------------------------------------
def _titles(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#results .card:not(.skeleton) .card-title", "titles => titles.map(t => t.textContent)"
    )


def _search_words(page: Any, words: str) -> Any:
    """Type ``words`` in the words box and press Enter; the search's response."""
    page.fill("#text-input", words)
    with page.expect_response(_is_search) as response:
        page.press("#text-input", "Enter")
    return response.value


def test_a_words_search_shows_products_that_match_the_words(page: Any) -> None:
    page.goto("/")
    assert "navy blue shirt" in page.locator("#text-input").get_attribute("placeholder")
    response = _search_words(page, "watch")
    assert response.request.post_data_json == {"text": "watch", "k": 24, "filters": {}}
    assert response.json()["query"] == {"type": "text", "value": "watch"}
    watches = _wait_for_results(page)
    assert all("Watches" in t for t in _titles(page)[: TYPES["Watches"]])  # the catalogue's three watches first
    assert page.locator("#query-kind").inner_text().lower() == "results for your words"
    assert page.locator("#results-heading").inner_text() == "watch"
    assert page.locator("#query-thumb").is_hidden() and page.locator("#attach").is_hidden()
    assert page.locator("#results-meta").inner_text().startswith("24 matches")
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "browser-words.png"))

    page.fill("#text-input", "handbag")
    with page.expect_response(_is_search):
        page.click("#text-submit")  # the button searches too
    bags = _wait_for_results(page, previous=watches)
    assert all("Handbags" in t for t in _titles(page)[: TYPES["Handbags"]])
    assert page.locator("#results-heading").inner_text() == "handbag"

    page.go_back()  # Back: the words search before, its words in the box again
    page.wait_for_function("() => document.querySelector('#results-heading').textContent === 'watch'")
    assert _wait_for_results(page, previous=bags) == watches
    assert page.locator("#text-input").input_value() == "watch"
    page.go_forward()
    page.wait_for_function("() => document.querySelector('#results-heading').textContent === 'handbag'")
    assert _wait_for_results(page, previous=watches) == bags
    assert page.locator("#text-input").input_value() == "handbag"

    body = _search_words(page, "red tshirt").json()
    assert body["colour"] == {**body["colour"], "ranked_by": "red", "source": "words"}
    _wait_for_results(page, previous=bags)
    assert page.locator("#colour-status").inner_text() == "Ranked for: red (from your words)"
    assert _chip(page, "red").get_attribute("aria-pressed") == "true"
    assert _chip(page, "red").locator(".chip-tag").inner_text().lower() == "words"
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_photo_plus_words_sends_both_and_the_header_shows_the_words(page: Any) -> None:
    page.add_init_script(_RECORD_FORMS)
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    photo = _wait_for_results(page)
    assert "text" not in _last_form(page)
    assert page.locator("#attach").is_visible() and page.locator("#attach-name").inner_text() == "tshirt.jpg"
    assert page.locator("#query-words").is_hidden()

    page.locator("#text-input").focus()  # keyboard only: type the words, Enter
    page.keyboard.type("in red")
    with page.expect_response(_is_search) as moved:
        page.keyboard.press("Enter")
    red = _wait_for_results(page, previous=photo)
    assert _last_form(page)["text"] == "in red" and _last_form(page)["k"] == "24"
    body = moved.value.json()
    assert body["query"] == {"type": "image", "value": "tshirt.jpg", "text": "in red"}
    assert body["colour"]["ranked_by"] == "red" and body["colour"]["source"] == "words"
    assert page.locator("#results-heading").inner_text() == "tshirt.jpg"
    assert page.locator("#query-words").inner_text() == "with the words “in red”"
    assert page.locator("#colour-status").inner_text() == "Ranked for: red (from your words)"
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "browser-photo-words.png"))

    page.click("#attach-remove")  # the photo let go: the same words search alone
    assert page.locator("#attach").is_hidden()
    assert page.evaluate("() => document.activeElement.id") == "text-input"
    with page.expect_response(_is_search) as alone:
        page.keyboard.press("Enter")
    _wait_for_results(page, previous=red)
    assert alone.value.request.post_data_json == {"text": "in red", "k": 24, "filters": {}}
    assert page.locator("#query-kind").inner_text().lower() == "results for your words"

    page.go_back()  # the photo with its words again
    page.wait_for_function("() => document.querySelector('#query-words').textContent.includes('in red')")
    assert _wait_for_results(page) == red
    assert page.locator("#results-heading").inner_text() == "tshirt.jpg"
    assert page.locator("#attach").is_visible() and page.locator("#text-input").input_value() == "in red"
    assert _last_form(page)["text"] == "in red"
    page.go_back()  # the photo alone: the words box empties
    page.wait_for_function(
        "() => document.querySelector('#query-words').hidden"
        " && document.querySelector('#results-heading').textContent === 'tshirt.jpg'"
    )
    assert _wait_for_results(page) == photo
    assert page.locator("#text-input").input_value() == ""
    assert "text" not in _last_form(page)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_url_plus_words_sends_both(page: Any, base_url: str) -> None:
    page.goto("/")
    url = f"{base_url}/static/favicon.svg"  # loopback: refused by the server, but the request is what counts
    page.fill("#url-input", url)
    page.fill("#text-input", "  in   black ")
    with page.expect_response(_is_search) as response:
        page.press("#text-input", "Enter")
    assert response.value.request.post_data_json == {"url": url, "text": "in black", "k": 24, "filters": {}}
    page.locator("#alert").wait_for(state="visible")
    assert "not allowed" in page.locator("#alert").inner_text()


def test_words_errors_are_shown(page: Any) -> None:
    page.goto("/")
    page.press("#text-input", "Enter")  # nothing to search for
    alert = page.locator("#alert")
    alert.wait_for(state="visible")
    assert "Type a few words" in alert.inner_text()

    too_long = "x" * 501
    response = _search_words(page, too_long)
    assert response.status == 422 and "500 characters" in response.json()["detail"]
    page.wait_for_function("() => document.querySelector('#alert-text').textContent.includes('500 characters')")
    assert alert.inner_text().startswith("Please check the words:")
    assert page.locator("#text-input").input_value() == too_long  # kept, to be corrected
    assert page.locator("#query-summary").is_hidden() and page.locator("#search-empty").is_visible()
    assert page.locator("#search-progress").is_hidden()

    _search_words(page, "jeans")
    jeans = _wait_for_results(page)
    assert alert.is_hidden()
    _search_words(page, too_long)
    page.wait_for_function("() => !document.querySelector('#alert').hidden")
    assert _result_ids(page) == jeans and page.locator("#results-heading").inner_text() == "jeans"  # kept


@pytest.fixture(scope="module")
def twins_url(
    catalog_dir: Path, products: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The catalogue plus "twin", another product with the very same picture as the first, served apart."""
    from lookalike.catalog import Catalog
    from lookalike.product import Product
    from lookalike.service import ServiceSettings, create_app

    copy = tmp_path_factory.mktemp("catalogs") / "twins"
    shutil.copytree(catalog_dir, copy)
    with Catalog.open(copy) as cat:
        cat.upsert(Product("twin", title="The same picture", price=9.99), (DEMO / products[0]["image"]).read_bytes())
    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=24, max_k=100)
    with serving_app(create_app(copy, settings)) as port:
        yield f"http://127.0.0.1:{port}"


def test_products_sharing_a_picture_show_once_with_how_many_more(
    browser: Any, twins_url: str, products: list[dict[str, str]]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=twins_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/")
        page.wait_for_function("() => document.querySelector('#catalog-size').textContent.includes('25 products')")
        page.set_input_files("#file-input", str(DEMO / products[0]["image"]))
        ids = _wait_for_results(page)
        assert len(ids) == 24 and len(set(ids)) == 24  # 25 products, 24 pictures
        assert len({products[0]["id"], "twin"} & set(ids)) == 1
        top = page.locator("#results .card").first
        assert top.get_attribute("data-id") in (products[0]["id"], "twin")
        assert top.locator(".card-duplicates").inner_text() == "1 more with this picture"
        assert page.locator("#results .card-duplicates").count() == 1
    finally:
        context.close()


# --- the address says what is on screen: reload, Back and a shared link show it again (issue 22) -------------
def _hash(page: Any) -> str:
    return page.evaluate("() => location.hash")


def _query_of(page: Any) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    hash_ = _hash(page)
    return parse_qs(hash_.split("?", 1)[1]) if "?" in hash_ else {}


def test_every_search_is_in_the_address_and_a_reload_shows_it_again(page: Any, products: list[dict[str, str]]) -> None:
    product = products[0]
    page.goto(f"/#product/{product['id']}")
    alone = _wait_for_results(page)
    response = _search_words(page, "in red")  # words moving the product's search: both in the address
    assert response.request.post_data_json["product_id"] == product["id"]
    red = _wait_for_results(page, previous=alone)
    assert _hash(page).startswith(f"#product/{product['id']}?") and _query_of(page) == {"q": ["in red"]}
    page.click("#attach-remove")  # the product let go: words alone
    response = _search_words(page, "watch")  # the address no longer names the product
    assert response.request.post_data_json == {"text": "watch", "k": 24, "filters": {}}
    watches = _wait_for_results(page, previous=red)
    assert _hash(page).startswith("#search?") and _query_of(page) == {"q": ["watch"]}

    with page.expect_response(_is_search) as filtered:
        page.select_option("select[name=gender]", "Men")  # a filter: in the address too
    men = _wait_for_results(page, previous=watches)
    assert filtered.value.request.post_data_json["filters"] == {"gender": "Men"}
    assert _query_of(page) == {"q": ["watch"], "gender": ["Men"]}
    with page.expect_response(_is_search) as chosen:
        _chip(page, "black").click()  # a colour chosen
    _wait_for_results(page, previous=men)
    assert chosen.value.request.post_data_json["colour"] == "black"
    assert _query_of(page) == {"q": ["watch"], "gender": ["Men"], "prefer": ["black"]}
    shown = _result_ids(page)

    with page.expect_response(_is_search) as again:
        page.reload()
    assert again.value.request.post_data_json == {
        "text": "watch", "k": 24, "filters": {"gender": "Men"}, "colour": "black",
    }  # fmt: skip
    assert _wait_for_results(page) == shown
    assert page.locator("#text-input").input_value() == "watch"
    assert page.locator("select[name=gender]").input_value() == "Men"
    assert _chip(page, "black").get_attribute("aria-pressed") == "true"

    with page.expect_response(_is_search) as back:
        page.go_back()  # Back: the search before the colour was chosen
    assert back.value.request.post_data_json == {"text": "watch", "k": 24, "filters": {"gender": "Men"}}
    assert _wait_for_results(page) == men
    with page.expect_response(_is_search) as back:
        page.go_back()  # and before the filter
    assert back.value.request.post_data_json == {"text": "watch", "k": 24, "filters": {}}
    assert _wait_for_results(page) == watches
    assert page.locator("select[name=gender]").input_value() == ""

    with page.expect_response(_is_search):
        page.click("#colour-rank")  # colour matching off: in the address
    assert _query_of(page)["colour_rank"] == ["false"]
    page.wait_for_function("() => document.querySelector('#results').getAttribute('aria-busy') === 'false'")
    with page.expect_response(_is_search) as again:
        page.reload()
    assert again.value.request.post_data_json["colour_rank"] is False
    assert not page.locator("#colour-rank").is_checked()
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_shared_link_to_an_image_url_with_words_and_filters(browser: Any, base_url: str) -> None:
    from urllib.parse import quote

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        url = f"{base_url}/static/favicon.svg"  # loopback: refused, but the request is what counts
        with page.expect_response(_is_search) as response:
            page.goto(f"/#search?url={quote(url, safe='')}&q=in+red&article_type=Jeans")
        assert response.value.request.post_data_json == {
            "url": url, "text": "in red", "k": 24, "filters": {"article_type": "Jeans"},
        }  # fmt: skip
        assert page.locator("#url-input").input_value() == url
        assert page.locator("#text-input").input_value() == "in red"
        assert page.locator("select[name=article_type]").input_value() == "Jeans"
    finally:
        context.close()


def test_show_more_asks_for_the_next_page_and_the_address_keeps_it(page: Any) -> None:
    page.goto("/")
    _search_words(page, "shirt")
    _wait_for_results(page)
    assert page.locator("select[name=k]").count() == 0  # no results-count select
    assert page.locator("#stock-field").is_hidden()  # this catalogue says nothing of stock: no switch
    more = page.locator("#load-more")
    assert more.is_visible()  # 24 asked, 24 found: there may be more
    with page.expect_response(_is_search) as response:
        more.click()
    assert response.value.request.post_data_json["k"] == 48
    page.wait_for_function("() => document.querySelector('#results').getAttribute('aria-busy') === 'false'")
    assert len(_result_ids(page)) == 24 and more.is_hidden()  # the catalogue has 24: no more to show
    assert _query_of(page) == {"q": ["shirt"], "n": ["48"]}
    with page.expect_response(_is_search) as again:
        page.reload()
    assert again.value.request.post_data_json["k"] == 48


def test_the_cards_show_the_figure_that_orders_them(page: Any) -> None:
    page.goto("/")
    with page.expect_response(_is_search) as response:
        page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    _wait_for_results(page)
    hits = response.value.json()["hits"]
    badges = page.eval_on_selector_all("#results .card .card-score", "bs => bs.map(b => b.textContent)")
    assert badges == [f"{h['rank_score']:.3f}" for h in hits]
    assert any(h["rank_score"] != h["score"] for h in hits)  # the colour stage moved them
    details = page.eval_on_selector_all("#results .card .card-detail", "ds => ds.map(d => d.textContent)")
    assert details == [f"similarity {h['score']:.3f}" for h in hits]
    assert _hash(page) == "#photo"  # an upload: the address cannot hold the photo


def test_the_words_placeholder_is_not_cut_off(page: Any) -> None:
    page.goto("/")
    fits = page.eval_on_selector(
        "#text-input",
        "t => { t.value = t.placeholder; const ok = t.scrollHeight <= t.clientHeight; t.value = ''; return ok; }",
    )
    assert fits


@pytest.fixture(scope="module")
def empty_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A catalogue with no products, served."""
    from lookalike.catalog import Catalog
    from lookalike.service import ServiceSettings, create_app

    path = tmp_path_factory.mktemp("catalogs") / "empty"
    Catalog.create(path).close()
    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=24, max_k=100)
    with serving_app(create_app(path, settings)) as port:
        yield f"http://127.0.0.1:{port}"


def test_an_empty_catalogue_says_so_and_how_to_fill_it(browser: Any, empty_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=empty_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/")
        page.wait_for_selector("#empty-catalog:not([hidden])")
        assert "lookalike ingest" in page.locator("#empty-catalog").inner_text()
        assert page.locator("#catalog-size").inner_text() == "Empty catalogue"
        _search_words(page, "red dress")
        page.wait_for_function("() => document.querySelector('#results-meta').textContent.includes('empty')")
        meta = page.locator("#results-meta").inner_text()
        assert "lookalike ingest" in meta and "filters" not in meta
    finally:
        context.close()


# --- several pictures per product, and the stock switch (issues 21, 22) --------------------------------
@pytest.fixture(scope="module")
def pictures_url(tmp_path_factory: pytest.TempPathFactory, products: list[dict[str, str]]) -> Iterator[str]:
    """Four products, one with two pictures (its own and a second one) and stock data: one product out of stock."""
    from lookalike.catalog import Catalog
    from lookalike.sources import read_csv

    src = tmp_path_factory.mktemp("pictures-src")
    rows = products[:4]
    with (src / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "title", "article_type", "colour", "image", "images", "in_stock"])
        writer.writeheader()
        for i, row in enumerate(rows):
            shutil.copy(DEMO / row["image"], src / Path(row["image"]).name)
            extra = ""
            if i == 0:
                shutil.copy(DEMO / "queries" / "shoes.jpg", src / "second.jpg")
                extra = "second.jpg"
            writer.writerow({"id": row["id"], "title": row["title"], "article_type": row["article_type"],
                             "colour": row["colour"], "image": Path(row["image"]).name, "images": extra,
                             "in_stock": "no" if i == 1 else "yes"})  # fmt: skip
    path = tmp_path_factory.mktemp("catalogs") / "pictures"
    from lookalike.service import ServiceSettings, create_app

    with Catalog.create(path) as cat:
        cat.ingest(read_csv(src / "products.csv"))
    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=24, max_k=100)
    with serving_app(create_app(path, settings)) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_card_shows_the_picture_that_matched_and_the_stock_switch_filters(
    browser: Any, pictures_url: str, products: list[dict[str, str]]
) -> None:
    import httpx

    facets = httpx.get(f"{pictures_url}/api/facets").json()
    first = products[0]["id"]
    listing = httpx.get(f"{pictures_url}/api/products/{first}/images/1")
    if "in_stock" not in facets or listing.status_code != 200:
        pytest.skip("the API does not serve several pictures per product and stock facets yet (issue 21)")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=pictures_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.add_init_script(_RECORD_FORMS)
    try:
        page.goto("/")
        stock = page.locator("#stock-field")
        stock.wait_for()  # the catalogue has stock data: the switch shows
        with page.expect_response(_is_search) as response:
            page.set_input_files("#file-input", str(DEMO / "queries" / "shoes.jpg"))  # the second picture
        _wait_for_results(page)
        hit = next(h for h in response.value.json()["hits"] if h["id"] == first)
        assert hit["matched_image"] == 1
        card = page.locator(f"#results .card[data-id='{first}']")
        assert card.locator("img").get_attribute("src").endswith(f"/api/products/{first}/images/1")
        assert card.locator(".card-pictures").inner_text() == "2 pictures"
        out_of_stock = products[1]["id"]
        assert out_of_stock in _result_ids(page)
        assert page.locator(f"#results .card[data-id='{out_of_stock}'] .card-stock").inner_text() == "Out of stock"
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "browser-pictures.png"))

        with page.expect_response(_is_search):
            page.check("#stock-field input")
        _wait_for_results(page)
        assert _last_form(page)["in_stock"] == "true"
        assert out_of_stock not in _result_ids(page)
        assert _query_of(page)["in_stock"] == ["true"]
        with page.expect_response(_is_search) as product:
            page.goto(f"/#product/{first}?in_stock=true")  # the product view: its pictures under the query
        assert product.value.request.post_data_json["filters"] == {"in_stock": True}
        assert page.locator("#stock-field input").is_checked()
        page.wait_for_selector("#query-pictures:not([hidden])")
        page.screenshot(path=str(OUT / "browser-product-pictures.png"))
        assert page.locator("#query-pictures .query-picture").count() == 2
    finally:
        context.close()
