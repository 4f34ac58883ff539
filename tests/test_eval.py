"""The evaluation harness, loaders and report end-to-end on a tiny labelled set of demo images."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.errors import SourceError
from lookalike.evaluate import datasets as ds
from lookalike.evaluate import metrics as M
from lookalike.evaluate.harness import (
    EmbeddingCache,
    evaluate_task,
    rank_exact,
    run_evaluation,
    score_ranking,
)

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
TYPES = ("Tshirts", "Watches", "Casual Shoes", "Handbags")


@pytest.fixture(scope="module")
def tiny_rows() -> list[dict[str, str]]:
    """20 demo products: the first 5 of each of four article types."""
    with (DEMO / "products.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for t in TYPES for r in [r for r in rows if r["article_type"] == t][:5]]
    assert len(picked) == 20
    return picked


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture()
def tiny_set(tmp_path: Path, tiny_rows) -> tuple[Path, Path]:
    """(queries.csv, gallery.csv): the gallery holds the 20 products; the queries are one gallery image
    of each type plus the demo phone photo of a T-shirt (relevant: Tshirts or Tops)."""
    gallery = [
        {
            "id": r["id"],
            "image": str(DEMO / r["image"]),
            "article_type": r["article_type"],
            "colour": r["colour"],
        }
        for r in tiny_rows
    ]
    firsts = [next(r for r in tiny_rows if r["article_type"] == t) for t in TYPES]
    queries = [{"image": str(DEMO / r["image"]), "label": r["article_type"]} for r in firsts]
    queries.append({"image": str(DEMO / "queries" / "tshirt.jpg"), "label": "Tshirts|Tops"})
    return _write_csv(tmp_path / "queries.csv", queries), _write_csv(tmp_path / "gallery.csv", gallery)


# --- ranking and scoring ------------------------------------------------------------------------------
def test_rank_exact_matches_a_stable_full_sort_with_ties():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(60, 8)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    gallery[30] = gallery[3]  # exact ties: the lower gallery index must come first
    gallery[31] = gallery[3]
    queries = np.concatenate([gallery[[3, 10]], rng.normal(size=(5, 8)).astype(np.float32)])
    exclude = np.array([-1, 10, -1, -1, 4, -1, -1])
    top, scores = rank_exact(queries, gallery, 7, exclude, chunk=3)
    for i, q in enumerate(queries):
        sims = gallery @ q
        candidates = [j for j in range(60) if j != exclude[i]]
        expected = sorted(candidates, key=lambda j: (-sims[j], j))[:7]
        assert top[i].tolist() == expected
        np.testing.assert_allclose(scores[i], sims[expected], rtol=1e-5)
    assert top[0, :3].tolist() == [3, 30, 31]
    assert 10 not in top[1]


def test_rank_exact_pads_when_the_gallery_is_smaller_than_k():
    gallery = np.eye(3, dtype=np.float32)
    top, scores = rank_exact(gallery, gallery, 5, [0, -1, 2])
    assert top[0].tolist() == [1, 2, -1, -1, -1]
    assert top[1].tolist()[:3] == [1, 0, 2] and top[1, 3] == -1
    assert np.isneginf(scores[0, 2:]).all()


def test_score_ranking_agrees_with_the_scalar_metrics():
    rng = np.random.default_rng(1)
    labels = tuple(rng.choice(["a", "b", "c", "d"], size=40).tolist())
    top = np.stack([rng.permutation(40)[:10] for _ in range(25)])
    accepts = tuple(frozenset(rng.choice(["a", "b", "c", "d", "zz"], size=2).tolist()) for _ in range(25))
    groups = tuple(sorted(a)[0] for a in accepts)
    crit = ds.Criterion("x", labels, accepts)
    res = score_ranking(top, crit, groups, [-1] * 25, 10)
    ap = []
    for i in range(25):
        rel = [labels[j] in accepts[i] for j in top[i]]
        total = sum(lab in accepts[i] for lab in labels)
        assert res.relevance[i].tolist() == rel
        ap.append(M.average_precision_at_k(rel, 10, total))
    assert res.metrics["mAP@10"] == pytest.approx(np.mean(ap))
    assert res.metrics["macroP@10"] == pytest.approx(M.macro_average(res.per_query["P@10"], groups))


# --- the harness on real images ----------------------------------------------------------------------
def test_a_gallery_image_finds_itself_first_when_not_excluded(tiny_set, tmp_path):
    from lookalike.extractors import create_extractor

    task = ds.custom_task(*tiny_set, label_field="article_type")
    ext = create_extractor("colour-histogram")
    result = evaluate_task(task, ext, k=10, cache=EmbeddingCache(tmp_path / "c"), query_flip=False)
    gallery_paths = list(task.gallery.paths)
    for qi in range(4):  # the four queries that are gallery images
        assert result.top_indices[qi, 0] == gallery_paths.index(task.queries.paths[qi])
        assert result.top_scores[qi, 0] == pytest.approx(1.0, abs=1e-5)
    crit = result.criteria["article_type"]
    assert crit.per_query["P@1"][:4].tolist() == [1.0] * 4
    # 5 relevant products per type; the photo's relevant set is the 5 T-shirts
    assert crit.metrics["ceilingP@10"] == pytest.approx(0.5)
    assert crit.metrics["chanceP@10"] == pytest.approx(5 / 20)


def test_excluded_self_is_never_returned_and_not_counted_as_relevant(tiny_set, tmp_path):
    from lookalike.extractors import create_extractor

    task = ds.custom_task(*tiny_set, label_field="article_type", exclude_self=True)
    assert list(task.exclude[:4]) != [-1] * 4 and task.exclude[4] == -1
    result = evaluate_task(task, create_extractor("colour-histogram"), k=10, cache=EmbeddingCache())
    for qi in range(4):
        assert task.exclude[qi] not in result.top_indices[qi]
    crit = result.criteria["article_type"]
    assert crit.metrics["ceilingP@10"] == pytest.approx((4 * 0.4 + 0.5) / 5)  # 4 others left per type
    assert crit.metrics["chanceP@10"] == pytest.approx((4 * 4 / 19 + 5 / 20) / 5)


def test_lite0_ranks_by_type_far_above_chance(tiny_set):
    from lookalike.extractors import create_extractor

    lite0 = create_extractor("efficientnet-lite0")
    task = ds.custom_task(*tiny_set, label_field="article_type", exclude_self=True)
    crit = evaluate_task(task, lite0, k=5, cache=EmbeddingCache()).criteria["article_type"]
    assert crit.metrics["mP@1"] == 1.0  # T-shirt, watch, shoe and bag products are easy to tell apart
    assert crit.metrics["mP@5"] >= 0.6 > 2 * crit.metrics["chanceP@5"]


def test_cache_reuses_embeddings_and_notices_changed_files(tiny_set, tmp_path):
    from lookalike.extractors import create_extractor

    qcsv, gcsv = tiny_set
    ext = create_extractor("colour-histogram")
    task = ds.custom_task(qcsv, gcsv, label_field="article_type")
    first = evaluate_task(task, ext, cache=EmbeddingCache(tmp_path / "cache"), query_flip=False)
    assert first.computed == {"gallery": 20, "queries": 1}  # 4 of 5 queries are gallery images
    flipped = evaluate_task(task, ext, cache=EmbeddingCache(tmp_path / "cache"))
    assert flipped.computed == {"gallery": 0, "queries": 0, "mirrored": 5}  # mirror images: cached apart
    again = evaluate_task(task, ext, cache=EmbeddingCache(tmp_path / "cache"), query_flip=False)  # a new process
    assert again.computed == {"gallery": 0, "queries": 0}
    assert again.top_indices.tolist() == first.top_indices.tolist()
    assert again.criteria["article_type"].metrics == first.criteria["article_type"].metrics
    # an edited image is embedded again, and only that one
    edited = tmp_path / "edited.jpg"
    Image.open(task.gallery.paths[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited)
    rows = list(csv.DictReader(gcsv.open()))
    rows[0]["image"] = str(edited)
    _write_csv(gcsv, rows)
    changed = evaluate_task(ds.custom_task(qcsv, gcsv, "article_type"), ext, cache=EmbeddingCache(tmp_path / "cache"))
    assert changed.computed["gallery"] == 1
    os.utime(edited, ns=(0, 0))
    touched = evaluate_task(ds.custom_task(qcsv, gcsv, "article_type"), ext, cache=EmbeddingCache(tmp_path / "cache"))
    assert touched.computed["gallery"] == 1


def test_query_pictures_are_ranked_as_a_catalogue_searches_them(tiny_set, tmp_path):
    """By default a gallery item scores the better of its similarities to the query picture and to the
    picture's mirror image (as Catalog.search)."""
    from lookalike.extractors import create_extractor
    from lookalike.imaging import load_image

    lite0 = create_extractor("efficientnet-lite0")
    task = ds.custom_task(*tiny_set, label_field="article_type", exclude_self=True)
    cache = EmbeddingCache(tmp_path / "cache")
    result = evaluate_task(task, lite0, k=5, cache=cache)
    assert result.model_info["query_flip"] is True
    plain, _ = cache.embed(lite0, task.queries)
    mirrored, _ = cache.embed(lite0, task.queries, flip=True)
    imgs = [load_image(p) for p in task.queries.paths]
    np.testing.assert_allclose(mirrored, lite0.embed([ImageOps.mirror(img) for img in imgs]), atol=1e-5)
    gallery, _ = cache.embed(lite0, task.gallery)
    sims = np.maximum(plain @ gallery.T, mirrored @ gallery.T)
    for qi in range(len(imgs)):
        row = sims[qi].copy()
        if task.exclude[qi] >= 0:
            row[task.exclude[qi]] = -np.inf
        np.testing.assert_allclose(result.top_scores[qi], np.sort(row)[::-1][:5], atol=1e-5)
    unflipped = evaluate_task(task, lite0, k=5, cache=cache, query_flip=False)
    assert unflipped.model_info["query_flip"] is False
    assert (result.top_scores >= unflipped.top_scores - 1e-6).all()  # the best of two views


