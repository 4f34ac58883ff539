"""Every awkward image in tests/data/bad through the decoder, the catalogue ingest and the CLI;
plus a property-based test that mutates valid images and expects only lookalike's own errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lookalike import Catalog, Product, read_csv
from lookalike import errors as lk_errors
from lookalike.errors import ImageError, LookalikeError
from lookalike.imaging import open_image_bytes

from .conftest import PRODUCTS_DIR

BAD = Path(__file__).parent / "data" / "bad"
CASES = json.loads((BAD / "cases.json").read_text())
OK_CASES = [c for c in CASES if c["outcome"] == "ok"]
ERROR_CASES = [c for c in CASES if c["outcome"] != "ok"]


def test_the_corpus_covers_at_least_25_kinds():
    assert len({c["kind"] for c in CASES}) >= 25
    assert len(OK_CASES) >= 10 and len(ERROR_CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_decoder_outcome(case):
    data = (BAD / case["file"]).read_bytes()
    if case["outcome"] == "ok":
        img = open_image_bytes(data)
        assert img.mode == "RGB" and list(img.size) == case["size"]
    else:
        with pytest.raises(getattr(lk_errors, case["outcome"])):
            open_image_bytes(data)


def test_exif_rotation_is_applied_to_pixels():
    img = open_image_bytes((BAD / "exif-rotated.jpg").read_bytes())
    assert img.size == (200, 300)  # stored 300x200 with orientation 6


@pytest.mark.parametrize("case", OK_CASES, ids=[c["file"] for c in OK_CASES])
def test_supported_odd_images_embed(lite0, case):
    img = open_image_bytes((BAD / case["file"]).read_bytes())
    vec = lite0.embed([img])
    assert vec.shape == (1, 1280) and np.isfinite(vec).all()


def test_ingest_of_the_whole_corpus_keeps_the_good_and_names_the_bad(tmp_path, lite0):
    rows = ["id,image"]
    rows += [f"good-{i},{PRODUCTS_DIR / 'images' / name}" for i, name in enumerate(("13466.jpg", "17831.jpg"))]
    rows += [f"{c['file']},{BAD / c['file']}" for c in CASES]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    with Catalog.create(tmp_path / "cat", extractor=lite0) as cat:
        report = cat.ingest(read_csv(tmp_path / "p.csv"), batch_size=7)
        failed = {pid: msg for pid, _, msg in report.failed}
        assert set(failed) == {c["file"] for c in ERROR_CASES}
        for pid, msg in failed.items():
            assert pid in msg  # the message names the file
        assert report.added == 2 + len(OK_CASES) == len(cat)
        assert cat.verify()["ok"]
        assert cat.search(PRODUCTS_DIR / "images" / "13466.jpg", k=1)[0].id == "good-0"
        # odd-but-valid pictures are searchable by their own picture
        hit = cat.search((BAD / "cmyk.jpg").read_bytes(), k=1)[0]
        assert hit.id in {"cmyk.jpg", "good-1", "progressive.jpg", "photo.webp", "photo.tiff", "photo.bmp"}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["file"] for c in ERROR_CASES])
def test_search_with_a_bad_image_is_a_clear_error(built_catalog, case):
    with pytest.raises(getattr(lk_errors, case["outcome"])):
        built_catalog.search((BAD / case["file"]).read_bytes(), k=3)


def test_upsert_with_a_bad_image_changes_nothing(built_catalog):
    before = len(built_catalog)
    with pytest.raises(ImageError):
        built_catalog.upsert(Product(id="bomb"), (BAD / "bomb.png").read_bytes())
    assert len(built_catalog) == before and built_catalog.store.get("bomb") is None


# --- property-based: mutated valid images ---------------------------------------------------------
def _seed_images() -> list[bytes]:
    photo = Image.open(PRODUCTS_DIR / "images" / "10773.jpg").convert("RGB").resize((48, 48))
    out = []
    for fmt, kw in (("JPEG", {"quality": 80}), ("PNG", {}), ("GIF", {}), ("WEBP", {}), ("BMP", {}),
                    ("TIFF", {}), ("JPEG", {"progressive": True})):  # fmt: skip
        buf = io.BytesIO()
        photo.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "duplicate", "overwrite"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 256))]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(mutated_images())
def test_mutated_images_raise_only_lookalike_errors(data):
    try:
        img = open_image_bytes(data)
    except LookalikeError as exc:
        assert isinstance(exc, ImageError) and str(exc)
        return
    assert img.mode == "RGB" and img.size[0] >= 1 and img.size[1] >= 1
