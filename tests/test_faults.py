"""Issue 23, faults that must not hurt: a full disk, a damaged store page, a missing picture, a catalogue that
cannot be written, a damaged store at ``serve``, two ingests at once, odd folder entries (docs/reliability.md,
"Faults: what lookalike promises"). Ids with '/' and the like are in tests/test_product_paths.py.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike import Catalog, Product, read_csv
from lookalike.catalog import pictures as pictures_module
from lookalike.catalog.check import check_catalog
from lookalike.catalog.ingest_lock import ingest_lock
from lookalike.errors import StorageFullError
from lookalike.service import ServiceSettings, create_app
from lookalike.store import sqlite as store_sqlite
from lookalike.store.health import connect

from .conftest import PRODUCTS_CSV, run_cli

TOKEN = "faults-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PICTURE = PRODUCTS_CSV.parent / "images" / "10438.jpg"


def settle(path: Path) -> None:
    """Everything of the store in ``products.db`` itself (the write-ahead log checkpointed and emptied)."""
    conn = sqlite3.connect(path / "products.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-product catalogue (colour-histogram), closed and settled; tests work on copies."""
    path = tmp_path_factory.mktemp("faults") / "cat"
    cat = Catalog.create(path, extractor="colour-histogram")
    report = cat.ingest(read_csv(PRODUCTS_CSV), batch_size=8)
    assert report.added == 16
    cat.checkpoint()
    cat.close()
    settle(path)
    return path