def test_an_unreadable_image_fails_the_evaluation(tiny_set, tmp_path):
    from lookalike.errors import ImageError
    from lookalike.extractors import create_extractor

    qcsv, gcsv = tiny_set
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    rows = list(csv.DictReader(gcsv.open()))
    rows[3]["image"] = str(broken)
    _write_csv(gcsv, rows)
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        evaluate_task(ds.custom_task(qcsv, gcsv, "article_type"), create_extractor("colour-histogram"))


def test_report_writes_json_markdown_and_charts(tiny_set, tmp_path):
    from lookalike.evaluate.report import write_report

    task = ds.custom_task(*tiny_set, label_field="article_type", exclude_self=True)
    results = run_evaluation([task], ["colour-histogram", "colour-histogram@pad"], k=10)
    written = write_report(results, tmp_path / "out", {"command": "test"}, examples=3)
    data = json.loads(written["json"].read_text())
    assert [r["model"] for r in data["results"]] == ["colour-histogram", "colour-histogram@pad"]
    assert data["results"][0]["headline"]["article_type mP@10"] == pytest.approx(
        results[0].criteria["article_type"].metrics["mP@10"], abs=1e-6
    )
    md = written["markdown"].read_text()
    assert "colour-histogram@pad" in md and "compare.png" in md
    pngs = {p.name for p in (tmp_path / "out").glob("*.png")}
    assert pngs == {
        "compare.png",
        "examples-custom-colour-histogram.png",
        "examples-custom-colour-histogram-pad.png",
        "per-label-custom.png",
    }
    for name in pngs:
        with Image.open(tmp_path / "out" / name) as img:
            assert img.format == "PNG" and img.width > 200 and img.height > 150
        assert (tmp_path / "out" / name).stat().st_size < 300_000


