"""SIGKILL an ingest at seeded random points; the catalogue must keep everything it committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lookalike import Catalog, read_csv

from .conftest import PRODUCTS_CSV

TRIALS = 20

INGEST = """
import sys
from lookalike import Catalog, read_csv
cat = Catalog.create(sys.argv[1], extractor="efficientnet-lite0", exist_ok=True)
def show(p):
    print("COMMITTED", " ".join(p.committed_ids), flush=True)
print("READY", flush=True)
cat.ingest(read_csv(sys.argv[2]), batch_size=2, progress=show)
print("DONE", flush=True)
"""


def _run_and_kill(catalog, rng: random.Random) -> list[str]:
    """Start an ingest, kill it after a random number of batches or a random delay; return committed ids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(catalog), str(PRODUCTS_CSV)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOOKALIKE_THREADS": "1"},
    )
    assert proc.stdout is not None
    committed: list[str] = []
    by_batches = rng.random() < 0.5
    target_batches = rng.randint(0, 7)
    delay = rng.uniform(0.0, 0.6)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("DONE"):
                break
            if line.startswith("READY") and not by_batches:
                time.sleep(delay)  # lands anywhere: decoding, embedding, mid-transaction, checkpoint
                break
            if line.startswith("COMMITTED"):
                committed += line.split()[1:]
                if by_batches and len(committed) >= 2 * target_batches:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
    committed += [i for ln in out.splitlines() if ln.startswith("COMMITTED") for i in ln.split()[1:]]
    return committed


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_committed(tmp_path, lite0):
    rng = random.Random(1124)
    expected_total = 16
    for trial in range(TRIALS):
        catalog = tmp_path / f"cat-{trial}"
        committed = _run_and_kill(catalog, rng)
        if not (catalog / "manifest.json").exists():
            assert not committed  # killed before the catalogue existed
            continue
        with Catalog.open(catalog, extractor=lite0) as cat:
            check = cat.verify()
            assert check["ok"], (trial, check)
            assert check["products"] >= len(set(committed)), trial
            for pid in set(committed):
                assert cat.get(pid).id == pid
                assert cat.search(product_id=pid, k=1) is not None
            report = cat.ingest(read_csv(PRODUCTS_CSV))
            assert len(cat) == expected_total and cat.verify()["ok"], trial
            assert report.unchanged == check["products"]


def _write_cut_short(target: Path, data: bytes) -> Path:
    """What ``atomic_write`` leaves when the process dies between writing its temp file and the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.write(fd, data)
    os.close(fd)
    return Path(tmp)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_opening_removes_picture_writes_cut_short_and_nothing_else(tmp_path):
    path = tmp_path / "cat"
    with Catalog.create(path, extractor="colour-histogram") as cat:
        assert cat.ingest(read_csv(PRODUCTS_CSV)).added == 16
        images = cat.images_dir
    committed = _files(images)
    one = images / next(rel for rel in committed if rel.endswith(".jpg"))
    sha = "f0" + "1" * 62  # a picture never committed, in a folder of its own
    leftovers = [
        _write_cut_short(one, one.read_bytes()[:100]),
        _write_cut_short(images / sha[:2] / f"{sha}.png", b"\x89PNG half"),
    ]
    strangers = [  # temp-looking files that are not the picture store's: left alone
        one.parent / ".notes.tmp",
        one.parent / f"{one.name}.tmp",
        images / f".{one.name}.abcd1234.tmp",
        images / "aa" / f".{sha}.png.abcd1234.tmp",  # in the wrong folder for its name
    ]
    for p in strangers:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"not ours")
    with Catalog.open(path) as cat:
        assert not any(p.exists() for p in leftovers)
        assert all(p.read_bytes() == b"not ours" for p in strangers)
        left = _files(images)
        assert {rel: left[rel] for rel in committed} == committed
        assert cat.verify()["ok"] and cat.image_path("20842").is_file()


def test_a_picture_write_in_progress_elsewhere_is_not_removed(tmp_path):
    path = tmp_path / "cat"
    with Catalog.create(path, extractor="colour-histogram") as writer:
        sha = "0a" * 32
        busy = _write_cut_short(writer.images_dir / sha[:2] / f"{sha}.jpg", b"being written")
        with writer.pictures.locked():  # another catalogue object (process) storing pictures now
            Catalog.open(path).close()
            assert busy.exists()
        Catalog.open(path).close()
        assert not busy.exists()
