from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

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


# --- Ctrl-C ---------------------------------------------------------------------------------------
def _committed(catalog) -> int:
    """Products the catalogue's SQLite store holds now (read beside a running ingest; WAL readers never block)."""
    db = catalog / "products.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM products").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        conn.close()


def test_ctrl_c_during_ingest_exits_130_says_what_was_committed_and_a_rerun_finishes(tmp_path):
    from lookalike import Catalog

    images = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
    total = 264  # over 256: the worker-process pipeline, as for a real catalogue
    csv = tmp_path / "products.csv"
    csv.write_text("id,image\n" + "".join(f"p{i},{images[i % len(images)]}\n" for i in range(total)))
    catalog = tmp_path / "cat"
    command = [sys.executable, "-m", "lookalike.cli", "ingest", catalog, "--csv", csv, "--batch-size", "8"]
    env = {**os.environ, "LOOKALIKE_THREADS": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while _committed(catalog) == 0:  # interrupt only once a batch is committed: no race with the start
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no batch committed in 30 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the ingest and its decode workers
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    found = re.search(rf"interrupted: (\d+) of {total} products committed; run the same command again to resume", err)
    assert found, err
    committed = int(found.group(1))
    assert 0 < committed < total and committed == _committed(catalog)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{total - committed} added, 0 updated, {committed} unchanged" in again.stdout
    with Catalog.open(catalog) as cat:
        assert len(cat) == total and cat.verify()["ok"]


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_eval_exits_130_and_says_where_the_cache_is(tmp_path, capsys, monkeypatch):
    import lookalike.evaluate.harness

    monkeypatch.setattr(lookalike.evaluate.harness, "run_evaluation", _interrupt)
    queries = tmp_path / "queries.csv"
    queries.write_text(f"image,label\n{PRODUCTS_DIR / 'images/13466.jpg'},Tshirts\n")
    cache, report = tmp_path / "cache", tmp_path / "report"
    code, out, err = run(
        capsys, "eval", "--queries", queries, "--gallery", PRODUCTS_CSV, "--model", "colour-histogram",
        "--cache-dir", cache, "--out", report, "--quiet",
    )  # fmt: skip
    assert code == 130
    assert err.strip() == (
        f"interrupted: no report written to {report}; image sets embedded so far are cached in {cache}; "
        "a re-run reuses them"
    )
    assert not report.exists() and out == ""


def test_ctrl_c_during_train_exits_130_and_says_where_the_cache_is(tmp_path, capsys, monkeypatch):
    train = pytest.importorskip("lookalike.training.train")  # needs torch
    monkeypatch.setattr(train, "run_training", _interrupt)
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--datasets", tmp_path, "--out", run_dir, "--no-evaluate")
    assert code == 130
    assert err.strip() == (
        f"interrupted: no model exported to {run_dir}; the backbone maps computed so far stay in {run_dir / 'cache'}; "
        "run the same command again to reuse them"
    )
    assert out == ""


def test_ctrl_c_in_any_other_command_exits_130(cli_catalog, capsys, monkeypatch):
    import lookalike.cli.catalog_cmds

    monkeypatch.setattr(lookalike.cli.catalog_cmds, "open_catalog", _interrupt)
    code, _, err = run(capsys, "info", cli_catalog)
    assert code == 130 and err.strip() == "interrupted"


def _fake_training(cfg, log, progress=None):  # type: ignore[no-untyped-def]
    """Stands in for ``run_training``: the library's plain lines when no ``progress`` is given; the
    exporter's warning it raises goes to ``cfg.out / "warnings.txt"`` if it is not filtered out."""
    import warnings

    log("[data] 4 products")
    for step in (1, 2):
        if progress is not None:
            progress("train", step, 2, f"epoch {step} loss 0.5")
        else:
            log(f"[train] epoch {step} step {step}/2 loss 0.5")
    with warnings.catch_warnings(record=True) as shown:  # the filters in force, recorded instead of printed
        warnings.warn(
            "Constant folding - Only steps=1 can be constant folded for opset >= 10", UserWarning, stacklevel=1
        )
        warnings.warn("a warning that matters", UserWarning, stacklevel=1)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "warnings.txt").write_text("\n".join(str(w.message) for w in shown))
    onnx = cfg.out / "lookalike-fashion.onnx"
    onnx.write_bytes(b"onnx")
    return {"export": {"path": str(onnx)}}