def test_the_resize_override_changes_the_preprocessing():
    from lookalike.evaluate.harness import extractor_cache_key, load_model

    label, ext = load_model("colour-histogram@pad")
    assert label == "colour-histogram@pad" and ext.preprocess_cfg.resize_mode == "pad"
    assert extractor_cache_key(ext) != extractor_cache_key(load_model("colour-histogram")[1])


def test_the_cache_key_follows_the_loaded_preprocessing_code(monkeypatch):
    from lookalike.evaluate.harness import extractor_cache_key, load_model
    from lookalike.extractors.base import PreprocessCfg

    _, ext = load_model("colour-histogram")
    before = extractor_cache_key(ext)
    assert extractor_cache_key(ext) == before
    original = PreprocessCfg.resize
    monkeypatch.setattr(
        PreprocessCfg, "resize", lambda self, img: original(self, img.transpose(Image.Transpose.ROTATE_90))
    )
    assert extractor_cache_key(ext) != before


def test_cli_eval_on_a_custom_set(tiny_set, tmp_path, capsys, monkeypatch):
    from lookalike.cli import main

    qcsv, gcsv = tiny_set
    out = tmp_path / "report"
    monkeypatch.setattr(sys, "argv", [
        "lookalike", "eval", "--queries", str(qcsv), "--gallery", str(gcsv), "--label-field", "article_type",
        "--model", "colour-histogram", "--out", str(out), "--no-cache", "--examples", "2", "--quiet",
    ])  # fmt: skip
    main()
    stdout = capsys.readouterr().out
    assert "custom: 5 queries, gallery of 20" in stdout and "colour-histogram" in stdout
    assert {p.name for p in out.iterdir()} >= {"results.json", "report.md", "compare.png"}


