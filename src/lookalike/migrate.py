"""Copy a catalogue between backends (embedded <-> Milvus): vectors, metadata, pictures, ingest errors.

Nothing is re-embedded and the model is never loaded: the destination gets the source's manifest
description of the extractor and the stored vectors. The copy goes in batches; products the
destination already holds with the same picture and metadata are skipped, so an interrupted
migration is finished by running it again. At the end the destination must hold exactly the
source's products, or :class:`~lookalike.errors.CatalogError` says what differs.

>>> from lookalike.migrate import migrate_catalog
>>> migrate_catalog("my-catalog", "shop", dst_backend="milvus", dst_uri="./shop.db")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import CatalogBackend, UpsertItem
from lookalike.catalog import Catalog
from lookalike.errors import CatalogError, CatalogNotFoundError, ModelLoadError, ModelMismatchError
from lookalike.extractors import Extractor, PreprocessCfg
from lookalike.fsutil import atomic_copy
from lookalike.manifest import embedded_root
from lookalike.product import Product

__all__ = ["MigrateProgress", "MigrateReport", "migrate", "migrate_catalog"]

CREATE_ONLY = ("index_type", "index_params", "partition_key")  # options of a new Milvus collection


@dataclass
class MigrateReport:
    """What a migration did; ``missing_pictures`` lists products whose picture file was not found."""

    source_products: int = 0
    destination_products: int = 0
    copied: int = 0
    unchanged: int = 0
    pictures: int = 0
    errors: int = 0
    missing_pictures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def products_per_second(self) -> float:
        return (self.copied + self.unchanged) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_products": self.source_products,
            "destination_products": self.destination_products,
            "copied": self.copied,
            "unchanged": self.unchanged,
            "pictures": self.pictures,
            "errors": self.errors,
            "missing_pictures": list(self.missing_pictures),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class MigrateProgress:
    """Passed to the progress callback after every batch."""

    done: int
    total: int
    report: MigrateReport


class _DescribedExtractor(Extractor):
    """The source catalogue's extractor as its manifest describes it: enough to create the destination."""

    can_embed = False  # the catalogue's creation does not try it on a picture

    def __init__(self, description: dict[str, Any], source_root: Path | None = None) -> None:
        """``source_root``: the source catalogue's directory; its model copy (``models/...``), if any, is
        copied into the destination like any model that does not ship with lookalike."""
        self._description = dict(description)
        copy = description.get("copy")
        if source_root is not None and copy and (source_root / str(copy)).is_file():
            self.path = source_root / str(copy)
        self.name = str(description["name"])
        self.dim = int(description["dim"])
        pre = description.get("preprocess")
        self.preprocess_cfg = PreprocessCfg.from_dict(pre) if isinstance(pre, dict) else None

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        raise ModelLoadError("a migration copies vectors; it does not embed")

    def describe(self) -> dict[str, Any]:
        return dict(self._description)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _products(backend: CatalogBackend, ids: Sequence[str]) -> dict[str, Product]:
    get_many = getattr(backend, "get_many", None)  # one request a batch where the backend has it
    if get_many is not None:
        return dict(get_many(ids))
    out: dict[str, Product] = {}
    for pid in ids:
        product = backend.get(pid)
        if product is not None:
            out[pid] = product
    return out


