"""``lookalike eval --task text`` end to end on a tiny datasets tree shaped like ../shared/datasets: task 4 through
the catalogue's own search (with text, pictures only, BM25 alone) and the photo plus a colour word."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
PHOTOS = Path(__file__).parent / "data" / "photos"
TYPES = ("Tshirts", "Casual Shoes", "Watches", "Shirts")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue of 40 demo products (8 in the test split, ids divisible by 5) and 6 labelled photos."""
    root = tmp_path_factory.mktemp("datasets")
    with (DEMO / "products.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["article_type"] in TYPES]
    test = [r for r in rows if int(r["id"]) % 5 == 0][:8]
    picked = test + [r for r in rows if int(r["id"]) % 5 != 0][:32]
    cat = root / "fashion-product-images-224"
    (cat / "images").mkdir(parents=True)
    header = ["image", "id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season"]
    with (cat / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*header, "year", "usage", "productDisplayName"])
        for r in picked:
            shutil.copy(DEMO / r["image"], cat / "images" / f"{r['id']}.jpg")
            picture = f"images/{r['id']}.jpg"
            labels = [r["gender"], r["category"], r["subcategory"], r["article_type"], r["colour"], r["season"]]
            w.writerow([picture, r["id"], *labels, "2012.0", r["usage"], r["title"]])
    ph = root / "clothing-photos-dev"
    (ph / "images").mkdir(parents=True)
    photos = [("tshirt", "T-Shirt", "", "white"), ("shoes", "Shoes", "sneakers", "black")]
    with (ph / "labels.csv").open("w", newline="") as lab, (ph / "colours.csv").open("w", newline="") as col:
        wl, wc = csv.writer(lab), csv.writer(col)
        wl.writerow(["image", "sender_id", "label", "kids", "image_path"])
        wc.writerow(["image", "sender_id", "label", "colour_family", "fine_type", "image_path"])
        for sender in range(3):
            for name, label, fine, family in photos:
                shutil.copy(PHOTOS / f"{name}.jpg", ph / "images" / f"{name}{sender}.jpg")
                wl.writerow([f"{name}{sender}", sender, label, "False", f"images/{name}{sender}.jpg"])
                wc.writerow([f"{name}{sender}", sender, label, family, fine, f"images/{name}{sender}.jpg"])
    (ph / "label_to_articletype.json").write_text(
        json.dumps({"T-Shirt": ["Tshirts"], "Shoes": ["Casual Shoes", "Sports Shoes"]})
    )
    (ph / "fine_type_to_articletype.json").write_text(json.dumps({"sneakers": ["Casual Shoes", "Sports Shoes"]}))
    return root


def test_words_task_runs_through_the_catalogues_search(tiny_root: Path, tmp_path: Path) -> None:
    from lookalike.evaluate.text_eval import run_text_eval

    results = run_text_eval(tiny_root, tmp_path / "cache")
    assert set(results) == {"with text", "pictures only", "BM25 only, with text", "BM25 only, pictures only"}
    for row in results.values():
        assert set(row) == {"phrase mP@10", "phrase distinct mP@10", "title R@1", "title R@10"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert all(v == 0.0 for v in results["BM25 only, pictures only"].values())  # no words stored
    assert results["BM25 only, with text"]["title R@10"] == 1.0  # 8 products: every title finds its own
    assert results["with text"]["title R@10"] == 1.0
    # the predicted colours were remembered under the colour detector's name
    assert [p.name.startswith("predicted-colours-") for p in (tmp_path / "cache").glob("predicted-colours*")] == [True]


def test_photo_plus_a_colour_word_is_scored_on_the_labelled_photos(tiny_root: Path, tmp_path: Path) -> None:
    from lookalike.evaluate.text_eval import photo_words_eval

    shares = photo_words_eval(tiny_root, tmp_path / "cache", heldout_seed=None)
    assert shares["queries"] == 6.0
    assert set(shares) == {"photo alone", "photo + colour preference", "photo + 'in <colour>' a=1.0", "queries"}
    assert all(0.0 <= v <= 1.0 for k, v in shares.items() if k != "queries")
    # asking for a colour brings that colour up: never fewer hits of the kind in it than the photo alone
    assert shares["photo + colour preference"] >= shares["photo alone"]


def test_cli_words_task_writes_both_parts(tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lookalike.cli import app

    out = tmp_path / "eval-text"
    cache = tmp_path / "cache"
    try:
        app(["eval", "--task", "text", "--datasets", str(tiny_root), "--cache-dir", str(cache), "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    written = json.loads((out / "text.json").read_text())
    assert {"with text", "pictures only", "photo plus a colour word"} <= set(written)
    printed = capsys.readouterr().out
    assert "Photo + a colour word" in printed and "photo + colour preference" in printed