@pytest.mark.parametrize("bar", [True, False])
def test_train_draws_a_bar_on_a_terminal_and_plain_lines_otherwise(tmp_path, capsys, monkeypatch, bar):
    train = pytest.importorskip("lookalike.training.train")  # needs torch
    monkeypatch.setattr(train, "run_training", _fake_training)
    monkeypatch.setenv("LOOKALIKE_PROGRESS", "1" if bar else "0")
    code, out, err = run(capsys, "train", "--datasets", tmp_path, "--out", tmp_path / "run", "--no-evaluate")
    assert code == 0 and "trained model" in out
    assert "[data] 4 products" in err
    assert ("2/2" in err and "epoch 2 loss 0.5" in err) == bar  # the bar, drawn once at the end off a terminal
    assert ("[train] epoch 1 step 1/2" in err) == (not bar)
    assert (tmp_path / "run" / "warnings.txt").read_text() == "a warning that matters"  # the exporter's noise dropped


def test_search_colour_preference_switch_and_exact_filter_are_apart(cli_catalog, capsys):
    photo = PHOTOS / "tshirt.jpg"
    code, out, _ = run(capsys, "search", cli_catalog, photo, "-k", "24", "--json")
    seen = json.loads(out)
    assert code == 0 and seen["colour"]["source"] == "detected" and seen["colour"]["detected"]
    code, out, _ = run(capsys, "search", cli_catalog, photo, "-k", "24", "--json", "--colour", "Navy Blue")
    asked = json.loads(out)
    assert code == 0 and asked["colour"] == {
        "ranked_by": "blue",
        "source": "preference",
        "detected": seen["colour"]["detected"],
    }
    assert len(asked["hits"]) == len(seen["hits"]) == 16  # every product still comes: not a filter
    code, out, _ = run(capsys, "search", cli_catalog, photo, "-k", "5", "--json", "--no-colour-rank")
    assert code == 0 and json.loads(out)["colour"]["ranked_by"] is None
    code, out, _ = run(capsys, "search", cli_catalog, photo, "-k", "24", "--colour-is", "Blue")
    assert code == 0 and " Blue " in out and " Black " not in out  # the exact filter
    code, _, err = run(capsys, "search", cli_catalog, photo, "--colour", "sparkly")
    assert code != 0 and "unknown colour" in err


def test_products_sharing_a_picture_in_search_and_info(tmp_path, capsys):
    from .conftest import add_twin

    csv_path = tmp_path / "src" / "products.csv"
    shutil.copytree(PRODUCTS_DIR, csv_path.parent)
    add_twin(csv_path)
    path = tmp_path / "cat"
    assert run(capsys, "ingest", path, "--csv", csv_path)[0] == 0
    picture = PRODUCTS_DIR / "images/20842.jpg"
    code, out, _ = run(capsys, "search", path, picture, "-k", "3", "--json")
    hits = json.loads(out)["hits"]
    assert code == 0 and len(hits) == 3
    assert {hits[0]["id"], *hits[0]["duplicates"]} == {"20842", "twin-20842"}
    code, out, _ = run(capsys, "search", path, picture, "-k", "3", "--json", "--no-collapse")
    hits = json.loads(out)["hits"]
    assert {h["id"] for h in hits[:2]} == {"20842", "twin-20842"} and not any("duplicates" in h for h in hits)
    code, out, _ = run(capsys, "search", path, picture, "-k", "3")
    assert code == 0 and "1 more with this picture" in out
    code, out, _ = run(capsys, "info", path, "--duplicates", "--json")
    info = json.loads(out)
    assert code == 0 and info["duplicates"] == [["20842", "twin-20842"]] and info["duplicate_groups"] == 1
    code, out, _ = run(capsys, "info", path, "--duplicates")
    assert code == 0 and "same picture: 20842 twin-20842" in out
    code, out, _ = run(capsys, "info", path, "--json")
    assert "duplicates" not in json.loads(out)
