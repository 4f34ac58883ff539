"""The Ray ingest (``lookalike ingest --ray``) gives the plain ingest's result: the same products, errors and
vectors, into the embedded catalogue, Milvus Lite and a real Milvus server; it resumes after being stopped, and the
plain ingest never imports Ray. One local Ray instance (2 CPUs, on 127.0.0.1) serves the module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike import Catalog, read_csv
from lookalike.catalog.ray_ingest import RayOptions, ray_ingest

from .conftest import CatalogMaker
from .conftest import run_cli as run

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

MISSING = "10773"  # the product whose picture file is removed from the copy of tests/data/products


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A local Ray instance for the module: 2 CPUs, loopback only, no token file written to ~/.ray."""
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old


@pytest.fixture()
def shop(products_copy: Path) -> Path:
    """tests/data/products with one product's picture gone (a failure to record)."""
    (products_copy.parent / "images" / f"{MISSING}.jpg").unlink()
    return products_copy


def _same(plain: Catalog, other: Catalog) -> None:
    """The same products, errors and vectors (max abs difference 1e-5) in two catalogues."""
    ids = sorted(plain.backend.iter_ids())
    assert ids == sorted(other.backend.iter_ids()) and MISSING not in ids and len(ids) == 15
    assert [plain.get(i) for i in ids] == [other.get(i) for i in ids]
    a, b = plain.backend.picture_vectors_of(ids), other.backend.picture_vectors_of(ids)
    assert max(float(np.abs(a[i] - b[i]).max()) for i in ids) <= 1e-5
    errors = [(e["id"], e["error"]) for e in plain.store.errors()]
    assert errors == [(e["id"], e["error"]) for e in other.store.errors()] and [e[0] for e in errors] == [MISSING]


@pytest.mark.parametrize("backend", ["embedded", "milvus", "milvus-server"])
def test_the_ray_ingest_gives_the_plain_ingests_result(shop, catalog_maker, lite0, backend):
    maker: CatalogMaker = catalog_maker(backend)
    with maker.create("plain", extractor=lite0) as plain, maker.create("ray", extractor=lite0) as other:
        want = plain.ingest(read_csv(shop), batch_size=4)
        seen: list[int] = []
        got = ray_ingest(other, read_csv(shop), batch_size=4, progress=lambda p: seen.append(p.done))
        assert (got.added, got.updated, got.unchanged, got.embedded) == (15, 0, 0, 15)
        assert (want.added, want.embedded) == (got.added, got.embedded) and got.failed == want.failed
        assert sorted(seen) == [4, 8, 12, 16]
        _same(plain, other)


def test_a_stopped_ray_ingest_resumes(shop, catalog_maker, lite0):
    maker: CatalogMaker = catalog_maker("embedded")
    with maker.create("stopped", extractor=lite0) as cat:

        def stop(p):
            raise KeyboardInterrupt  # Ctrl-C once the first block is committed

        with pytest.raises(KeyboardInterrupt):
            ray_ingest(cat, read_csv(shop), batch_size=4, progress=stop)
        kept = len(cat)
        assert 0 < kept < 16
        for pid in cat.backend.iter_ids():  # what was written is whole: rows, vectors, picture files
            assert cat.image_path(pid).is_file() and cat.backend.picture_vectors_of([pid])[pid].shape == (1, cat.dim)
        again = ray_ingest(cat, read_csv(shop), batch_size=4)
        assert again.unchanged == kept and len(cat) == 15
        assert again.added == 15 - kept and cat.verify()["ok"]
        with maker.create("plain", extractor=lite0) as plain:
            plain.ingest(read_csv(shop))
            _same(plain, cat)


def test_the_cli_ingests_through_ray(capsys, shop, tmp_path):
    code, out, err = run(capsys, "ingest", tmp_path / "cat", "--csv", shop, "-m", "colour-histogram", "--ray",
                         "--ray-actors", "2", "--batch-size", "5", "-q")  # fmt: skip
    assert code == 0, err
    assert "15 added, 0 updated, 0 unchanged, 1 failed; 15 images" in out and MISSING in err
    code, out, _ = run(capsys, "ingest", tmp_path / "cat", "--csv", shop, "--ray", "-q")
    assert code == 0 and "0 added, 0 updated, 15 unchanged, 1 failed; 0 images" in out


def test_without_ray_the_option_says_which_extra_to_install(capsys, monkeypatch, tmp_path):
    from lookalike.catalog import ray_ingest as module

    monkeypatch.setattr(module, "ray_available", lambda: False)
    code, _, err = run(capsys, "ingest", tmp_path / "cat", "--csv", tmp_path / "x.csv", "--ray")
    assert code == 2 and "pip install 'lookalike[ray]'" in err and not (tmp_path / "cat").exists()
    with pytest.raises(Exception, match=r"lookalike\[ray\]"):
        module.ray_ingest(None, [], options=RayOptions())  # type: ignore[arg-type]


def test_the_plain_ingest_does_not_import_ray(shop, tmp_path):
    code = (
        "import sys\nfrom lookalike.cli import main\n"
        f"sys.argv = ['lookalike', 'ingest', {str(tmp_path / 'cat')!r}, '--csv', {str(shop)!r}, '-m', "
        "'colour-histogram', '-q']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'ray' not in sys.modules, 'the plain ingest imported ray'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
