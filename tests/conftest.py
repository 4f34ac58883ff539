"""Shared fixtures: tiny catalogues built from the real images in tests/data."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
PRODUCTS_DIR = DATA / "products"
PRODUCTS_CSV = PRODUCTS_DIR / "products.csv"
PHOTOS = DATA / "photos"


@pytest.fixture(autouse=True)
def _isolated_model_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """User model specs go to a temp folder, never to the developer's ~/.cache."""
    home = tmp_path_factory.getbasetemp() / "lookalike-home"
    monkeypatch.setenv("LOOKALIKE_HOME", str(home))
    monkeypatch.setenv("LOOKALIKE_MODEL_DIR", str(home / "models"))


@pytest.fixture(scope="session")
def lite0():
    from lookalike import create_extractor

    return create_extractor("efficientnet-lite0")


@pytest.fixture(scope="session")
def product_rows() -> list[dict[str, str]]:
    with PRODUCTS_CSV.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def products_copy(tmp_path: Path) -> Path:
    """A writable copy of tests/data/products (CSV + images)."""
    dst = tmp_path / "src"
    shutil.copytree(PRODUCTS_DIR, dst)
    return dst / "products.csv"


@pytest.fixture(scope="session")
def built_catalog(tmp_path_factory: pytest.TempPathFactory, lite0):
    """A read-mostly catalogue of the 16 test products (built once per session)."""
    from lookalike import Catalog, read_csv

    path = tmp_path_factory.mktemp("catalogs") / "shared"
    cat = Catalog.create(path, extractor=lite0)
    report = cat.ingest(read_csv(PRODUCTS_CSV), batch_size=5)
    assert report.added == 16 and not report.failed
    yield cat
    cat.close()


@pytest.fixture()
def new_catalog(tmp_path: Path, lite0):
    """A fresh empty catalogue using the session's lite0 extractor."""
    from lookalike import Catalog

    cat = Catalog.create(tmp_path / "cat", extractor=lite0)
    yield cat
    cat.close()