@pytest.fixture()
def cat_dir(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "cat"
    shutil.copytree(built, dst, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return dst


def pictures_in(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in (path / "images").rglob("*") if p.is_file() and p.suffix == ".jpg"}


@pytest.fixture()
def client(cat_dir: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[])
    with TestClient(create_app(cat_dir, settings)) as c:
        yield c


def fresh_picture(seed: int = 1) -> bytes:
    """A JPEG the catalogue does not hold yet (so storing it writes a file)."""
    buf = io.BytesIO()
    Image.new("RGB", (96, 128), (200, 30 + seed, 60)).save(buf, format="JPEG")
    return buf.getvalue()


def upload(client: TestClient, pid: str, **fields: str) -> Any:
    data = {"id": pid, **fields}
    return client.post("/api/products", data=data, files={"image": ("p.jpg", fresh_picture(), "image/jpeg")},
                       headers=ADMIN)  # fmt: skip


def snapshot(client: TestClient) -> dict[str, Any]:
    page = client.get("/api/products", params={"limit": 200}).json()
    similar = client.get("/api/products/13466/similar", params={"k": 5}).json()
    return {"total": page["total"], "items": page["items"], "similar": [h["id"] for h in similar["hits"]]}


def assert_sound(path: Path, products: int) -> None:
    with Catalog.open(path) as cat:
        assert len(cat) == products
        assert cat.verify()["ok"], cat.verify()
        assert check_catalog(cat) == []


# --- a full disk during REST writes: 507, nothing half-written ---------------------------------------------------
def full_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store connection opened from now on may not grow the database (SQLite: "database or disk is full")."""

    def full(path: Path) -> tuple[sqlite3.Connection, str | None]:
        conn, why = connect(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn, why

    monkeypatch.setattr(store_sqlite, "connect", full)


def test_rest_writes_on_a_full_database_answer_507_and_change_nothing(
    cat_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = pictures_in(cat_dir)
    full_database(monkeypatch)
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[])
    with TestClient(create_app(cat_dir, settings)) as client:
        seen = snapshot(client)
        long = "x" * 1000
        r = upload(client, "new-product", title=long, brand="b" * 200, category="c" * 200, article_type="t" * 200)
        assert r.status_code == 507, (r.status_code, r.text)  # was 500: "cannot rollback - no transaction is active"
        assert "disk full" in r.json()["detail"]
        assert snapshot(client) == seen
        assert client.get("/api/products/new-product").status_code == 404
    assert pictures_in(cat_dir) == before  # no picture left behind for the product that was not written
    monkeypatch.undo()
    assert_sound(cat_dir, 16)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_rest_picture_write_on_a_full_disk_answers_507(
    cat_dir: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def no_room(path: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(path))

    seen = snapshot(client)
    before = pictures_in(cat_dir)
    monkeypatch.setattr(pictures_module, "atomic_write", no_room)
    r = upload(client, "new-product", title="New")
    assert r.status_code == 507, r.text
    assert "disk full" in r.json()["detail"] and "try again" in r.json()["detail"]
    assert snapshot(client) == seen and pictures_in(cat_dir) == before


def test_store_write_on_a_full_disk_is_storage_full_error(cat_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full_database(monkeypatch)
    with Catalog.open(cat_dir) as cat:
        with pytest.raises(StorageFullError, match="disk full") as info:
            cat.upsert(Product(id="new", title="x" * 5000), PICTURE.read_bytes())  # needs pages the store cannot add
        assert info.value.status_code == 507 and info.value.exit_code == 74
        assert len(cat) == 16 and cat.verify()["ok"]


# --- a full disk during an ingest: stop, exit 74, resume -------------------------------------------------------
def test_ingest_stops_on_a_full_disk_exits_74_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cat"
    real = pictures_module.atomic_write
    lock = threading.Lock()
    written = {"n": 0}

    def filling(target: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        with lock:
            written["n"] += 1
            if written["n"] > 6:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        real(target, data, *args, **kwargs)

    monkeypatch.setenv("LOOKALIKE_LINK_PICTURES", "0")  # every picture is written (no hard link)
    monkeypatch.setattr(pictures_module, "atomic_write", filling)
    args = ("ingest", path, "--csv", PRODUCTS_CSV, "--model", "colour-histogram", "--batch-size", "4", "-q")
    code, out, err = run_cli(capsys, *args)
    assert code == 74, (code, out, err)
    assert "disk full" in err and "free space" in err and "skipped" not in err
    with Catalog.open(path) as cat:
        committed = len(cat)
        assert 0 < committed < 16
        assert cat.store.errors() == []  # not recorded as bad pictures
        assert cat.verify()["ok"]
    monkeypatch.setattr(pictures_module, "atomic_write", real)
    code, out, err = run_cli(capsys, *args)
    assert code == 0, (out, err)
    assert f"{16 - committed} added" in out and f"{committed} unchanged" in out and "0 failed" in out
    assert_sound(path, 16)


# --- a damaged store page -------------------------------------------------------------------------------------
def zero_a_middle_page(db: Path) -> int:
    """Write zeros over the b-tree page nearest the middle of ``db``; its number."""
    conn = sqlite3.connect(db)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE pagetype IN ('leaf', 'internal')")]
    finally:
        conn.close()
    page = min((p for p in pages if p > 1), key=lambda p: abs(p - count // 2))
    with db.open("r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\0" * size)
    return page


def test_a_damaged_store_page_is_reported_by_verify_info_and_check(
    cat_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "check", cat_dir)
    assert code == 0 and "ok (16 products)" in out
    page = zero_a_middle_page(cat_dir / "products.db")
    with Catalog.open(cat_dir) as cat:
        checked = cat.verify()
        assert checked["ok"] is False and any(f"Page {page}" in p for p in checked["problems"]), checked
    code, out, _ = run_cli(capsys, "info", cat_dir, "--json")
    data = json.loads(out)
    assert code == 0 and data["consistent"] is False and any(f"Page {page}" in p for p in data["problems"])
    code, out, err = run_cli(capsys, "check", cat_dir)
    assert code == 1 and f"Page {page}" in err and "problem" in err


def test_serve_warns_about_a_damaged_store_page(cat_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    page = zero_a_middle_page(cat_dir / "products.db")
    settings = ServiceSettings(admin_token=TOKEN, allow_private_urls=False, cors_origins=[])
    with caplog.at_level(logging.WARNING, logger="lookalike.service"), TestClient(create_app(cat_dir, settings)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("not sound" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
    warned = [r.getMessage() for r in caplog.records if "not sound" in r.getMessage()]
    assert warned and f"Page {page}" in warned[0]


# --- a missing picture file -----------------------------------------------------------------------------------
def test_a_missing_picture_is_found_and_a_rerun_of_the_ingest_restores_it(
    cat_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Catalog.open(cat_dir) as cat:
        lost = cat.image_path("13466")
    lost.unlink()
    code, out, _ = run_cli(capsys, "info", cat_dir, "--json")
    assert json.loads(out)["consistent"] is False
    code, out, err = run_cli(capsys, "check", cat_dir)
    assert code == 1 and "'13466'" in err and "missing" in err
    code, out, err = run_cli(capsys, "ingest", cat_dir, "--csv", PRODUCTS_CSV, "-q")
    assert code == 0 and "15 unchanged" in out, (out, err)
    assert lost.is_file()
    assert_sound(cat_dir, 16)


# --- a catalogue that cannot be written (a 100 % full disk): read-only use works --------------------------------
UNWRITABLE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no file may grow past 4 KB: SQLite cannot map its
from lookalike.cli import main                             # shared memory, nothing can be written ("disk I/O")
sys.argv = ["lookalike", *sys.argv[1:]]
main()
"""


def unwritable(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", UNWRITABLE, *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_read_only_use_works_when_nothing_can_be_written(tmp_path: Path) -> None:
    path = tmp_path / "cat"
    command = [sys.executable, "-m", "lookalike.cli", "ingest", str(path), "--csv", str(PRODUCTS_CSV), "--model",
               "colour-histogram", "-q"]  # fmt: skip
    made = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert not (path / "products.db-shm").exists()  # closed cleanly: a new shared-memory file would be needed
    info = unwritable("info", path, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["products"] == 16 and json.loads(info.stdout)["consistent"] is True
    found = unwritable("search", path, "--product", "13466", "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)["hits"]) == 3
    new = tmp_path / "new.csv"
    new.write_text(f"id,title,image\nextra-1,Extra,{PICTURE}\n")
    added = unwritable("ingest", path, "--csv", new, "-q")
    assert added.returncode == 74, (added.stdout, added.stderr)
    assert "disk" in added.stderr and "Traceback" not in added.stderr


def test_connect_falls_back_to_read_only(cat_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.store import health

    real = health._open

    def no_shared_memory(target: str, uri: bool, writable: bool) -> sqlite3.Connection:
        if writable:
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorname = "SQLITE_IOERR_SHMSIZE"  # type: ignore[attr-defined]
            raise exc
        return real(target, uri, writable)

    monkeypatch.setattr(health, "_open", no_shared_memory)
    with Catalog.open(cat_dir) as cat:
        assert len(cat) == 16 and [h.id for h in cat.search(product_id="13466", k=2)]
        with pytest.raises(StorageFullError, match="full"):
            cat.delete(["13466"])
        assert len(cat) == 16


# --- serve on a damaged store: one line, non-zero exit -----------------------------------------------------------
def test_serve_on_a_damaged_store_says_so_in_one_line(cat_dir: Path) -> None:
    with (cat_dir / "products.db").open("r+b") as fh:
        fh.write(b"\0" * 4096)  # the header page
    run = subprocess.run([sys.executable, "-m", "lookalike.cli", "serve", str(cat_dir), "--port", "0"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 65, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and "damaged" in run.stderr
    assert len([ln for ln in run.stderr.splitlines() if ln.startswith(("error", "ERROR"))]) == 1, run.stderr


# --- two ingests at once; odd entries in a folder ---------------------------------------------------------------
def test_a_second_ingest_is_refused_while_one_runs(cat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ingest_lock(cat_dir / "images"):
        code, _, err = run_cli(capsys, "ingest", cat_dir, "--csv", PRODUCTS_CSV, "-q")
    assert code == 75 and "another ingest is running" in err
    code, out, _ = run_cli(capsys, "ingest", cat_dir, "--csv", PRODUCTS_CSV, "-q")
    assert code == 0 and "16 unchanged" in out


def test_fifos_and_symlink_loops_in_a_folder_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(PICTURE, folder / "good.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(folder / "loop.jpg", folder / "loop.jpg")
    os.symlink(folder / "nothing.jpg", folder / "dangling.jpg")
    code, out, err = run_cli(capsys, "ingest", tmp_path / "cat", "--images", folder, "--model", "colour-histogram",
                             "-q")  # fmt: skip
    assert code == 0, err
    assert "1 added" in out and "3 failed" in out
    assert "pipe" in err and "FIFO" in err and "loop" in err and "symbolic link loop" in err and "dangling" in err


def test_a_nul_in_a_picture_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "p.csv"
    table.write_text(f"id,title,image\nok,Fine,{PICTURE}\nbad,Bad,pic\x00ture.jpg\n")
    code, out, err = run_cli(capsys, "ingest", tmp_path / "cat", "--csv", table, "--model", "colour-histogram", "-q")
    assert code == 0 and "1 added" in out and "1 failed" in out
    assert "NUL" in err and "unexpected" not in err
