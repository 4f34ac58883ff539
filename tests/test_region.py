"""Region search: the maths of a region (fractions, pixels, EXIF orientation, the mirror view) and bad regions."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.catalog.region import MIN_SIDE, Region, draft_side, parse_region
from lookalike.errors import InvalidQueryError
from lookalike.extractors.base import with_mirror

from .conftest import PRODUCTS_DIR


@pytest.mark.parametrize(
    "value",
    ["0.1,0.2,0.5,0.9", "0.1 0.2 0.5 0.9", [0.1, 0.2, 0.5, 0.9], (0.1, 0.2, 0.5, 0.9), ["0.1", "0.2", "0.5", "0.9"]],
)
def test_region_parses_four_fractions(value: object) -> None:
    assert Region.parse(value).as_tuple() == (0.1, 0.2, 0.5, 0.9)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0.1,0.2,0.5", "got 3"),
        ([0, 0, 1, 1, 1], "got 5"),
        ("a,0,1,1", "not a number"),
        ([True, 0, 1, 1], "not a number"),
        ([-0.1, 0, 1, 1], "between 0 and 1"),
        ([0, 0, 1.2, 1], "between 0 and 1"),
        ([0, 0, math.nan, 1], "between 0 and 1"),
        ([0.5, 0, 0.2, 1], "x0 < x1"),  # inverted
        ([0.2, 0.3, 0.2, 1], "x0 < x1"),  # zero area
        ([0, 0.5, 1, 0.5], "y0 < y1"),
        (42, "got int"),
    ],
)
def test_a_bad_region_says_what_is_wrong(value: object, says: str) -> None:
    with pytest.raises(InvalidQueryError, match="x0,y0,x1,y1") as exc:
        Region.parse(value)  # type: ignore[arg-type]
    assert says.split()[-1] in str(exc.value)


def test_none_is_no_region() -> None:
    assert parse_region(None) is None


def test_fractions_become_rounded_pixels() -> None:
    assert Region(0.25, 0.1, 0.75, 0.9).pixels((400, 300)) == (100, 30, 300, 270)
    assert Region(0, 0, 1, 1).pixels((64, 40)) == (0, 0, 64, 40)
    assert Region(0.333, 0, 0.667, 1).pixels((100, 100)) == (33, 0, 67, 100)


def test_a_region_under_the_minimum_says_the_minimum() -> None:
    with pytest.raises(InvalidQueryError, match=f"minimum is {MIN_SIDE} pixels") as exc:
        Region(0, 0, 0.1, 1).pixels((300, 300))  # 30 x 300 pixels
    assert "30 x 300 pixels of the 300 x 300 picture" in str(exc.value)
    assert Region(0, 0, 0.1, 1).pixels((320, 300)) == (0, 0, 32, 300)


def test_a_region_is_widened_to_a_square_inside_the_picture() -> None:
    assert Region(0.4, 0, 0.6, 1).square_pixels((400, 300)) == (50, 0, 350, 300)  # tall: widened about its centre
    assert Region(0, 0, 0.2, 0.5).square_pixels((400, 400)) == (0, 0, 200, 200)  # at an edge: moved inside
    assert Region(0.8, 0.9, 1, 1).square_pixels((400, 400)) == (320, 320, 400, 400)  # wide, in a corner
    assert Region(0, 0, 1, 1).square_pixels((100, 300)) == (0, 0, 100, 300)  # longer than the picture is wide
    img = Image.new("RGB", (400, 300))
    assert Region(0.4, 0, 0.6, 1).square_crop(img).size == (300, 300)
    assert Region(0, 0, 1, 1).square_crop(img) is img


def test_whole_region_crops_nothing() -> None:
    img = Image.new("RGB", (50, 40))
    assert Region(0, 0, 1, 1).crop(img) is img
    assert Region(0, 0, 1, 1).is_whole()


def test_draft_side_keeps_the_region_at_the_models_size() -> None:
    assert draft_side(224, Region(0, 0, 1, 1)) == 224
    assert draft_side(224, Region(0.5, 0, 1, 0.25)) == 896
    assert draft_side(None, Region(0, 0, 0.5, 0.5)) is None


def _exif_rotated_jpeg() -> bytes:
    """A JPEG stored 200 wide x 100 high with EXIF orientation 6 (shown turned 90 degrees clockwise: 100 x 200),
    whose shown picture is red in its top half and blue in its bottom half."""
    shown = Image.new("RGB", (100, 200), (220, 20, 20))
    shown.paste((20, 20, 220), (0, 100, 100, 200))
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


def test_region_fractions_refer_to_the_picture_as_shown(built_catalog) -> None:
    from lookalike.catalog.look import region_picture

    data = _exif_rotated_jpeg()
    top = region_picture(built_catalog, data, None, (0, 0, 1, 0.5))
    bottom = region_picture(built_catalog, data, None, "0,0.5,1,1")
    assert top.size == (100, 100) and bottom.size == (100, 100)
    r, _, b = np.asarray(top, np.float32).reshape(-1, 3).mean(axis=0)
    assert r > 150 and b < 80
    r, _, b = np.asarray(bottom, np.float32).reshape(-1, 3).mean(axis=0)
    assert b > 150 and r < 80


def test_region_search_embeds_the_crop_and_its_mirror(built_catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    path = PRODUCTS_DIR / "images" / "13466.jpg"
    seen: list[list[Image.Image]] = []
    ext = built_catalog.extractor
    embed = ext.embed

    def spy(images, batch_size=None):  # type: ignore[no-untyped-def]
        images = list(images)
        seen.append(images)
        return embed(images, batch_size)

    monkeypatch.setattr(ext, "embed", spy)
    hits = built_catalog.search(path, region=(0.25, 0.0, 0.75, 0.5), k=3, colour_rank=False)
    views = seen[-1]
    with Image.open(path) as img:
        crop = img.convert("RGB").crop((56, 0, 168, 112))  # already square: searched as it is
    assert len(views) == 2
    assert np.array_equal(np.asarray(views[0]), np.asarray(crop))
    assert np.array_equal(np.asarray(views[1]), np.asarray(with_mirror(crop)[1]))
    same = built_catalog.search(crop, k=3, colour_rank=False)
    assert [(h.id, round(h.score, 5)) for h in hits] == [(h.id, round(h.score, 5)) for h in same]


def test_a_region_of_a_collage_finds_its_product(built_catalog) -> None:
    images = PRODUCTS_DIR / "images"
    left, right = Image.open(images / "13466.jpg").convert("RGB"), Image.open(images / "19675.jpg").convert("RGB")
    collage = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    collage.paste(left, (0, 0))
    collage.paste(right, (left.width, 0))
    buf = io.BytesIO()
    collage.save(buf, "PNG")
    assert built_catalog.search(buf.getvalue(), region=(0, 0, 0.5, 1), k=1)[0].id == "13466"
    assert built_catalog.search(buf.getvalue(), region=(0.5, 0, 1, 1), k=1)[0].id == "19675"


def test_region_goes_with_words_and_filters(built_catalog) -> None:
    path = PRODUCTS_DIR / "images" / "13466.jpg"
    result = built_catalog.search_result(path, region="0,0,1,1", text="in black", k=3)
    assert result.hits


@pytest.mark.parametrize(
    ("region", "says"),
    [((0, 0, 1.5, 1), "between 0 and 1"), ((0.6, 0, 0.4, 1), "x0 < x1"), ((0, 0, 0.1, 0.1), "minimum is 32")],
)
def test_search_refuses_a_bad_region(built_catalog, region: tuple[float, ...], says: str) -> None:
    with pytest.raises(InvalidQueryError, match=says):
        built_catalog.search(PRODUCTS_DIR / "images" / "13466.jpg", region=region)


def test_a_region_needs_a_picture(built_catalog) -> None:
    with pytest.raises(InvalidQueryError, match="region goes with a picture"):
        built_catalog.search(product_id="13466", region=(0, 0, 1, 1))


def test_region_of_a_large_jpeg_is_decoded_sharp(built_catalog, tmp_path: Path) -> None:
    big = Image.new("RGB", (2400, 1800), "white")
    big.paste((10, 10, 10), (0, 0, 240, 180))
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    from lookalike.catalog.look import region_picture

    crop = region_picture(built_catalog, path, None, (0, 0, 0.1, 0.1))
    assert crop.size == (240, 240)  # 240 x 180 widened to a square; not the JPEG draft of the whole picture
    assert np.asarray(crop)[:170, :230].max() < 60 and np.asarray(crop)[200:, :].min() > 200
