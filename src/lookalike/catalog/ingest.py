"""The ingest pipeline: prepare → embed → commit, in batches, each batch one transaction (resumable).

Worker processes or threads prepare pictures two batches ahead (:mod:`lookalike.catalog.prepare`);
the calling thread runs the model on one batch while a writer thread stores the previous batch's
pictures and then its rows. :func:`ingest` works on any :class:`IngestHost` (the
:class:`~lookalike.catalog.Catalog`), so this module never imports the facade.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.context
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from lookalike.backends.base import CatalogBackend, StoredPicture, UpsertItem
from lookalike.catalog.pictures import PictureStore
from lookalike.catalog.prepare import (
    Prepared,
    PreparedPicture,
    Preparer,
    fast_cfg,
    model_input,
    picture_colour,
    upload_name,
    worker_init,
)
from lookalike.colour.families import family_index
from lookalike.errors import InvalidProductError, LookalikeError, StorageFullError
from lookalike.extractors import Extractor
from lookalike.imaging import DecodeLimits, FetchSettings, image_format, open_image_bytes
from lookalike.product import PREDICTED_COLOUR, Product
from lookalike.sources import IngestRecord

__all__ = [
    "IngestHost",
    "IngestProgress",
    "IngestReport",
    "add_product",
    "commit_batch",
    "embed_batch",
    "ingest",
    "wait_commits",
]

_AHEAD = 2  # batches being decoded while the model works on the current one


@dataclass
class IngestReport:
    """What an ingest did. ``failed`` holds ``(product id, image, reason)``."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str | None, str]] = field(default_factory=list)
    seconds: float = 0.0
    embedded: int = 0  # pictures embedded
    #: Pictures that could not be read of products added with their other pictures: (id, picture, reason).
    partial: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.added + self.updated + self.unchanged + len(self.failed)

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": [{"id": i, "image": s, "error": m} for i, s, m in self.failed],
            "pictures_failed": [{"id": i, "image": s, "error": m} for i, s, m in self.partial],
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
        }


@dataclass
class IngestProgress:
    """Passed to the progress callback after every committed batch."""

    done: int
    committed_ids: list[str]
    report: IngestReport


class IngestHost(Protocol):
    """What the ingest needs of a catalogue (read when used: the extractor loads on first use)."""

    dim: int
    decode_limits: DecodeLimits
    fetch_settings: FetchSettings
    backend: CatalogBackend
    pictures: PictureStore

    @property
    def extractor(self) -> Extractor: ...

    def checkpoint(self) -> None: ...


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 2


