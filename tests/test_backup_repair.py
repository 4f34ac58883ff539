"""Issue 26: ``lookalike check`` of each kind of damage and ``check --repair`` of it; ``lookalike backup`` while the
catalogue ingests, a copy that opens and searches elsewhere, and a full disk during a backup."""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from lookalike import Catalog
from lookalike.catalog import backup as backup_module
from lookalike.catalog.repair import inspect, repair
from lookalike.sources import IngestRecord
from tests.conftest import PRODUCTS_DIR, run_cli
from tests.reindex_helpers import copy_of, ingested


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("repair") / "hist"
    ingested(path)
    return path


@pytest.fixture()
def cat_dir(source: Path, tmp_path: Path) -> Path:
    return copy_of(source, tmp_path / "cat")


def sql(path: Path, statement: str, *args: object) -> None:
    conn = sqlite3.connect(path / "products.db", isolation_level=None)
    try:
        conn.execute(statement, args)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def kinds(path: Path) -> set[str]:
    with Catalog.open(path) as cat:
        return {f.kind for f in inspect(cat)}


def check(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "check", path, *args)
    return code, out + err


# --- each kind of damage: found, then repaired -------------------------------------------------------------------
def test_a_product_without_its_vector_is_embedded_again(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql(cat_dir, "DELETE FROM pictures WHERE product = (SELECT rowid FROM products WHERE id = '10773')")
    code, out = check(capsys, cat_dir)
    assert code == 1 and "'10773': some of its pictures have no vector" in out
    code, out = check(capsys, cat_dir, "--repair")
    assert code == 0 and "1 products embedded again" in out and "ok (16 products)" in out, out
    with Catalog.open(cat_dir) as cat:
        assert cat.search(PRODUCTS_DIR / "images" / "10773.jpg", k=1)[0].id == "10773"


def test_vectors_without_a_product_are_deleted(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql(cat_dir, "DELETE FROM products WHERE id = '10773'")
    assert "orphans" in kinds(cat_dir)
    code, out = check(capsys, cat_dir, "--repair")
    assert code == 0 and "1 vectors without a product deleted" in out and "ok (15 products)" in out, out


def test_a_vector_that_is_not_a_unit_vector_is_embedded_again(cat_dir: Path) -> None:
    with Catalog.open(cat_dir) as cat:
        dim = cat.dim
    sql(cat_dir, "UPDATE pictures SET vec = ? WHERE rowid = (SELECT MIN(rowid) FROM pictures)", bytes(4 * dim))
    sql(cat_dir, "UPDATE pictures SET vec = ? WHERE rowid = (SELECT MAX(rowid) FROM pictures)", b"\0" * 12)
    assert "vectors" in kinds(cat_dir)
    report = repair(cat_dir)
    assert any("2 products embedded again" in line for line in report.fixed) and not report.left
    assert kinds(cat_dir) == set()


def test_an_index_that_differs_from_the_store_is_rebuilt(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.index import FaissIndex

    with Catalog.open(cat_dir) as cat:
        cat.checkpoint()
        seq, dim = cat.backend.seq(), cat.dim  # type: ignore[attr-defined]
    lying = FaissIndex(dim)  # an index checkpoint at the store's state that holds 3 vectors only
    lying.add(np.arange(3, dtype=np.int64) * 64 + 64, np.eye(3, dim, dtype=np.float32))
    lying.save(cat_dir / f"index.{seq}.faiss")
    code, out = check(capsys, cat_dir)
    assert code == 1 and "index and store differ" in out
    code, out = check(capsys, cat_dir, "--repair")
    assert code == 0 and "index rebuilt" in out, out


def test_a_missing_predicted_colour_is_predicted_again(cat_dir: Path) -> None:
    sql(cat_dir, "UPDATE products SET colour = NULL, extra = '{}' WHERE id = '13466'")
    assert kinds(cat_dir) == {"colour"}
    repair(cat_dir)
    with Catalog.open(cat_dir) as cat:
        assert (cat.get("13466").extra or {}).get("predicted_colour") == "blue"
    assert kinds(cat_dir) == set()


def test_a_missing_picture_is_listed_and_kept_or_dropped(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Catalog.open(cat_dir) as cat:
        cat.image_path("21483").unlink()
    code, out = check(capsys, cat_dir, "--repair")
    assert code == 1 and "'21483'" in out and "missing" in out
    assert kinds(cat_dir) == {"picture"}
    code, out = check(capsys, cat_dir, "--repair", "--drop-missing")
    assert code == 0 and "dropped (picture missing or damaged): 21483" in out and "ok (15 products)" in out


def test_a_damaged_picture_file_is_found_by_its_hash(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Catalog.open(cat_dir) as cat:
        picture = cat.image_path("19265")
    data = bytearray(picture.read_bytes())
    data[-10] ^= 0xFF
    picture.write_bytes(bytes(data))
    code, out = check(capsys, cat_dir)
    assert code == 1 and "'19265'" in out and "damaged (its SHA-256" in out
    report = repair(cat_dir, drop_missing=True)
    assert report.dropped == ["19265"] and kinds(cat_dir) == set()


def test_a_damaged_store_page_is_salvaged(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_faults import zero_a_middle_page

    with Catalog.open(cat_dir) as cat:
        cat.checkpoint()
    sql(cat_dir, "PRAGMA journal_mode=DELETE")
    zero_a_middle_page(cat_dir / "products.db")
    code, out = check(capsys, cat_dir)
    assert code == 1 and "product store" in out
    code, out = check(capsys, cat_dir, "--repair")
    assert "repaired: product store" in out, out
    assert code == 0 and "ok (" in out, out  # what could be read is a sound catalogue again
    assert list(cat_dir.glob("products.db.damaged-*")) or "REINDEX" in out


def test_a_model_whose_weights_are_not_the_recorded_ones_is_reported(cat_dir: Path) -> None:
    manifest = json.loads((cat_dir / "manifest.json").read_text())
    manifest["extractor"]["sha256"] = "0" * 64
    manifest["extractor"]["name"] = "not-installed-model"
    (cat_dir / "manifest.json").write_text(json.dumps(manifest))
    assert "model" in kinds(cat_dir)
    assert [f.kind for f in repair(cat_dir).left] == ["model"]


# --- backup ---------------------------------------------------------------------------------------------------------
def test_a_backup_opens_and_searches_somewhere_else(cat_dir: Path, tmp_path: Path) -> None:
    report = backup_module.backup(cat_dir, tmp_path / "bak")
    assert report.products == 16 and report.pictures == 16 and not report.problems
    moved = tmp_path / "elsewhere" / "restored"
    moved.parent.mkdir()
    shutil.move(tmp_path / "bak", moved)
    shutil.rmtree(cat_dir)  # the original is gone: the copy stands alone
    with Catalog.open(moved) as cat:
        assert cat.search(PRODUCTS_DIR / "images" / "20479.jpg", k=1)[0].id == "20479"
        assert inspect(cat) == []
        assert list(moved.glob("index.*.faiss"))


def test_a_backup_while_an_ingest_runs_is_one_consistent_state(cat_dir: Path, tmp_path: Path) -> None:
    pictures = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
    records = [IngestRecord(read_one(i), str(pictures[i % len(pictures)])) for i in range(48)]
    started, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            with Catalog.open(cat_dir) as cat:
                for i in range(0, len(records), 4):
                    cat.ingest(records[i : i + 4], batch_size=4)
                    cat.delete([records[i].product.id])  # deletes too: pictures may go
                    started.set()
                    if stop.is_set():
                        break
        except BaseException as exc:
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    started.wait(60)
    copies = [backup_module.backup(cat_dir, tmp_path / f"bak{i}") for i in range(3)]
    stop.set()
    thread.join(120)
    assert not errors
    for report in copies:
        assert not report.problems and 16 <= report.products <= 16 + 36
        with Catalog.open(report.dest) as cat:
            assert inspect(cat) == [] and len(cat) == report.products


def read_one(i: int):  # type: ignore[no-untyped-def]
    from lookalike.product import Product

    return Product(id=f"during-{i}", title=f"Added during the backup {i}", article_type="Tshirts", colour="Blue")


def test_a_full_disk_during_a_backup_leaves_no_copy_and_the_catalogue_sound(
    cat_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backup_module.shutil, "copyfile", full)
    code, _, err = run_cli(capsys, "backup", cat_dir, tmp_path / "bak")
    assert code == 74 and "disk full" in err
    assert not (tmp_path / "bak").exists() and not list(tmp_path.glob(".bak.partial-*"))
    assert not list((cat_dir / "images").glob(".backup-*"))
    monkeypatch.undo()
    code, out = check(capsys, cat_dir)
    assert code == 0 and "ok (16 products)" in out


def test_backup_refuses_a_folder_that_is_not_empty(cat_dir: Path, tmp_path: Path) -> None:
    from lookalike.errors import CatalogExistsError

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(CatalogExistsError):
        backup_module.backup(cat_dir, tmp_path / "full")