def test_cli_eval_refuses_an_unknown_task(capsys, monkeypatch):
    from lookalike.cli import main

    monkeypatch.setattr(sys, "argv", ["lookalike", "eval", "--task", "nope", "--datasets", str(DEMO)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1 and "--task" in capsys.readouterr().err


# --- the dataset loaders ------------------------------------------------------------------------------
@pytest.fixture()
def fake_root(tmp_path: Path) -> Path:
    """A datasets folder shaped like ../shared/datasets, with labels only (no pixels are read)."""
    cat = tmp_path / "datasets" / ds.CATALOG_DATASET
    cat.mkdir(parents=True)
    rows = [
        ("10000", "Tshirts", "Red"), ("10001", "Tshirts", "Red"), ("10005", "Tshirts", "Red"),
        ("10010", "Tshirts", "Blue"), ("10015", "Jeans", "Blue"), ("10020", "Caps", "Black"),
        ("10021", "Heels", "Black"),
    ]  # fmt: skip
    with (cat / "labels.csv").open("w") as fh:
        fh.write("image,id,gender,masterCategory,subCategory,articleType,baseColour\n")
        for pid, t, c in rows:
            fh.write(f"images/{pid}.jpg,{pid},Men,Apparel,Topwear,{t},{c}\n")
    photos = tmp_path / "datasets" / ds.PHOTO_DATASET
    photos.mkdir()
    (photos / "label_to_articletype.json").write_text(
        json.dumps({"T-Shirt": ["Tshirts"], "Pants": ["Jeans", "Trousers"], "Hat": ["Caps", "Hat"], "Body": ["X"]})
    )
    with (photos / "labels.csv").open("w") as fh:
        fh.write("image,sender_id,label,kids,image_path\n")
        for i, label in enumerate(["T-Shirt", "Pants", "Body", "Not sure", "Blazer", "Hat", "Skip"]):
            fh.write(f"p{i},7,{label},False,images/p{i}.jpg\n")
    return tmp_path / "datasets"


def test_catalog_task_uses_the_test_split_and_excludes_the_query(fake_root):
    task = ds.catalog_task(fake_root)
    assert task.queries.ids == ("10000", "10005", "10010", "10015", "10020")
    assert task.exclude == (0, 1, 2, 3, 4)
    assert task.criterion("type").query_accepts[0] == frozenset({"Tshirts"})
    assert task.criterion("type+colour").gallery_labels[2] == "Tshirts / Blue"
    full = ds.catalog_task(fake_root, split="all")
    assert full.name == "catalog-full" and len(full.queries) == 7


def test_photo_task_maps_labels_and_drops_the_unmapped(fake_root):
    task = ds.photo_task(fake_root)
    assert task.query_groups == ("T-Shirt", "Pants", "Hat")
    assert task.info["dropped_labels"] == {"Blazer": 1, "Body": 1, "Not sure": 1, "Skip": 1}
    assert task.criterion("type").query_accepts[1] == frozenset({"Jeans", "Trousers"})
    assert len(task.gallery) == 7 and task.exclude == (-1, -1, -1)
    assert task.queries.paths[0] == fake_root / ds.PHOTO_DATASET / "images/p0.jpg"


def test_datasets_root_comes_from_the_environment(fake_root, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_DATASETS", str(fake_root))
    assert ds.default_datasets_root() == fake_root
    assert len(ds.catalog_task().queries) == 5
    monkeypatch.setenv("LOOKALIKE_DATASETS", str(fake_root / "missing"))
    with pytest.raises(SourceError, match="LOOKALIKE_DATASETS"):
        ds.catalog_task()


def test_subsampling_is_seeded_and_keeps_labels_aligned(fake_root):
    task = ds.catalog_task(fake_root, split="all")
    a = ds.subsample_queries(task, 3, seed=5)
    b = ds.subsample_queries(task, 3, seed=5)
    assert a.queries.ids == b.queries.ids and len(a.queries) == 3 and len(a.gallery) == 7
    for i, pid in enumerate(a.queries.ids):
        j = task.queries.ids.index(pid)
        assert a.exclude[i] == j and a.query_groups[i] == task.query_groups[j]
        assert a.criterion("type").query_accepts[i] == task.criterion("type").query_accepts[j]
    assert ds.subsample_queries(task, 100) is task


def test_custom_task_reports_a_missing_label_column(tiny_set, tmp_path):
    qcsv, _ = tiny_set
    gallery = _write_csv(tmp_path / "g.csv", [{"image": "a.jpg", "colour": "Red"}])
    with pytest.raises(SourceError, match="article_type"):
        ds.custom_task(qcsv, gallery, "article_type")


@pytest.mark.skipif(not (ds.default_datasets_root() / ds.PHOTO_DATASET).is_dir(), reason="no shared datasets")
def test_the_real_tasks_have_the_sizes_of_evaluation_md():
    assert len(ds.catalog_task().queries) == 1912
    photo = ds.photo_task()
    assert len(photo.queries) == 2601 and len(photo.gallery) == 9583
    assert not set(photo.query_groups) & ds.DROPPED_PHOTO_LABELS
