"""What the reindex and the check/backup tests share: catalogues of the 16 test products, copies of them, and the
gate's labelled queries."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

from lookalike import Catalog, read_csv
from tests.conftest import PHOTOS, PRODUCTS_CSV, PRODUCTS_DIR

HIST = "colour-histogram"
LITE0 = "efficientnet-lite0"


def ingested(where: str | Path, model: str = HIST, **kwargs: Any) -> None:
    """Create the catalogue ``where`` (a folder, or a Milvus name with ``backend``/``uri`` in ``kwargs``) of the
    16 test products under ``model``."""
    with Catalog.create(where, extractor=model, **kwargs) as cat:
        assert cat.ingest(read_csv(PRODUCTS_CSV)).added == 16


def copy_of(source: Path, path: Path) -> Path:
    """A copy of the catalogue folder ``source`` at ``path``."""
    shutil.copytree(source, path)
    return path


def write_gate_csv(path: Path) -> Path:
    """Labelled queries: the two phone photos and every product picture, right when of the same article type."""
    with PRODUCTS_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["image", "products", "article_types"])
        out.writerow([PHOTOS / "tshirt.jpg", "", "Tshirts"])
        out.writerow([PHOTOS / "shoes.jpg", "", "Casual Shoes"])
        for r in rows:
            out.writerow([PRODUCTS_DIR / r["image"], r["id"], r["article_type"]])
    return path
