"""End to end: the kind chips of the web page (static/kind.js) in Debian's Chromium: "Looks like: Tshirts · Shirts ·
Jeans" after a photo search, a chip re-running the search with ``kind`` (multipart for a photo, JSON otherwise) and
putting ``kind=`` in the address, Back and a reload restoring it, a new search dropping it, an unknown kind's error
(issue 28). Uses the fixtures of tests/test_browser.py.

The kinds a picture looks like come from the kind head, which may not read the test catalogue's vectors: the page's
searches are answered here (``page.route``) with the catalogue's own products and a ``kind`` object, so the chips do
not depend on the model. The page's fetch hands the fields of a multipart request (Chromium does not give
Playwright a body with a file) in a header, for these answers, and records them for the assertions.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import parse_qs, quote

import pytest

from . import test_browser as _tb
from .test_browser import DEMO, _result_ids, _wait_for_results

# the page, browser and server of tests/test_browser.py
products, catalog_dir, base_url, browser, page = _tb.products, _tb.catalog_dir, _tb.base_url, _tb.browser, _tb.page

pytestmark = pytest.mark.slow

#: What the answered searches say a picture looks like, likeliest first.
SEEN = [("Tshirts", 0.62), ("Shirts", 0.2), ("Jeans", 0.1)]

# The text fields of each multipart request: recorded, and sent along in a header for the answers below.
_RECORD_FORMS = """(() => {
    const send = window.fetch;
    window.sentForms = [];
    window.fetch = (input, init = {}) => {
        if (init.body instanceof FormData) {
            const fields = {};
            for (const [name, value] of init.body.entries()) if (typeof value === "string") fields[name] = value;
            window.sentForms.push(fields);
            init = { ...init, headers: { ...(init.headers || {}), "x-test-form": JSON.stringify(fields) } };
        }
        return send(input, init);
    };
})()"""


class Searches:
    """Answers the page's POST /api/search like the service would, with a ``kind`` object: the kinds of ``SEEN``
    for a search with a picture, the kind chosen (``kind``, any case, singular or plural) or else the likeliest
    seen as the one used, its products first (none used: the catalogue backwards). An unknown kind: the service's
    400."""

    def __init__(self, catalogue: list[dict[str, Any]]) -> None:
        self.catalogue = catalogue
        self.kinds = sorted({p["article_type"] for p in catalogue})
        self.sent: list[dict[str, Any]] = []  # the fields of each search asked for

    def _kind(self, asked: str) -> str | None:
        key = asked.strip().lower()
        names = {k: (k.lower(), k.lower().removesuffix("s"), k.lower().removesuffix("es")) for k in self.kinds}
        return next((k for k, spelt in names.items() if key in spelt), None)

    def __call__(self, route: Any) -> None:
        request = route.request
        form = request.headers.get("x-test-form")
        fields = json.loads(form) if form else request.post_data_json
        self.sent.append(fields)
        picture = bool(form) or "url" in fields or "product_id" in fields
        seen = [{"kind": k, "probability": p} for k, p in SEEN] if picture else []
        asked = fields.get("kind") or None
        if asked is not None and self._kind(asked) is None:
            detail = f"the catalogue has no kind {asked!r}; its kinds: {', '.join(self.kinds)}"
            route.fulfill(status=400, content_type="application/json", body=json.dumps({"detail": detail}))
            return
        used = self._kind(asked) if asked else seen[0]["kind"] if seen else None
        source = "chosen" if asked else "detected" if used else None
        ordered = sorted(self.catalogue, key=lambda p: (p["article_type"] != used, p["id"]), reverse=used is None)
        hits = [
            {"rank": i + 1, "id": p["id"], "score": 0.9 - i / 100, "rank_score": 0.9 - i / 100, "product": p}
            for i, p in enumerate(ordered)
        ]
        colour = {"families": [], "detected": None, "ranked_by": None, "source": None}
        kind = {"seen": seen, "used": used, "source": source}
        body = {"count": len(hits), "took_ms": 1.0, "colour": colour, "kind": kind, "hits": hits}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


@pytest.fixture()
def searches(page: Any, base_url: str) -> Searches:
    """The page's searches answered with a ``kind`` object (the page's fetch recording its multipart fields)."""
    with urllib.request.urlopen(f"{base_url}/api/products?limit=100") as response:
        catalogue = json.load(response)["items"]
    answers = Searches(catalogue)
    page.add_init_script(_RECORD_FORMS)
    page.route("**/api/search", answers)
    return answers


def _chip(page: Any, kind: str) -> Any:
    return page.locator(f'#kind-chips .kind-chip[data-kind="{kind}"]')


def _chip_names(page: Any) -> list[str]:
    return page.eval_on_selector_all("#kind-chips .kind-chip", "cs => cs.map(c => c.dataset.kind)")


def _pressed(page: Any) -> list[str]:
    return page.eval_on_selector_all("#kind-chips .kind-chip[aria-pressed=true]", "cs => cs.map(c => c.dataset.kind)")


def _address(page: Any) -> dict[str, list[str]]:
    hash_ = page.evaluate("() => location.hash")
    return parse_qs(hash_.split("?", 1)[1]) if "?" in hash_ else {}


def _form(page: Any) -> dict[str, str]:
    """The text fields of the last multipart request the page sent."""
    return page.evaluate("() => window.sentForms[window.sentForms.length - 1]")


def _is_search(request: Any) -> bool:
    return request.url.endswith("/api/search") and request.method == "POST"


def _searched(page: Any, action: Any, previous: list[str] | None = None) -> list[str]:
    """Do ``action``, wait for the search it starts and its results (other than ``previous``): their ids."""
    with page.expect_request(_is_search):
        action()
    return _wait_for_results(page, previous=previous)


def test_the_chips_show_what_the_photo_looks_like_and_a_chip_re_ranks_it(page: Any, searches: Searches) -> None:
    page.goto("/")
    detected = _searched(page, lambda: page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg")))
    assert "kind" not in _form(page)
    assert page.locator("#kind-bar").is_visible()
    assert page.locator("#kind-bar-title").text_content() == "Looks like"
    assert _chip_names(page) == ["Tshirts", "Shirts", "Jeans"]
    assert _pressed(page) == ["Tshirts"]
    assert "is-used" in (_chip(page, "Tshirts").get_attribute("class") or "")
    assert _chip(page, "Tshirts").locator(".kind-odds").inner_text() == "62%"
    assert "20%" in (_chip(page, "Shirts").get_attribute("title") or "")
    assert page.locator("#kind-reset").is_hidden()
    assert "kind" not in _address(page)
    assert page.evaluate("() => location.hash").startswith("#photo")

    shirts = _searched(page, lambda: _chip(page, "Shirts").click(), previous=detected)
    assert _form(page)["kind"] == "Shirts"  # multipart, with the photo
    assert _address(page)["kind"] == ["Shirts"]
    assert _pressed(page) == ["Shirts"]
    assert "is-seen" in (_chip(page, "Tshirts").get_attribute("class") or "")  # still the kind seen
    assert "Shirts" in page.locator("#kind-status").inner_text()
    assert page.locator("#kind-reset").is_visible()
    assert page.locator("#results .card .card-title").first.inner_text()
    _tb.OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(_tb.OUT / "browser-kind-chips.png"))

    assert _searched(page, page.go_back, previous=shirts) == detected  # Back: the kind seen again
    assert "kind" not in _form(page) and "kind" not in _address(page)
    assert _pressed(page) == ["Tshirts"] and page.locator("#kind-reset").is_hidden()
    assert _searched(page, page.go_forward, previous=detected) == shirts  # Forward: the kind chosen
    assert _form(page)["kind"] == "Shirts" and _address(page)["kind"] == ["Shirts"]
    assert _pressed(page) == ["Shirts"]

    # the chosen chip again: back to the kind seen, a new entry
    assert _searched(page, lambda: _chip(page, "Shirts").click(), previous=shirts) == detected
    assert "kind" not in _form(page) and "kind" not in _address(page)
    assert _pressed(page) == ["Tshirts"]

    _chip(page, "Jeans").focus()  # keyboard: the chips are buttons
    jeans = _searched(page, lambda: page.keyboard.press("Enter"), previous=detected)
    assert _form(page)["kind"] == "Jeans" and _pressed(page) == ["Jeans"]
    assert _searched(page, lambda: page.click("#kind-reset"), previous=jeans) == detected  # the reset
    assert "kind" not in _form(page) and "kind" not in _address(page)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_reload_or_a_link_with_a_kind_sends_it_again(
    browser: Any, base_url: str, page: Any, searches: Searches, products: list[dict[str, str]]
) -> None:
    product = products[0]
    page.goto(f"/#product/{product['id']}")
    detected = _wait_for_results(page)
    assert "kind" not in searches.sent[-1]
    shirts = _searched(page, lambda: _chip(page, "Shirts").click(), previous=detected)
    assert searches.sent[-1]["product_id"] == product["id"] and searches.sent[-1]["kind"] == "Shirts"  # JSON
    assert page.evaluate("() => location.hash").startswith(f"#product/{product['id']}?")
    assert _address(page)["kind"] == ["Shirts"]

    asked = len(searches.sent)
    page.reload()
    assert _wait_for_results(page) == shirts
    assert len(searches.sent) > asked and searches.sent[-1]["kind"] == "Shirts"
    assert _pressed(page) == ["Shirts"] and page.locator("#kind-reset").is_visible()

    # a shared link to words with a kind: no picture, so nothing seen; the kind chosen is a chip of its own
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    other = context.new_page()
    other.set_default_timeout(20_000)
    try:
        other.add_init_script(_RECORD_FORMS)
        other.route("**/api/search", searches)
        other.goto("/#search?q=watch&kind=watch")
        watches = _wait_for_results(other)
        assert searches.sent[-1] == {"text": "watch", "k": 24, "filters": {}, "kind": "watch"}
        assert other.locator("#kind-bar").is_visible()
        assert _chip_names(other) == ["Watches"] and _pressed(other) == ["Watches"]
        assert other.locator("#kind-bar-title").text_content() == "Kind"
        assert _searched(other, lambda: other.click("#kind-reset"), previous=watches)
        assert searches.sent[-1] == {"text": "watch", "k": 24, "filters": {}}
        assert "kind" not in _address(other)
        assert other.locator("#kind-bar").is_hidden()  # nothing seen, nothing chosen: no row
    finally:
        context.close()
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_new_search_drops_the_chosen_kind(page: Any, searches: Searches) -> None:
    page.goto("/")
    detected = _searched(page, lambda: page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg")))
    jeans = _searched(page, lambda: _chip(page, "Jeans").click(), previous=detected)
    assert _form(page)["kind"] == "Jeans"

    first = page.locator("#results .card").first  # "more like this": a new search, the kind seen in it
    picked = first.get_attribute("data-id")
    more = _searched(page, first.click, previous=jeans)
    assert searches.sent[-1]["product_id"] == picked and "kind" not in searches.sent[-1]
    assert "kind" not in _address(page) and _pressed(page) == ["Tshirts"]

    _searched(page, lambda: _chip(page, "Shirts").click(), previous=more)
    assert searches.sent[-1]["kind"] == "Shirts"
    photo = _searched(page, lambda: page.set_input_files("#file-input", str(DEMO / "queries" / "shirt.jpg")))
    assert "kind" not in _form(page) and "kind" not in _address(page)  # another photo
    assert _pressed(page) == ["Tshirts"]

    page.click("#attach-remove")  # the photo let go: words alone, nothing seen
    page.fill("#text-input", "watch")
    _searched(page, lambda: page.press("#text-input", "Enter"), previous=photo)
    assert searches.sent[-1] == {"text": "watch", "k": 24, "filters": {}}
    assert page.locator("#kind-bar").is_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_unknown_kind_in_a_link_shows_the_error(
    page: Any, searches: Searches, products: list[dict[str, str]]
) -> None:
    page.goto(f"/#product/{products[0]['id']}?kind=Gowns")
    page.wait_for_selector("#alert", state="visible")
    assert searches.sent[-1]["kind"] == "Gowns"
    text = page.locator("#alert-text").inner_text()
    assert "no kind 'Gowns'" in text and "Tshirts" in text and "image could not be used" not in text
    assert _result_ids(page) == [] and page.locator("#kind-bar").is_hidden()
    assert "kind" not in _address(page)  # the address no longer claims it


def test_an_unknown_kind_from_the_service_shows_its_error(page: Any) -> None:
    """The service itself (no answers made up here): a stale link's kind is refused, and the page says why."""
    page.goto(f"/#search?q=watch&kind={quote('Ball Gowns')}")
    page.wait_for_selector("#alert", state="visible")
    text = page.locator("#alert-text").inner_text()
    assert "no kind 'Ball Gowns'" in text and "Watches" in text
    assert page.locator("#kind-bar").is_hidden()
