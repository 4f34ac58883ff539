"""End to end in Debian's Chromium: the query photo with its garments' boxes and the crop box (static/region.js).

Drag the crop box's corner with the mouse (a search of that region, its address saying so), tap a garment box on a
touch screen (a search of that garment), and shop the look (a row of results per garment).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests", allow_module_level=True)

from playwright import sync_api  # noqa: E402

from .conftest import PRODUCTS_CSV  # noqa: E402
from .http_server import serving_app  # noqa: E402
from .test_browser import CHROMIUM_ARGS, OUT  # noqa: E402
from .test_garments import outfit_picture  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from lookalike.catalog import Catalog
    from lookalike.service import ServiceSettings, create_app
    from lookalike.sources import read_csv

    path = tmp_path_factory.mktemp("catalogs") / "region"
    with Catalog.create(path) as cat:
        assert cat.ingest(read_csv(PRODUCTS_CSV)).added == 16
    settings = ServiceSettings(admin_token=None, allow_private_urls=False, cors_origins=[], default_k=12, max_k=100)
    with serving_app(create_app(path, settings)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def outfit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "outfit.png"
    outfit_picture()[0].save(path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _page(browser: Any, base_url: str, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, **options)
    page = context.new_page()
    page.add_init_script(_RECORD)
    page.set_default_timeout(20_000)
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
    return page


# Every search's multipart fields, as the page sent them (Playwright gives no body for a request with a file).
_RECORD = """
window.sentSearches = [];
const fetched = window.fetch;
window.fetch = (url, options = {}) => {
  if (String(url).endsWith("/api/search") && options.body instanceof FormData) {
    window.sentSearches.push(Object.fromEntries([...options.body].filter(([, v]) => typeof v === "string")));
  }
  return fetched(url, options);
};
"""


def _region_sent(page: Any) -> list[float]:
    """The region of the page's last search (its multipart field), as numbers."""
    sent = page.evaluate("window.sentSearches.at(-1)")
    return [float(v) for v in sent["region"].split(",")]


def _is_search(request: Any) -> bool:
    return request.url.endswith("/api/search") and request.method == "POST"


def _hash_region(page: Any) -> list[float] | None:
    query = page.evaluate("location.hash").partition("?")[2]
    value = parse_qs(query).get("region")
    return [float(v) for v in value[0].split(",")] if value else None


def _upload(page: Any, path: Path) -> None:
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#catalog-size').textContent.includes('16 products')")
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#look:not([hidden]) .garment-box")


def test_drag_the_crop_box_then_tap_a_garment(browser: Any, base_url: str, outfit_file: Path) -> None:
    page = _page(browser, base_url, viewport={"width": 1280, "height": 900})
    _upload(page, outfit_file)
    assert _hash_region(page) is None
    frame = page.locator("#look-frame").bounding_box()
    handle = page.locator(".crop-handle.se").bounding_box()
    # drag the bottom-right corner up to the middle of the photo: the top half is searched
    with page.expect_request(_is_search):
        page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        page.mouse.move(frame["x"] + frame["width"] * 0.9, frame["y"] + frame["height"] * 0.45, steps=8)
        page.mouse.up()
    region = _region_sent(page)
    assert region[:2] == [0, 0] and 0.85 <= region[2] <= 0.95 and 0.4 <= region[3] <= 0.5, region
    page.wait_for_function("() => location.hash.includes('region=')")
    assert _hash_region(page) == region
    crop = page.locator("#crop").bounding_box()
    assert crop["height"] < frame["height"] * 0.6
    # move the box by its frame: the region moves, its size stays
    grip = page.locator(".crop-grip").bounding_box()
    with page.expect_request(_is_search):
        page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
        page.mouse.down()
        page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2 + frame["height"] * 0.3, steps=6)
        page.mouse.up()
    moved = _region_sent(page)
    assert abs((moved[3] - moved[1]) - (region[3] - region[1])) < 0.02 and moved[1] > 0.2, moved
    page.screenshot(path=str(OUT / "region-crop.png"), full_page=True) if OUT.is_dir() else None
    # Back: the search before the move, region and all
    page.wait_for_function("() => location.hash.includes('region=')")
    after = page.evaluate("location.hash")
    page.go_back()
    page.wait_for_function("after => location.hash !== after", arg=after)
    assert _hash_region(page) == region
    assert not page.errors, page.errors


def test_tap_a_garment_box_on_a_touch_screen(browser: Any, base_url: str, outfit_file: Path) -> None:
    page = _page(browser, base_url, viewport={"width": 412, "height": 860}, has_touch=True, is_mobile=True)
    _upload(page, outfit_file)
    box = page.locator(".garment-box").first
    box.scroll_into_view_if_needed()
    bounds, frame = box.bounding_box(), page.locator("#look-frame").bounding_box()
    with page.expect_request(_is_search):
        page.touchscreen.tap(bounds["x"] + bounds["width"] / 2, bounds["y"] + bounds["height"] / 2)
    region = _region_sent(page)
    expected = [
        (bounds["x"] - frame["x"]) / frame["width"], (bounds["y"] - frame["y"]) / frame["height"],
        (bounds["x"] + bounds["width"] - frame["x"]) / frame["width"],
        (bounds["y"] + bounds["height"] - frame["y"]) / frame["height"],
    ]  # fmt: skip
    assert all(abs(a - b) < 0.03 for a, b in zip(region, expected, strict=True)), (region, expected)
    page.wait_for_function("() => location.hash.includes('region=')")
    page.wait_for_function("() => document.querySelector('#results').getAttribute('aria-busy') === 'false'")
    box = page.locator(".garment-box").first
    box.scroll_into_view_if_needed()
    bounds, crop = box.bounding_box(), page.locator("#crop").bounding_box()
    assert abs(crop["y"] - bounds["y"]) < 4 and abs(crop["height"] - bounds["height"]) < 6
    page.locator("#look-whole").click()
    page.wait_for_function("() => !location.hash.includes('region=')")
    assert not page.errors, page.errors


def test_shop_the_look_shows_a_row_per_garment(browser: Any, base_url: str, outfit_file: Path) -> None:
    page = _page(browser, base_url, viewport={"width": 1280, "height": 900})
    _upload(page, outfit_file)
    garments = page.locator(".garment-box").count()
    page.locator("#shop-look").click()
    page.wait_for_selector(".look-row .card")
    assert page.locator(".look-row").count() == garments
    assert all(page.locator(".look-row").nth(i).locator(".card").count() >= 1 for i in range(garments))
    page.screenshot(path=str(OUT / "region-shop-the-look.png"), full_page=True) if OUT.is_dir() else None
    assert not page.errors, page.errors