def _copy_picture(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_copy(src, dst)


def migrate(
    src: Catalog,
    dst: Catalog,
    batch_size: int = 500,
    progress: Callable[[MigrateProgress], None] | None = None,
) -> MigrateReport:
    """Copy every product of ``src`` (vector, metadata, picture) and its ingest errors into ``dst``.

    Both must use the same extractor. Raises :class:`CatalogError` when, at the end, ``dst`` does not
    hold exactly the products of ``src``.
    """
    if batch_size < 1:
        raise CatalogError("batch size must be at least 1")
    if src.extractor_name != dst.extractor_name or src.dim != dst.dim:
        raise ModelMismatchError(
            f"{src.path} uses {src.extractor_name!r} ({src.dim}-d) but {dst.path} uses "
            f"{dst.extractor_name!r} ({dst.dim}-d); vectors cannot be copied between them"
        )
    start = time.perf_counter()
    report = MigrateReport(source_products=src.count())
    done = 0
    for batch in _batched(src.backend.iter_ids(), batch_size):
        states = src.backend.states(batch)
        products = _products(src.backend, batch)
        vectors = src.backend.picture_vectors_of(batch)  # every picture's vector
        existing = dst.backend.states(batch)
        items: list[UpsertItem] = []
        for pid in batch:
            product, vector, state = products.get(pid), vectors.get(pid), states.get(pid)
            if product is None or vector is None or state is None:
                continue  # deleted from the source meanwhile: the final count check will say so
            pictures = state.all_pictures()
            for pic in pictures:
                if not pic.image_file:
                    continue
                source_file = src.images_dir / pic.image_file
                target_file = dst.images_dir / pic.image_file
                if not target_file.exists():
                    if source_file.is_file():
                        _copy_picture(source_file, target_file)
                        report.pictures += 1
                    elif pid not in report.missing_pictures:
                        report.missing_pictures.append(pid)
            if existing.get(pid) == state:
                report.unchanged += 1
                continue
            if len(vector) != len(pictures):
                raise CatalogError(f"{src.path}: {pid!r} has {len(pictures)} pictures, {len(vector)} vectors")
            items.append(UpsertItem(product, vector, state.image_sha, state.image_file, pictures))
        if items:
            dst.backend.upsert(items)
            landed = dst.backend.states([it.product.id for it in items])
            lost = [it.product.id for it in items if it.product.id not in landed]
            if lost:
                raise CatalogError(f"{len(lost)} products did not reach {dst.path}, e.g. {lost[0]!r}")
            report.copied += len(items)
        done += len(batch)
        if progress is not None:
            progress(MigrateProgress(done, report.source_products, report))
    failed = [(e["id"], e.get("image"), str(e["error"])) for e in src.backend.errors()]
    if failed:
        dst.backend.upsert([], failed)
        report.errors = len(failed)
    dst.checkpoint()
    report.destination_products = dst.count()
    report.seconds = time.perf_counter() - start
    source_now = src.count()
    if report.destination_products != source_now or report.copied + report.unchanged != source_now:
        raise CatalogError(
            f"migration check failed: {src.path} holds {source_now} products, {dst.path} holds "
            f"{report.destination_products}, {report.copied + report.unchanged} were copied or already there"
        )
    return report


def _open_destination(
    path: str | os.PathLike[str], manifest: dict[str, Any], backend: str, source_root: Path | None, **options: Any
) -> Catalog:
    name = str(manifest["extractor"]["name"])
    open_options = {k: v for k, v in options.items() if k not in CREATE_ONLY}
    try:
        return Catalog.open(path, extractor=name, backend=backend, **open_options)
    except CatalogNotFoundError:
        described = _DescribedExtractor(manifest["extractor"], source_root)
        Catalog.create(path, extractor=described, backend=backend, **options).close()
        return Catalog.open(path, extractor=name, backend=backend, **open_options)


def migrate_catalog(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    src_backend: str = "embedded",
    dst_backend: str = "milvus",
    src_uri: str | None = None,
    dst_uri: str | None = None,
    src_token: str | None = None,
    dst_token: str | None = None,
    src_options: dict[str, Any] | None = None,
    dst_options: dict[str, Any] | None = None,
    batch_size: int = 500,
    progress: Callable[[MigrateProgress], None] | None = None,
) -> MigrateReport:
    """Open ``src``, create (or open) ``dst`` for the same extractor, and :func:`migrate`.

    ``src_options``/``dst_options`` go to ``Catalog.open``/``Catalog.create`` (e.g. ``images_dir``,
    or ``index_type`` for a new Milvus collection).
    """
    same_place = src_backend == dst_backend and (
        Path(src).resolve() == Path(dst).resolve()
        if src_backend == "embedded"
        else (str(src), src_uri) == (str(dst), dst_uri)
    )
    if same_place:
        raise CatalogError("source and destination are the same catalogue")
    src_kw: dict[str, Any] = {"backend": src_backend, **(src_options or {})}
    dst_kw: dict[str, Any] = dict(dst_options or {})
    if src_backend != "embedded":
        src_kw.update(uri=src_uri, token=src_token)
    if dst_backend != "embedded":
        dst_kw.update(uri=dst_uri, token=dst_token)
    with (
        Catalog.open(src, **src_kw) as source,
        _open_destination(dst, source.manifest, dst_backend, embedded_root(source.path), **dst_kw) as target,
    ):
        return migrate(source, target, batch_size=batch_size, progress=progress)
