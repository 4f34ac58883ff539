"""Shared fixtures: tiny catalogues built from the real images in tests/data."""

from __future__ import annotations

import csv
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lookalike import Catalog

DATA = Path(__file__).parent / "data"
PRODUCTS_DIR = DATA / "products"
PRODUCTS_CSV = PRODUCTS_DIR / "products.csv"
PHOTOS = DATA / "photos"
BACKENDS = ("embedded", "milvus")
# Settings that would point the CLI (or new Milvus collections) elsewhere than the tests expect.
BACKEND_ENV = (
    "LOOKALIKE_BACKEND",
    "LOOKALIKE_MILVUS_URI",
    "LOOKALIKE_MILVUS_TOKEN",
    "LOOKALIKE_IMAGES_DIR",
    "LOOKALIKE_MILVUS_INDEX",
    "LOOKALIKE_MILVUS_INDEX_PARAMS",
    "LOOKALIKE_MILVUS_SEARCH_PARAMS",
)


@pytest.fixture(autouse=True)
def _isolated_model_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """User model specs go to a temp folder, never to the developer's ~/.cache."""
    home = tmp_path_factory.getbasetemp() / "lookalike-home"
    monkeypatch.setenv("LOOKALIKE_HOME", str(home))
    monkeypatch.setenv("LOOKALIKE_MODEL_DIR", str(home / "models"))
    for name in BACKEND_ENV:
        monkeypatch.delenv(name, raising=False)


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


# --- catalogues on either backend -----------------------------------------------------------------
class CatalogMaker:
    """Creates and reopens catalogues on one backend; every catalogue gets a fresh, unique name.

    Milvus catalogues are collections of the session's Milvus Lite database (one in-process server).
    """

    def __init__(self, backend: str, root: Path, milvus_uri: str) -> None:
        self.backend = backend
        self.root = root
        self.milvus_uri = milvus_uri

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments that select this backend in ``Catalog.create``/``Catalog.open``."""
        return {} if self.backend == "embedded" else {"backend": "milvus", "uri": self.milvus_uri}

    def location(self, name: str = "cat") -> str | Path:
        """A new, unused catalogue location: a directory, or a collection name."""
        unique = f"{name}_{uuid.uuid4().hex[:10]}"
        return self.root / unique if self.backend == "embedded" else unique

    def create(self, name: str = "cat", extractor: Any = "colour-histogram", **kwargs: Any) -> Catalog:
        from lookalike import Catalog

        return Catalog.create(self.location(name), extractor=extractor, **self.options, **kwargs)

    def open(self, where: Any, extractor: Any = None, **kwargs: Any) -> Catalog:
        """Open a catalogue again: ``where`` is a Catalog or a location."""
        from lookalike import Catalog

        path = where.path if isinstance(where, Catalog) else where
        return Catalog.open(path, extractor=extractor, **self.options, **kwargs)


class ServerCatalogMaker(CatalogMaker):
    """Catalogues on the session's real Milvus server (``milvus_server_uri``): an exact ``FLAT`` index unless
    another is asked for (so results compare with the embedded backend's), pictures in ``root/images/<name>``
    (what ``LOOKALIKE_IMAGES_DIR=root/images`` gives the CLI)."""

    def images_dir(self, where: Any) -> Path:
        return self.root / "images" / str(getattr(where, "path", where))

    def create(self, name: str = "cat", extractor: Any = "colour-histogram", **kwargs: Any) -> Catalog:
        from lookalike import Catalog

        where = self.location(name)
        kwargs.setdefault("index_type", "FLAT")
        kwargs.setdefault("images_dir", self.images_dir(where))
        return Catalog.create(where, extractor=extractor, **self.options, **kwargs)

    def open(self, where: Any, extractor: Any = None, **kwargs: Any) -> Catalog:
        from lookalike import Catalog

        kwargs.setdefault("images_dir", self.images_dir(where))
        path = where.path if isinstance(where, Catalog) else where
        return Catalog.open(path, extractor=extractor, **self.options, **kwargs)


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus server for the session (the ``milvus`` package's 2.3.5 standalone server, started on
    first use); the tests that need it are skipped where it cannot start."""
    from .milvus_server import start_milvus_server

    try:
        server = start_milvus_server(tmp_path_factory.mktemp("milvus-server"))
    except ImportError:
        pytest.skip("no Milvus server: the milvus-server extra is not installed")
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no Milvus server: {exc}")
    yield server.uri
    server.stop()


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's Milvus Lite database: its server starts on first use and serves every test."""
    return str(tmp_path_factory.mktemp("milvus") / "lite.db")


@pytest.fixture(scope="session")
def catalog_maker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, milvus_uri: str
) -> Callable[[str], CatalogMaker]:
    """``catalog_maker("embedded")``, ``catalog_maker("milvus")`` (Milvus Lite) or
    ``catalog_maker("milvus-server")`` (a real server: :class:`ServerCatalogMaker`)."""

    def make(backend: str) -> CatalogMaker:
        root = tmp_path_factory.mktemp(f"catalogs-{backend}")
        if backend == "milvus-server":
            return ServerCatalogMaker("milvus", root, request.getfixturevalue("milvus_server_uri"))
        return CatalogMaker(backend, root, milvus_uri)

    return make


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``lookalike ARGS`` in-process through ``main()``: (exit code, stdout, stderr)."""
    from lookalike.cli import main

    old = sys.argv
    sys.argv = ["lookalike", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def add_twin(csv_path: Path, of: str = "20842", twin: str = "twin-20842") -> Path:
    """Append to a products CSV a product ``twin`` with the very same picture file as product ``of`` (another
    title): a catalogue with one duplicated picture. Returns ``csv_path``."""
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    row = {**next(r for r in rows if r["id"] == of), "id": twin, "title": f"Twin of {of}"}
    with csv_path.open("a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=fields).writerow(row)
    return csv_path
