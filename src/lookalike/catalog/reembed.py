"""Embedding a catalogue's stored pictures again (for :mod:`lookalike.catalog.reindex` and ``check --repair``).

:func:`reembed` reads each product's pictures back from the catalogue's picture folder (never the source files),
checks they still have their recorded SHA-256, and embeds them with the host catalogue's model, decoding in the
ingest's worker processes (:class:`~lookalike.catalog.prepare.Preparer`) two batches ahead of the model, which runs
its bulk twin in this thread; products without a known colour get their picture's predicted colour again. Each batch
is one transaction.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import StoredPicture, UpsertItem
from lookalike.catalog.facade import Catalog
from lookalike.catalog.ingest import preparer, with_predicted_colour
from lookalike.catalog.prepare import Prepared, model_input, worker_init
from lookalike.errors import CatalogError
from lookalike.extractors import Extractor
from lookalike.imaging import DecodeLimits
from lookalike.product import Product
from lookalike.sources import IngestRecord

__all__ = ["STORED_LIMITS", "Job", "Progress", "SyncReport", "reembed"]

Progress = Callable[[int, int], None]  # (products embedded so far, products to embed in this pass)
# Stored pictures passed some service's or CLI's limits once: read them back under generous ones.
STORED_LIMITS = DecodeLimits(max_bytes=4 * DecodeLimits.max_bytes, max_pixels=4 * DecodeLimits.max_pixels)
_AHEAD = 2  # batches being decoded while the model works on the current one


@dataclass
class SyncReport:
    """One catch-up pass from generation ``source`` (at its change sequence ``seq``) into ``target``."""

    source: int
    target: int
    seq: int = 0
    embedded: int = 0  # products whose pictures were embedded
    pictures: int = 0
    updated: int = 0  # metadata only
    deleted: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (product id, why)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.embedded + self.updated + self.deleted

    def add(self, later: SyncReport) -> SyncReport:
        """This pass and a ``later`` one, as one (products changed twice count twice)."""
        return SyncReport(
            self.source, self.target, later.seq, self.embedded + later.embedded, self.pictures + later.pictures,
            self.updated + later.updated, self.deleted + later.deleted, later.unchanged, later.failed,
            self.seconds + later.seconds,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "target": self.target, "seq": self.seq, "embedded": self.embedded,
            "pictures": self.pictures, "updated": self.updated, "deleted": self.deleted, "unchanged": self.unchanged,
            "failed": [{"id": i, "error": e} for i, e in self.failed], "seconds": round(self.seconds, 3),
        }  # fmt: skip


@dataclass
class Job:
    """A product to embed again, with its stored pictures (in order)."""

    product: Product
    pictures: tuple[StoredPicture, ...]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _pool(processes: bool, workers: int) -> Executor:
    if processes:
        ctx = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=worker_init, initargs=(os.getpid(),))
    return ThreadPoolExecutor(workers, thread_name_prefix="lookalike-reindex")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 2


def _record(job: Job, top: Path) -> IngestRecord | str:
    """The job as an ingest record whose sources are its stored picture files, or why it cannot be one."""
    paths = []
    for pic in job.pictures:
        path = (top / pic.image_file).resolve() if pic.image_file else None
        if path is None or top not in path.parents:
            return f"picture {pic.image or pic.image_file!r} has no stored file in {top}"
        paths.append(str(path))
    return IngestRecord(job.product, None, paths)


def reembed(
    host: Catalog,
    jobs: Sequence[Job],
    report: SyncReport,
    progress: Progress | None = None,
    batch_size: int = 64,
    processes: bool | None = None,
) -> None:
    """Embed ``jobs``' stored pictures with ``host``'s model (and predict the colour of products without a known
    one) and write them to ``host``, a batch per transaction. The pictures are read back from the picture folder
    and must still have their recorded SHA-256; a product with a picture missing or changed is not written and is
    listed in ``report.failed``. Decoding runs ahead in worker processes (the ingest's :class:`Preparer`), the
    model in this thread, and a writer thread commits each batch while the model runs on the next (as the ingest
    does; ``progress`` is called after each commit)."""
    if not jobs:
        return
    fast = preparer(host, False).fast
    big = len(jobs) > 256
    use_processes = (big if processes is None else processes) and fast is not None and sys.platform == "linux"
    workers = max(2, min(8, _cpus())) if use_processes else min(8, _cpus() + 2)
    prep = replace(preparer(host, use_processes), limits=STORED_LIMITS)
    model = host.extractor.bulk() if big else host.extractor
    chunk = max(1, min(32, -(-batch_size // (2 * workers))))
    top = host.images_dir.resolve()
    pool = _pool(use_processes, workers)
    writer = ThreadPoolExecutor(1, thread_name_prefix="lookalike-reindex-writer")
    pending: deque[tuple[list[Job], list[Future[list[Prepared]]]]] = deque()
    writing: list[tuple[Future[None], int]] = []  # the commit in flight, and how many jobs are done after it
    done = 0

    def flush() -> None:
        while writing:
            future, upto = writing.pop()
            future.result()
            if progress is not None:
                progress(upto, len(jobs))

    def finish(batch: list[Job], futures: list[Future[list[Prepared]]]) -> None:
        nonlocal done
        items = _embed(host, model, batch, [p for f in futures for p in f.result()], report)
        flush()  # the previous batch's commit ran beside this batch's model run
        done += len(batch)
        writing.append((writer.submit(_commit, host, items, report), done))

    try:
        for part in _chunks(jobs, batch_size):
            batch, records = [], []
            for job in part:
                record = _record(job, top)
                if isinstance(record, str):
                    report.failed.append((job.product.id, record))
                    done += 1
                    continue
                batch.append(job)
                records.append((record, None))
            futures = [pool.submit(prep, records[i : i + chunk], True) for i in range(0, len(records), chunk)]
            pending.append((batch, futures))
            if len(pending) > _AHEAD:
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
        flush()
    finally:
        for _, futures in pending:
            for f in futures:
                f.cancel()
        writer.shutdown(wait=True)  # an interrupted run still finishes the commit in flight
        pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(CatalogError, OSError):
            host.checkpoint()


def _failure(job: Job, p: Prepared) -> str | None:
    """Why a prepared job cannot be written (None: it can)."""
    if p.action != "embed" or p.failed:
        return p.error or "; ".join(f"{src}: {why}" for src, why in p.failed) or "cannot read its pictures"
    if [pic.sha for pic in p.pictures] != [pic.image_sha for pic in job.pictures]:
        return "a stored picture file no longer holds the stored picture (its SHA-256 differs)"
    return None


def _embed(
    host: Catalog, model: Extractor, batch: list[Job], prepared: list[Prepared], report: SyncReport
) -> list[UpsertItem]:
    """The rows to write for a prepared batch (its failures go to ``report.failed``)."""
    ready: list[tuple[Job, Prepared]] = []
    for job, p in zip(batch, prepared, strict=True):
        why = _failure(job, p)
        if why is None:
            ready.append((job, p))
        else:
            report.failed.append((job.product.id, why))
    arrays = [pic.array for _, p in ready for pic in p.pictures]
    if not arrays:
        return []
    step = max(1, model.batch_size)
    parts = [model_input(host.extractor, arrays[i : i + step]) for i in range(0, len(arrays), step)]  # type: ignore[arg-type]
    vectors = np.concatenate([model.embed_preprocessed(x) for x in parts])
    items, row = [], 0
    for job, p in ready:
        vecs = vectors[row : row + len(p.pictures)]
        row += len(p.pictures)
        main = job.pictures[0]
        product = with_predicted_colour(job.product, p.colour)
        items.append(UpsertItem(product, vecs, main.image_sha, main.image_file, list(job.pictures)))
    return items


def _commit(host: Catalog, items: list[UpsertItem], report: SyncReport) -> None:
    if items:
        host.backend.upsert(items)
        report.embedded += len(items)
        report.pictures += sum(len(it.pictures) for it in items)
