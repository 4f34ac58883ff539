"""End to end: like / dislike on the web page's results (feedback.js) in Debian's Chromium: the request's
positive / negative, the judged products as removable chips, the state in the address (Back and Forward, a link),
by mouse, keyboard and touch (issue 24). Uses the fixtures of tests/test_browser.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest

from . import test_browser as _tb
from .test_browser import DEMO, _result_ids, _wait_for_results

# the page, browser and server of tests/test_browser.py
products, catalog_dir, base_url, browser, page = _tb.products, _tb.catalog_dir, _tb.base_url, _tb.browser, _tb.page

# Chromium does not hand multipart bodies with a file to Playwright: the page's own fetch records the text fields
# (a repeated field as a list).
_RECORD_FORMS = """(() => {
    const send = window.fetch;
    window.sentForms = [];
    window.fetch = (input, init = {}) => {
        if (init.body instanceof FormData) {
            const fields = {};
            for (const [name, value] of init.body.entries()) {
                if (typeof value === "string") (fields[name] = fields[name] || []).push(value);
            }
            window.sentForms.push(fields);
        }
        return send(input, init);
    };
})()"""

pytestmark = pytest.mark.slow


def _is_search(response: Any) -> bool:
    return response.url.endswith("/api/search") and response.request.method == "POST"


def _judge(page: Any, index: int, verdict: str, how: str = "click") -> tuple[Any, str]:
    """Like or dislike the result at ``index``: (the search response it started, that product's id)."""
    wrap = page.locator("#results .card-wrap").nth(index)
    pid = wrap.get_attribute("data-id")
    button = wrap.locator(f".judge-{verdict}")
    with page.expect_response(_is_search) as info:
        if how == "keyboard":
            button.focus()
            page.keyboard.press("Enter")
        elif how == "tap":
            button.tap()
        else:
            button.click()
    return info.value, pid


def _form(page: Any) -> dict[str, list[str]]:
    """The text fields of the last multipart request the page sent, each a list of its values."""
    return page.evaluate("() => window.sentForms[window.sentForms.length - 1]")


def _chips(page: Any, verdict: str) -> list[str]:
    return page.eval_on_selector_all(f"#judged .judged-chip.is-{verdict}", "cs => cs.map(c => c.dataset.id)")


def _address(page: Any) -> dict[str, list[str]]:
    hash_ = page.evaluate("() => location.hash")
    return parse_qs(hash_.split("?", 1)[1]) if "?" in hash_ else {}


def test_like_and_dislike_a_photos_results_then_go_back_and_forward(page: Any) -> None:
    page.add_init_script(_RECORD_FORMS)
    page.goto("/")
    page.set_input_files("#file-input", str(DEMO / "queries" / "tshirt.jpg"))
    plain = _wait_for_results(page)
    assert page.locator("#judged").is_hidden()
    assert page.locator("#results .card-wrap .judge-like").count() == len(plain)

    _, liked = _judge(page, 5, "like")  # by mouse
    assert _form(page)["positive"] == [liked] and "negative" not in _form(page)
    one = _wait_for_results(page, previous=plain)
    assert one[0] == liked  # the liked product comes back first
    assert _chips(page, "liked") == [liked] and _address(page)["like"] == [liked]
    assert page.locator(f'#results .card-wrap[data-id="{liked}"] .judge-like').get_attribute("aria-pressed") == "true"

    _, disliked = _judge(page, 1, "dislike", how="keyboard")  # by keyboard: Enter on the focused button
    assert _form(page)["negative"] == [disliked] and _form(page)["positive"] == [liked]
    two = _wait_for_results(page, previous=one)
    assert two[0] == liked and two.index(disliked) > 1
    assert _chips(page, "disliked") == [disliked]
    assert page.evaluate("() => document.activeElement.classList.contains('judge-btn')")  # focus stays on a button
    _tb.OUT.mkdir(exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(_tb.OUT / "feedback.png"))

    page.go_back()  # one judgement fewer
    page.wait_for_function("() => document.querySelectorAll('#judged .judged-chip').length === 1")
    assert _wait_for_results(page) == one and _chips(page, "liked") == [liked]
    page.go_back()  # the plain search
    page.wait_for_selector("#judged", state="hidden")
    assert _wait_for_results(page) == plain
    page.go_forward()
    page.go_forward()
    page.wait_for_function("() => document.querySelectorAll('#judged .judged-chip').length === 2")
    assert _wait_for_results(page) == two

    with page.expect_response(_is_search):  # × on a chip takes the like back
        page.locator(f'#judged .judged-chip[data-id="{liked}"]').click()
    assert "positive" not in _form(page) and _form(page)["negative"] == [disliked]
    _wait_for_results(page, previous=two)
    assert _chips(page, "liked") == [] and _chips(page, "disliked") == [disliked]
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_link_with_likes_reproduces_the_page_with_filters(page: Any, products: list[dict[str, str]]) -> None:
    shirt, jeans = (next(r for r in products if r["article_type"] == kind) for kind in ("Tshirts", "Jeans"))
    other = next(r for r in products if r["article_type"] == "Tshirts" and r["id"] != shirt["id"])
    with page.expect_response(_is_search) as info:
        page.goto(f"/#product/{shirt['id']}?like={other['id']}&unlike={jeans['id']}&gender={shirt['gender']}")
    body = info.value.request.post_data_json
    assert body["positive"] == [other["id"]] and body["negative"] == [jeans["id"]]
    assert shirt["gender"] in str(body["filters"].get("gender"))  # the address's filter goes with them
    ids = _wait_for_results(page)
    assert ids[0] == other["id"] and jeans["id"] not in ids[:3]
    assert _chips(page, "liked") == [other["id"]] and _chips(page, "disliked") == [jeans["id"]]
    page.wait_for_function(  # the chips' names come from the catalogue
        "t => [...document.querySelectorAll('#judged .judged-name')].some(n => n.textContent === t)", arg=other["title"]
    )
    page.click("#judged .judged-clear")
    page.wait_for_selector("#judged", state="hidden")
    assert "like" not in _address(page) and "gender" in _address(page)


def test_like_by_touch_on_a_phone(browser: Any, base_url: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True, base_url=base_url
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/#search?q=watch")
        first = _wait_for_results(page)
        button = page.locator("#results .card-wrap").nth(2).locator(".judge-like")
        box = button.bounding_box()
        assert box and box["width"] >= 36 and box["height"] >= 36  # large enough to tap
        response, liked = _judge(page, 2, "like", how="tap")
        assert response.request.post_data_json["positive"] == [liked]
        assert _wait_for_results(page, previous=first)[0] == liked
        assert _result_ids(page)
    finally:
        context.close()
