"""SIGKILL an ingest at seeded random points; the catalogue must keep everything it committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

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
