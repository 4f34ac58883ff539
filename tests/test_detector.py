"""The garment detector's training: outfits (deterministic, boxes where the pieces landed), targets, and a tiny
training run whose export the detector serves."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.garment.detector import GarmentDetector, decode
from lookalike.garment.kinds import CLASSES
from lookalike.training.composite import Cutout
from lookalike.training.outfits import LAYOUTS, outfit

from .conftest import PRODUCTS_CSV, PRODUCTS_DIR

TOP, BOTTOM, SHOES = CLASSES.index("top"), CLASSES.index("bottom"), CLASSES.index("footwear")


def _solid(colour: tuple[int, int, int], size: tuple[int, int] = (60, 90)) -> Cutout:
    return Cutout(Image.new("RGB", size, colour), Image.new("L", size, 255))


POOLS = {TOP: [_solid((255, 0, 255))], BOTTOM: [_solid((0, 255, 0), (50, 100))], SHOES: [_solid((0, 0, 255), (70, 30))]}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_outfits_are_deterministic_for_a_seed(layout: str) -> None:
    a = outfit(POOLS, np.random.default_rng(3), 96, layout=layout)
    b = outfit(POOLS, np.random.default_rng(3), 96, layout=layout)
    assert a.image.size == (96, 96) and a.layout == layout
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and np.array_equal(a.boxes, b.boxes)
    assert len(a.boxes) == len(a.classes) == len(a.sources) >= 1
    assert ((a.boxes >= 0) & (a.boxes <= 1)).all() and (a.boxes[:, 2:] > a.boxes[:, :2]).all()


@pytest.mark.parametrize("seed", range(4))
def test_an_outfit_box_is_where_its_piece_shows(seed: int) -> None:
    # the same seed, the pieces in other colours: the pictures differ exactly where the pieces show
    other = {
        TOP: [_solid((0, 255, 0))],
        BOTTOM: [_solid((0, 0, 255), (50, 100))],
        SHOES: [_solid((255, 0, 255), (70, 30))],
    }
    a = outfit(POOLS, np.random.default_rng(seed), 128, layout="outfit")
    b = outfit(other, np.random.default_rng(seed), 128, layout="outfit")
    assert np.array_equal(a.boxes, b.boxes)
    diff = np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).max(axis=2) > 60
    covered = np.zeros_like(diff)
    for box in a.boxes:
        x0, y0, x1, y1 = (box * 128).round().astype(int)
        assert diff[y0:y1, x0:x1].mean() > 0.5  # each box is mostly its piece
        covered[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = True  # blur and JPEG spill a pixel or two
    # and the boxes hold the pieces (but for one mostly hidden under the others: not labelled, it is clutter)
    assert diff[~covered].sum() < 0.08 * diff.sum() + 10


def test_targets_peak_at_each_centre_and_point_at_its_sides() -> None:
    from lookalike.training.detector import targets

    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], np.float32)
    heat, dist, weight = targets(boxes, np.array([TOP, SHOES]), 8)
    assert heat.shape == (len(CLASSES), 8, 8) and dist.shape == (4, 8, 8) and weight.shape == (8, 8)
    assert heat[TOP, 2, 2] == 1.0 and heat[SHOES, 6, 6] == 1.0 and heat[BOTTOM].max() == 0.0
    assert np.allclose(dist[:, 2, 2], [2.5 / 8, 2.5 / 8, 1.5 / 8, 1.5 / 8])
    found = decode(heat, dist, threshold=0.5)
    assert sorted(g.kind for g in found) == ["footwear", "top"]
    assert np.allclose(sorted(g.box for g in found), boxes, atol=1e-6)


def _tiny_datasets(root: Path) -> Path:
    folder = root / "fashion-product-images-224"
    (folder / "images").mkdir(parents=True)
    with PRODUCTS_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        shutil.copy(PRODUCTS_DIR / r["image"], folder / "images" / Path(r["image"]).name)
        out.append({"id": r["id"], "image": f"images/{Path(r['image']).name}", "articleType": r["article_type"]})
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "image", "articleType"])
        writer.writeheader()
        writer.writerows(out)
    return root


@pytest.mark.torch
@pytest.mark.slow
def test_tiny_training_run_exports_a_model_the_detector_serves(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from lookalike.training.detector import train_detector

    messages: list[str] = []
    report = train_detector(
        _tiny_datasets(tmp_path / "datasets"), tmp_path / "out", size=64, outfits=16, test_outfits=4, epochs=1,
        photos=0, real_photos=0, workers=1, progress=messages.append,
    )  # fmt: skip
    path = tmp_path / "out" / "lookalike-detector.onnx"
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert report["train_outfits"] == 16 and report["test_outfits"] == 4 and report["grid"] == 4
    assert report["max_abs_diff_torch_onnx"] < 1e-3 and report["onnx_bytes"] < 8_000_000
    assert 0.0 <= report["test"]["box_recall_iou50"] <= 1.0
    assert any("epoch 1/1" in m for m in messages)
    detector = GarmentDetector(path, threshold=0.0)
    heat, dist = detector.outputs(Image.new("RGB", (120, 90), "white"))
    assert detector.size == 64 and heat.shape == (len(CLASSES), 4, 4) and dist.shape == (4, 4, 4)
    assert len(detector.detect(Image.new("RGB", (120, 90), "white"), limit=3)) <= 3


def test_detector_refuses_a_missing_model(tmp_path: Path) -> None:
    from lookalike.errors import ModelLoadError

    with pytest.raises(ModelLoadError):
        GarmentDetector(tmp_path / "nope.onnx").detect(Image.new("RGB", (32, 32)))


def test_detector_modules_import_without_torch_or_a_model_load() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import lookalike.garment.detector, lookalike.catalog.look, lookalike.training.detector; "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
