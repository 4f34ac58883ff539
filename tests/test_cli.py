from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import PHOTOS, PRODUCTS_CSV, PRODUCTS_DIR
from .conftest import run_cli as run


@pytest.fixture()
def cli_catalog(tmp_path, capsys):
    path = tmp_path / "cat"
    code, out, err = run(capsys, "ingest", path, "--csv", PRODUCTS_CSV, "--batch-size", "8")
    assert code == 0, err
    assert "16 added" in out
    return path


def test_models_lists_the_extractors(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "efficientnet-lite0" in out and "colour-histogram" in out


def test_ingest_search_json(cli_catalog, capsys):
    code, out, _ = run(capsys, "search", cli_catalog, PRODUCTS_DIR / "images/13466.jpg", "-k", "3", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["hits"][0]["id"] == "13466" and len(result["hits"]) == 3


def test_search_of_a_mirrored_picture_with_and_without_the_mirror_view(cli_catalog, tmp_path, capsys):
    from PIL import Image, ImageOps

    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(PRODUCTS_DIR / "images/13466.jpg").convert("RGB")).save(mirrored)
    code, out, _ = run(capsys, "search", cli_catalog, mirrored, "-k", "1", "--json")
    hit = json.loads(out)["hits"][0]
    assert code == 0 and hit["id"] == "13466" and hit["score"] == pytest.approx(1.0, abs=1e-3)
    code, out, _ = run(capsys, "search", cli_catalog, mirrored, "-k", "1", "--json", "--no-query-flip")
    assert code == 0 and json.loads(out)["hits"][0]["score"] < 0.999  # the picture alone


def test_search_table_with_filters(cli_catalog, capsys):
    code, out, _ = run(capsys, "search", cli_catalog, PHOTOS / "shoes.jpg", "--gender", "Women", "-k", "5")
    assert code == 0 and "Women" in out and " Men " not in out


def test_more_like_this_from_the_cli(cli_catalog, capsys):
    code, out, _ = run(capsys, "search", cli_catalog, "--product", "17831", "--json", "-k", "4")
    hits = json.loads(out)["hits"]
    assert code == 0 and len(hits) == 4 and "17831" not in [h["id"] for h in hits]


def test_batch_search_500_queries_in_order(cli_catalog, tmp_path, capsys):
    images = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
    lines = [str(images[i % len(images)]) for i in range(499)]
    lines.insert(250, str(tmp_path / "missing.jpg"))
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "search", cli_catalog, "--batch", batch, "--json", "-k", "10")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 500 and [r["query"] for r in rows] == lines
    assert "error" in rows[250] and "no such file" in rows[250]["error"]
    for r in rows[:250]:
        assert r["hits"][0]["id"] == r["query"].rsplit("/", 1)[1].removesuffix(".jpg")
        assert len(r["hits"]) == 10


def test_info_and_delete(cli_catalog, capsys):
    code, out, _ = run(capsys, "delete", cli_catalog, "13466", "19265")
    assert code == 0 and "deleted 2" in out
    code, out, _ = run(capsys, "info", cli_catalog, "--json")
    data = json.loads(out)
    assert code == 0 and data["products"] == 14 and data["consistent"] is True


def test_ingest_reports_skipped_images(tmp_path, capsys):
    (tmp_path / "p.csv").write_text(f"id,image\nok,{PRODUCTS_DIR / 'images/13466.jpg'}\nbad,{tmp_path / 'nope.jpg'}\n")
    code, out, err = run(capsys, "ingest", tmp_path / "cat", "--csv", tmp_path / "p.csv")
    assert code == 0 and "1 added" in out and "1 failed" in out
    assert "skipped bad" in err and "no such file" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{tmp}/nothing", "x.jpg"], "no lookalike catalogue"),
        (["search", "{cat}", "{tmp}/none.jpg"], "no such file"),
        (["search", "{cat}"], "exactly one of"),
        (["search", "{cat}", "--product", "nope"], "no product with id"),
        (["ingest", "{tmp}/new", "--csv", "{tmp}/missing.csv"], "CSV file not found"),
        (["ingest", "{cat}", "--csv", str(PRODUCTS_CSV), "--model", "colour-histogram"], "was built with"),
        (["ingest", "{tmp}/new2", "--images", str(PHOTOS), "--model", "nope-model"], "no extractor named"),
        (["search", "{cat}", "http://169.254.169.254/latest/meta-data"], "not allowed"),
        (["search", "{cat}", "x.jpg", "-k", "0"], "k must be"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(cli_catalog, tmp_path, capsys, args, message):
    argv = [a.format(tmp=tmp_path, cat=cli_catalog) for a in args]
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_console_script_runs_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lookalike.cli", "info", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no lookalike catalogue") and "Traceback" not in proc.stderr
