"""Garment localisation: catalogue masks, composites, the tiny segmenter's training and serving."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ModelLoadError
from lookalike.garment import DEFAULT_MODEL, GarmentSegmenter, catalogue_mask, default_segmenter
from lookalike.garment.mask import fill_from_border
from lookalike.training.composite import Cutout, composite, cutout

DATA = Path(__file__).parent / "data"
PRODUCTS = DATA / "products" / "images"
PHOTOS = DATA / "photos"


def _border(mask: np.ndarray, width: int) -> np.ndarray:
    band = np.ones_like(mask, dtype=bool)
    band[width:-width, width:-width] = False
    return mask[band]


def test_fill_from_border_reaches_around_corners_but_not_into_enclosed_areas() -> None:
    free = np.ones((9, 9), dtype=bool)
    free[2:7, 2:7] = False  # a wall...
    free[3:6, 3:6] = True  # ...around an enclosed room
    free[0:8, 1] = False  # and a corridor that must be entered from the bottom
    reach = fill_from_border(free)
    assert not reach[3:6, 3:6].any()
    assert reach[0, 0] and reach[4, 0] and reach[0, 8] and reach[8, 8]
    assert (reach == (free & ~np.pad(np.ones((3, 3), bool), 3))).all()


@pytest.mark.parametrize("name", ["15634.jpg", "10773.jpg", "10729.jpg"])  # navy polo, red tote, black bag
def test_catalogue_mask_finds_the_product_not_the_white_background(name: str) -> None:
    img = Image.open(PRODUCTS / name).convert("RGB")
    mask = catalogue_mask(img)
    assert mask.shape == (img.height, img.width) and mask.dtype == bool
    h, w = mask.shape
    assert mask[h * 2 // 5 : h * 3 // 5, w * 2 // 5 : w * 3 // 5].mean() > 0.95  # the garment's middle
    assert _border(mask, 4).mean() < 0.05
    assert 0.1 < mask.mean() < 0.8
    # what the mask leaves out is the studio white
    assert np.asarray(img)[~mask].min(axis=1).mean() > 235


def test_catalogue_mask_keeps_a_white_shoe_on_white() -> None:
    img = Image.open(PRODUCTS / "14380.jpg").convert("RGB")  # white shoe: only its outline and shadow show
    mask = catalogue_mask(img)
    ys, xs = np.nonzero(mask)
    assert 0.08 < mask.mean() < 0.3
    assert ys.min() > 50 and ys.max() < 190 and xs.min() > 10 and xs.max() < 214  # the shoe's box, not the page
    assert _border(mask, 8).sum() == 0
    # the shoe's white upper (near-white, inside the outline) is kept, not only its dark sole
    arr = np.asarray(img, dtype=np.int16)
    assert (arr[mask].min(axis=1) > 225).mean() > 0.3


def _solid_cutout(colour: tuple[int, int, int]) -> Cutout:
    return Cutout(Image.new("RGB", (60, 90), colour), Image.new("L", (60, 90), 255))


def test_composites_are_deterministic_for_a_seed() -> None:
    img = Image.open(PRODUCTS / "13466.jpg").convert("RGB")
    cut = cutout(img, catalogue_mask(img))
    assert cut is not None
    a_pic, a_mask = composite(cut, np.random.default_rng(7), 96, [cut])
    b_pic, b_mask = composite(cut, np.random.default_rng(7), 96, [cut])
    c_pic, _ = composite(cut, np.random.default_rng(8), 96, [cut])
    assert a_pic.size == (96, 96) and a_mask.shape == (96, 96)
    assert np.array_equal(np.asarray(a_pic), np.asarray(b_pic)) and np.array_equal(a_mask, b_mask)
    assert not np.array_equal(np.asarray(a_pic), np.asarray(c_pic))


@pytest.mark.parametrize("seed", range(6))
def test_composite_mask_is_where_the_product_landed(seed: int) -> None:
    from lookalike.garment.mask import dilate, erode

    # the same seed, a magenta and a green product: the scene is the same, only the product differs
    pic_a, mask_a = composite(_solid_cutout((255, 0, 255)), np.random.default_rng(seed), 128)
    pic_b, mask_b = composite(_solid_cutout((0, 255, 0)), np.random.default_rng(seed), 128)
    assert np.array_equal(mask_a, mask_b)
    diff = np.abs(np.asarray(pic_a, dtype=np.int16) - np.asarray(pic_b, dtype=np.int16)).max(axis=2)
    inside, outside = erode(mask_a, 2), ~dilate(mask_a, 3)
    assert inside.sum() > 200
    assert (diff[inside] > 60).mean() > 0.95
    assert (diff[outside] < 30).mean() > 0.95


def test_segmenter_refuses_a_missing_model(tmp_path: Path) -> None:
    seg = GarmentSegmenter(tmp_path / "nope.onnx")  # lazy: nothing is loaded yet
    with pytest.raises(ModelLoadError):
        seg.predict(Image.new("RGB", (32, 32)))


def _tiny_datasets(root: Path) -> Path:
    folder = root / "fashion-product-images-224"
    (folder / "images").mkdir(parents=True)
    rows = []
    for path in sorted(PRODUCTS.glob("*.jpg")):
        shutil.copy(path, folder / "images" / path.name)
        rows.append({"image": f"images/{path.name}", "id": path.stem})
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "id"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.mark.torch
@pytest.mark.slow
def test_tiny_training_run_exports_a_model_the_segmenter_serves(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from lookalike.training.segment import train_segmenter

    messages: list[str] = []
    report = train_segmenter(
        _tiny_datasets(tmp_path / "datasets"), tmp_path / "out", size=64, epochs=1, progress=messages.append
    )
    onnx_path = tmp_path / "out" / "lookalike-garment.onnx"
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()
    assert report["train_cutouts"] > 0 and report["test_cutouts"] > 0  # ids % 5 == 0 held out
    assert report["train_cutouts"] + report["test_cutouts"] <= 16
    assert 0.0 <= report["test_iou"]["mean_iou"] <= 1.0
    assert report["max_abs_diff_torch_onnx"] < 1e-3
    assert any("epoch 1/1" in m for m in messages)
    seg = GarmentSegmenter(onnx_path)
    prob = seg.predict(Image.open(PHOTOS / "tshirt.jpg"))
    assert seg.size == 64 and prob.shape == (32, 32) and prob.dtype == np.float32
    assert ((prob >= 0) & (prob <= 1)).all()
    assert seg.mask(Image.new("RGB", (50, 40)), (20, 10)).shape == (10, 20)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no bundled lookalike-garment.onnx")
def test_shipped_model_finds_the_tshirt_in_a_phone_photo() -> None:
    img = Image.open(PHOTOS / "tshirt.jpg").convert("RGB")
    seg = default_segmenter()
    assert default_segmenter() is seg
    prob = seg.mask(img)
    assert prob.shape == (img.height, img.width)
    h, w = prob.shape
    centre = prob[h // 3 : h * 2 // 3, w // 3 : w * 2 // 3]
    assert centre.mean() > 0.7
    assert _border(prob, max(2, min(h, w) // 12)).mean() < 0.3
    assert centre.mean() - _border(prob, max(2, min(h, w) // 12)).mean() > 0.5


def test_serving_and_training_modules_import_without_torch_or_a_model_load() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import lookalike.garment, lookalike.training.segment, lookalike.training.composite; "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
