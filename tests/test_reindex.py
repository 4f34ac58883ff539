"""Issue 26: a new model without downtime. ``lookalike reindex`` builds a generation beside the serving one, a gate
refuses a worse model, writes made meanwhile are caught up, the switch loses no write, rollback and gc, resuming an
interrupted build, and the faults (a full disk during the build, a kill in the middle of the switch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lookalike import Catalog
from lookalike.backends.embedded import EmbeddedBackend
from lookalike.catalog import reindex as rx
from lookalike.catalog.generations import generations, read_pointer
from lookalike.catalog.repair import inspect
from lookalike.errors import CatalogBusyError, CatalogError, CatalogSwitchedError, SourceError, StorageFullError
from lookalike.evaluate.gate import make_gate, read_gate
from lookalike.product import Product
from tests.conftest import PHOTOS, PRODUCTS_DIR, run_cli
from tests.reindex_helpers import HIST, LITE0, copy_of, ingested, write_gate_csv


@pytest.fixture(scope="module")
def hist_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 16 test products under the colour-histogram model (built once; tests use copies)."""
    path = tmp_path_factory.mktemp("reindex") / "hist"
    ingested(path)
    return path


@pytest.fixture()
def hist_cat(hist_source: Path, tmp_path: Path) -> Path:
    return copy_of(hist_source, tmp_path / "cat")


@pytest.fixture()
def lite0_cat(built_catalog: Catalog, tmp_path: Path) -> Path:
    built_catalog.checkpoint()
    return copy_of(built_catalog.path, tmp_path / "lite0")


@pytest.fixture(scope="module")
def gate_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gate_csv(tmp_path_factory.mktemp("gate") / "gate.csv")


def served_model(path: Path) -> tuple[int, str, int]:
    """(generation serving, its model, products) as a fresh open sees them."""
    with Catalog.open(path) as cat:
        return int(cat.manifest.get("generation", 0)), cat.extractor_name, len(cat)


def assert_sound(path: Path) -> None:
    with Catalog.open(path) as cat:
        found = inspect(cat)
        assert found == [], found