def _mp_context() -> multiprocessing.context.BaseContext | None:
    """``fork`` on Linux, else None (threads). Not forkserver or spawn: those re-import the caller's
    ``__main__`` in every worker, which runs the top level of a script without a ``__main__`` guard.
    The forked workers only read files, hash, decode and resize (no onnxruntime, no OpenMP), so the
    model's idle threads in the parent are no hazard to them."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def _batched(records: Iterable[IngestRecord], size: int) -> Iterator[list[IngestRecord]]:
    batch: list[IngestRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def preparer(host: IngestHost, processes: bool) -> Preparer:
    """What the decode workers run. The fast path (worker processes) needs a plain
    :class:`~lookalike.extractors.PreprocessCfg`: workers return resized uint8 pixels, normalised
    in the parent per batch."""
    cfg = host.extractor.preprocess_cfg
    fast = fast_cfg(host.extractor)
    return Preparer(
        host.decode_limits,
        host.fetch_settings,
        cfg.size if cfg is not None else None,
        fast,
        None if processes and fast is not None else host.extractor,
        pictures_root=str(host.pictures.root),
    )


def ingest(
    host: IngestHost,
    records: Iterable[IngestRecord],
    batch_size: int = 64,
    workers: int | None = None,
    refresh: bool = False,
    progress: Callable[[IngestProgress], None] | None = None,
    processes: bool | None = None,
) -> IngestReport:
    """Add or update products in batches (:meth:`lookalike.catalog.Catalog.ingest` documents it)."""
    report = IngestReport()
    start = time.perf_counter()
    size = len(records) if isinstance(records, Sized) else None
    big = size is None or size > 256
    if processes is None:
        processes = big and fast_cfg(host.extractor) is not None
    processes = processes and fast_cfg(host.extractor) is not None and _mp_context() is not None
    model = host.extractor.bulk() if big else host.extractor  # see Extractor.bulk
    n_workers = workers or (max(2, min(8, _cpus())) if processes else min(8, _cpus() + 2))
    prep = preparer(host, processes)
    batches = _batched(records, batch_size)
    done = 0
    pool: Executor = (
        ProcessPoolExecutor(n_workers, mp_context=_mp_context(), initializer=worker_init, initargs=(os.getpid(),))
        if processes
        else ThreadPoolExecutor(n_workers, thread_name_prefix="lookalike-ingest")
    )
    chunk = max(1, min(32, -(-batch_size // (2 * n_workers))))
    pending: deque[list[Future[list[Prepared]]]] = deque()
    writing: list[tuple[Future[list[str]], int]] = []  # the commit in flight, and `done` after it
    io_pool = ThreadPoolExecutor(16, thread_name_prefix="lookalike-pictures")
    writer = ThreadPoolExecutor(1, thread_name_prefix="lookalike-writer")

    flush = partial(wait_commits, writing, report, progress)

    def step(futures: list[Future[list[Prepared]]]) -> int:
        prepared = [p for f in futures for p in f.result()]
        vectors = _embed(host, prepared, model)  # overlaps the previous batch's commit
        flush()
        writing.append((writer.submit(_commit, host, prepared, vectors, report, io_pool), done + len(prepared)))
        return len(prepared)

    try:
        for batch in batches:
            pending.append(_submit(host, pool, prep, batch, refresh, chunk))
            if len(pending) > _AHEAD:
                done += step(pending.popleft())
        while pending:
            done += step(pending.popleft())
        flush()
    finally:
        for futures in pending:
            for f in futures:
                f.cancel()
        writer.shutdown(wait=True)  # an interrupted ingest still finishes the commit in flight
        io_pool.shutdown(wait=True)
        pool.shutdown(wait=True, cancel_futures=True)
        report.seconds = time.perf_counter() - start
        with contextlib.suppress(LookalikeError, OSError):
            host.checkpoint()
    return report


def wait_commits(
    writing: list[tuple[Future[list[str]], int]],
    report: IngestReport,
    progress: Callable[[IngestProgress], None] | None,
) -> None:
    """Wait for the commits in flight (``writing``: each with the products done after it), emptying it, and tell
    ``progress`` of each."""
    while writing:
        future, upto = writing.pop()
        committed = future.result()
        if progress is not None:
            progress(IngestProgress(upto, committed, report))


def _submit(
    host: IngestHost,
    pool: Executor,
    prep: Preparer,
    batch: list[IngestRecord],
    refresh: bool,
    chunk: int,
) -> list[Future[list[Prepared]]]:
    states = host.backend.states([r.product.id for r in batch])
    items = [(r, states.get(r.product.id)) for r in batch]
    return [pool.submit(prep, items[i : i + chunk], refresh) for i in range(0, len(items), chunk)]


def _embed(host: IngestHost, prepared: list[Prepared], model: Extractor) -> np.ndarray:
    """The vectors of a batch's pictures to embed, in order (``model``: the extractor or its bulk twin)."""
    arrays = [pic.array for p in prepared if p.action == "embed" for pic in p.pictures]
    if not arrays:
        return np.zeros((0, host.dim), np.float32)
    step = max(1, model.batch_size)  # the model's own batch: a commit batch may be larger
    return np.concatenate(
        [
            model.embed_preprocessed(model_input(host.extractor, arrays[i : i + step]))  # type: ignore[arg-type]
            for i in range(0, len(arrays), step)
        ]
    )


def _commit(
    host: IngestHost,
    prepared: list[Prepared],
    vectors: np.ndarray,
    report: IngestReport,
    io_pool: ThreadPoolExecutor | None = None,
) -> list[str]:
    """Store a batch's pictures, then its rows in one transaction; returns the ids written."""
    to_embed = [p for p in prepared if p.action == "embed"]
    existing = host.backend.states([p.record.product.id for p in prepared])
    items: list[UpsertItem] = []
    errors: list[tuple[str, str | None, str]] = []
    partial: list[tuple[str, str | None, str]] = []
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    row = 0
    with host.pictures.locked():
        pictures = [pic for p in to_embed for pic in p.pictures]
        sources = [pic.source for pic in pictures]  # local files are hard-linked where they can be
        saved = host.pictures.save_many(pictures, host.decode_limits, io_pool, sources)
        for p in prepared:
            pid = p.record.product.id
            if p.action == "fail":
                errors.append((pid, p.record.source, p.error or "unknown error"))
                continue
            if p.action == "skip":
                counts["unchanged"] += 1
                continue
            if p.action == "meta":
                items.append(UpsertItem(keep_predicted_colour(host.backend, p.record.product), None))
                counts["updated"] += 1
                continue
            vecs = vectors[row : row + len(p.pictures)]
            row += len(p.pictures)
            kept, rows, failed = [], [], list(p.failed)
            for pic, vec in zip(p.pictures, vecs, strict=True):
                rel = saved[id(pic)]
                if isinstance(rel, StorageFullError):  # a full disk is not a bad picture: stop (a re-run resumes)
                    raise rel
                if isinstance(rel, Exception):
                    failed.append((pic.source or "", f"cannot store image: {rel}"))
                    continue
                kept.append(StoredPicture(pic.source, pic.sha, rel))
                rows.append(vec)
            if not kept:
                errors.append((pid, p.record.source, "; ".join(f"{s}: {why}" for s, why in failed)))
                continue
            partial += [(pid, s, why) for s, why in failed]
            if failed:
                errors.append((pid, ", ".join(s for s, _ in failed), _picture_failures(failed, len(p.record.sources))))
            product = replace(p.record.product, images=[k.image for k in kept if k.image], image=None)
            product = with_predicted_colour(product, p.colour)
            items.append(UpsertItem(product, np.stack(rows), kept[0].image_sha, kept[0].image_file, kept))
            counts["updated" if pid in existing else "added"] += 1
        host.backend.upsert(items, errors)
    report.added += counts["added"]
    report.updated += counts["updated"]
    report.unchanged += counts["unchanged"]
    report.embedded += len(pictures)
    report.failed.extend(e for e in errors if e[0] not in {i for i, _, _ in partial})
    report.partial.extend(partial)
    return [it.product.id for it in items]


#: The pipeline's steps for other runners (:mod:`lookalike.catalog.ray_ingest`): the same embedding of a batch's
#: pictures (``embed_batch(host, prepared, model)``, ``host`` needing ``dim`` and ``extractor`` only) and the same
#: commit of a batch (``commit_batch(host, prepared, vectors, report, io_pool)``).
embed_batch = _embed
commit_batch = _commit


def _picture_failures(failed: list[tuple[str, str]], total: int) -> str:
    """The ingest error of a product added without some of its pictures."""
    what = "; ".join(f"{s}: {why}" for s, why in failed)
    return f"{len(failed)} of {total} pictures not added ({what})"


def with_predicted_colour(product: Product, family: str | None) -> Product:
    """``product`` with its picture's predicted colour family kept in ``extra`` (unchanged for None)."""
    if family is None:
        return product
    return replace(product, extra={**(product.extra or {}), PREDICTED_COLOUR: family})


def keep_predicted_colour(backend: CatalogBackend, product: Product) -> Product:
    """For a metadata-only update: the stored product's predicted colour carried over (the picture is the
    same), unless the product now has a known colour of its own."""
    if family_index(product.colour) >= 0 or PREDICTED_COLOUR in (product.extra or {}):
        return product
    old = backend.get(product.id)
    return with_predicted_colour(product, None if old is None else (old.extra or {}).get(PREDICTED_COLOUR))


def add_product(host: IngestHost, product: Product, data: bytes | Sequence[bytes]) -> str:
    """Add or update one product with its pictures ``data`` (the bytes of one picture, or of each, the main
    one first; the same picture twice is kept once): ``"added"`` or ``"updated"``."""
    blobs = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
    pictures: list[PreparedPicture] = []
    for blob in blobs:
        sha = hashlib.sha256(blob).hexdigest()
        if any(p.sha == sha for p in pictures):
            continue
        img = open_image_bytes(bytes(blob), host.decode_limits)
        fmt, _ = image_format(bytes(blob))
        pictures.append(PreparedPicture(None, None, sha, bytes(blob), fmt, img))
    if not pictures:
        raise InvalidProductError(f"product {product.id!r} needs at least one picture")
    vecs = host.extractor.embed([p.image for p in pictures])  # type: ignore[misc]
    if family_index(product.colour) < 0:
        product = with_predicted_colour(product, picture_colour(pictures[0].image))  # type: ignore[arg-type]
    names = list(product.images)[: len(pictures)]
    names += [upload_name(p.sha or "") for p in pictures[len(names) :]]
    with host.pictures.locked():
        rels = [host.pictures.save(p, host.decode_limits) for p in pictures]
        kept = [StoredPicture(n, p.sha, r) for n, p, r in zip(names, pictures, rels, strict=True)]
        existed = host.backend.get(product.id) is not None
        try:
            host.backend.upsert([UpsertItem(product, vecs, kept[0].image_sha, kept[0].image_file, kept)])
        except LookalikeError:  # nothing committed (a full disk, say): no picture left behind for it
            host.pictures.remove_unused(rels, host.backend.image_file_in_use)
            raise
    return "updated" if existed else "added"