# --- build, gate, switch ----------------------------------------------------------------------------------------
def test_reindex_builds_a_generation_from_the_stored_pictures_and_switches(hist_cat: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = rx.reindex(hist_cat, LITE0, progress=lambda done, total: seen.append((done, total)))
    assert result.switched and result.gate is None and result.build.embedded == 16 and not result.build.failed
    assert seen[-1] == (16, 16)
    assert read_pointer(hist_cat).serving == result.generation == 1 and read_pointer(hist_cat).previous == 0
    assert served_model(hist_cat) == (1, LITE0, 16)
    with Catalog.open(hist_cat) as cat:
        assert cat.images_dir == hist_cat / "images"  # the pictures are shared, not copied
        assert cat.search(PRODUCTS_DIR / "images" / "10773.jpg", k=1)[0].id == "10773"
        assert cat.get("13466").title.startswith("United Colors")
    assert not (hist_cat / "generations" / "1" / "images").exists()
    assert_sound(hist_cat)


def test_the_gate_refuses_a_worse_model_and_the_old_one_keeps_serving(
    lite0_cat: Path, gate_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "reindex", lite0_cat, "--model", HIST, "--gate", gate_csv, "-q", "--nice", "0")
    assert code == 1 and "not switched" in out and "worse" in out, out
    assert served_model(lite0_cat) == (0, LITE0, 16)
    assert read_pointer(lite0_cat).serving == 0 and 1 in generations(lite0_cat)  # kept for inspection


def test_the_gate_passes_a_better_model(hist_cat: Path, gate_csv: Path) -> None:
    result = rx.reindex(hist_cat, LITE0, gate=make_gate(gate_csv))
    assert result.switched and result.gate is not None and "not worse" in result.gate, result.gate
    assert served_model(hist_cat)[1] == LITE0


def test_a_gate_file_without_labels_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "gate.csv"
    bad.write_text("image,products,article_types\nx.jpg,,\n")
    with pytest.raises(SourceError, match="needs an image and products or article_types"):
        read_gate(bad)


def test_without_a_gate_the_cli_says_the_switch_is_untested(hist_cat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "reindex", hist_cat, "--model", LITE0, "-q", "--json", "--nice", "0")
    data = json.loads(out)
    assert code == 0 and data["switched"] and data["tested"] is False


# --- writes while it builds; the switch; rollback ----------------------------------------------------------------
def _write_during(path: Path) -> Callable[[int, int], None]:
    """A progress callback that, once, writes to the serving generation: a new product, a deleted one and a metadata
    update (what an ingest or the admin API does while the reindex builds)."""
    done = []

    def write(_done: int, _total: int) -> None:
        if done:
            return
        done.append(True)
        with Catalog.open(path) as cat:
            cat.upsert(Product(id="new-1", title="New bag", article_type="Handbags"), PHOTOS / "shoes.jpg")
            cat.delete(["19675"])
            cat.upsert(Product(**{**cat.get("18990").to_dict(), "title": "Renamed tee"}))

    return write


def test_writes_to_the_old_generation_during_the_build_are_not_lost(hist_cat: Path) -> None:
    result = rx.reindex(hist_cat, LITE0, progress=_write_during(hist_cat), batch_size=4)
    assert result.switched
    with Catalog.open(hist_cat) as cat:
        assert cat.extractor_name == LITE0 and len(cat) == 16
        assert cat.get("new-1").title == "New bag" and cat.get("18990").title == "Renamed tee"
        assert "19675" not in set(cat.store.iter_ids())
        assert cat.search(PHOTOS / "shoes.jpg", k=1, colour_rank=False)[0].id == "new-1"
    assert_sound(hist_cat)


def test_a_write_reaching_the_old_generation_after_the_switch_fails_and_writes_nothing(hist_cat: Path) -> None:
    with Catalog.open(hist_cat) as old:  # a server or script that opened the catalogue before the switch
        assert rx.reindex(hist_cat, LITE0).switched
        with pytest.raises(CatalogSwitchedError, match="switched from generation 0 to generation 1"):
            old.upsert(Product(id="late", title="Too late"), PHOTOS / "tshirt.jpg")
        with pytest.raises(CatalogSwitchedError):
            old.delete(["13466"])
        assert old.store.get("late") is None and old.store.get("13466") is not None
    assert served_model(hist_cat) == (1, LITE0, 16)


def test_rollback_returns_to_the_previous_model_with_the_writes_made_since(hist_cat: Path) -> None:
    assert rx.reindex(hist_cat, LITE0).switched
    with Catalog.open(hist_cat) as cat:  # written under the new model
        cat.upsert(Product(id="after", title="Added after the switch"), PHOTOS / "tshirt.jpg")
        cat.delete(["12055"])
    report = rx.rollback(hist_cat)
    assert (report.source, report.target) == (1, 0) and report.embedded == 1 and report.deleted == 1
    assert served_model(hist_cat) == (0, HIST, 16)
    with Catalog.open(hist_cat) as cat:
        assert cat.get("after").title == "Added after the switch" and cat.store.get("12055") is None
    assert read_pointer(hist_cat).previous == 1
    assert rx.rollback(hist_cat).target == 1  # a rollback of the rollback: forward again, nothing to embed
    assert served_model(hist_cat) == (1, LITE0, 16)
    assert_sound(hist_cat)


def test_reindex_to_the_previous_model_reuses_its_generation(hist_cat: Path) -> None:
    assert rx.reindex(hist_cat, LITE0).switched
    again = rx.reindex(hist_cat, HIST)
    assert again.switched and again.generation == 0 and again.build.embedded == 0


def test_gc_removes_the_generations_not_in_use(hist_cat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx.reindex(hist_cat, LITE0)
    (hist_cat / "generations" / "7").mkdir()  # a build killed before it wrote its manifest
    assert generations(hist_cat) == [0, 1]
    assert rx.gc(hist_cat) == [7]  # generation 0 is the previous one: kept for a rollback
    assert not (hist_cat / "generations" / "7").exists()
    code, out, _ = run_cli(capsys, "gc", hist_cat, "--no-keep-previous")
    assert code == 0 and "removed generation(s) 0" in out
    assert not (hist_cat / "products.db").exists() and (hist_cat / "manifest.json").is_file()
    assert read_pointer(hist_cat).removed == (0, 7) and read_pointer(hist_cat).previous is None
    assert served_model(hist_cat) == (1, LITE0, 16)
    with pytest.raises(CatalogError, match="no previous generation"):
        rx.rollback(hist_cat)
    assert_sound(hist_cat)


def test_one_operation_at_a_time(hist_cat: Path) -> None:
    from lookalike.catalog.generations import operation_lock

    with operation_lock(hist_cat, "wait"), pytest.raises(CatalogBusyError, match="another reindex"):
        rx.reindex(hist_cat, LITE0)


# --- resuming; faults ---------------------------------------------------------------------------------------------
def test_an_interrupted_build_resumes_without_embedding_again(hist_cat: Path) -> None:
    def stop(done: int, _total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rx.reindex(hist_cat, LITE0, progress=stop, batch_size=4)
    assert read_pointer(hist_cat).serving == 0 and served_model(hist_cat)[1] == HIST
    result = rx.reindex(hist_cat, LITE0, batch_size=4)
    assert result.switched and result.generation == 1 and 0 < result.build.embedded <= 8
    assert result.build.unchanged + result.build.embedded == 16
    assert_sound(hist_cat)


def test_a_full_disk_during_the_build_keeps_the_old_generation_serving(
    hist_cat: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = EmbeddedBackend.upsert
    calls = []

    def full(self: EmbeddedBackend, items, errors=()):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 1:
            raise StorageFullError("disk full while writing to the product store (No space left on device)")
        return real(self, items, errors)

    monkeypatch.setattr(EmbeddedBackend, "upsert", full)
    code, _, err = run_cli(capsys, "reindex", hist_cat, "--model", LITE0, "--batch-size", "4", "-q", "--nice", "0")
    assert code == 74 and "disk full" in err
    monkeypatch.setattr(EmbeddedBackend, "upsert", real)
    assert read_pointer(hist_cat).serving == 0 and served_model(hist_cat) == (0, HIST, 16)
    code, out, _ = run_cli(capsys, "check", hist_cat)
    assert code == 0 and "ok (16 products)" in out
    result = rx.reindex(hist_cat, LITE0, batch_size=4)  # space again: it resumes
    assert result.switched and result.build.embedded == 12


KILL_AT = """
import os, signal, sys
from lookalike.catalog import reindex as rx
when = sys.argv[2]
real = rx.write_pointer
def write_pointer(root, pointer):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(root, pointer)
    os.kill(os.getpid(), signal.SIGKILL)  # the pointer is written; the old store's lock not yet released
rx.write_pointer = write_pointer
rx.reindex(sys.argv[1], "efficientnet-lite0")
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_in_the_middle_of_the_switch_leaves_one_generation_serving_whole(hist_cat: Path, when: str) -> None:
    proc = subprocess.run([sys.executable, "-c", KILL_AT, str(hist_cat), when], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    expected = (0, HIST, 16) if when == "before" else (1, LITE0, 16)
    assert served_model(hist_cat) == expected
    assert_sound(hist_cat)
    with Catalog.open(hist_cat) as cat:  # and it takes writes
        cat.upsert(Product(id="after-kill", title="Written after"), PHOTOS / "tshirt.jpg")
    result = rx.reindex(hist_cat, LITE0) if when == "before" else None
    assert result is None or (result.switched and result.build.embedded == 1)  # only the new product


def test_reindex_where_there_is_no_catalogue_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no lookalike catalogue"):
        rx.reindex(tmp_path / "nothing-here", LITE0)
    assert not os.path.exists(tmp_path / "nothing-here")


def test_reindex_on_milvus_needs_a_uri(capsys: pytest.CaptureFixture[str]) -> None:
    """Milvus catalogues are reindexed too (tests/test_reindex_milvus.py); the collection is at --uri."""
    code, _, err = run_cli(capsys, "reindex", "shop", "--model", LITE0, "--backend", "milvus")
    assert code == 1 and "needs a URI" in err
