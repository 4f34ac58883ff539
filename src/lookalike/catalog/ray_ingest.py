"""The ingest on a Ray cluster (``lookalike ingest CAT --csv FILE --ray``): the plain pipeline's steps, spread out.

    records ─► blocks of ``batch_size`` products, each with its stored state (this process: the resume check's input)
            ─► Ray Data ``map_batches`` on an actor pool: fetch / read, hash, decode, colour, embed
               (:class:`EmbedActor`: one onnxruntime session per actor, ``cpus_per_actor`` threads)
            ─► one writer, this process: :func:`~lookalike.catalog.ingest.commit_batch` per block, the plain
               ingest's commit (pictures, then the rows in one transaction), into the embedded catalogue or
               straight into Milvus

The actors run :class:`~lookalike.catalog.prepare.Preparer` and :func:`~lookalike.catalog.ingest.embed_batch`, the
plain ingest's code, so a product gets the same vectors, colour and errors either way. The rules are the plain
ingest's: what is stored unchanged is skipped (resumable), a product that fails is recorded with its reason, the
progress callback runs after every committed block, and an interrupted run (Ctrl-C) finishes the block being
committed and stops: nothing is half-written.

The cluster is ``address``, else ``$RAY_ADDRESS`` (Ray's own convention), else a local one started here and shut
down at the end (``local_cpus`` CPUs). Every node needs lookalike installed (with the ``ray`` extra) and must read
the pictures' paths; an embedded catalogue's folder must be on this machine, a Milvus catalogue's pictures folder on
shared storage. Ray is an optional extra: nothing imports this module unless ``--ray`` is asked for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from lookalike.catalog.ingest import IngestHost, IngestProgress, IngestReport, commit_batch, embed_batch, wait_commits
from lookalike.catalog.prepare import Preparer, fast_cfg
from lookalike.errors import CatalogError, LookalikeError, ModelMismatchError
from lookalike.imaging import DecodeLimits, FetchSettings
from lookalike.sources import IngestRecord

__all__ = ["RAY_EXTRA", "EmbedActor", "RayOptions", "WorkerSpec", "ray_available", "ray_ingest"]

RAY_EXTRA = "pip install 'lookalike[ray]'"


def ray_available() -> bool:
    """Whether Ray (with Ray Data) can be imported, without importing it."""
    return importlib.util.find_spec("ray") is not None


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray ingest runs. ``address``: a cluster (None: ``$RAY_ADDRESS``, else a local one of
    ``local_cpus`` CPUs, every usable core by default); ``actors``: the embedding actors (None: the cluster's CPUs /
    ``cpus_per_actor``); ``cpus_per_actor``: CPUs Ray reserves for each, and its onnxruntime threads."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    local_cpus: int | None = None


@dataclass(frozen=True)
class WorkerSpec:
    """What an actor needs to build its half of the pipeline (picklable): the catalogue's model (its manifest
    entry, and the embedded catalogue's folder for a model copied there), dimension, limits and threads."""

    extractor: dict[str, Any]
    root: str | None
    where: str
    dim: int
    limits: DecodeLimits
    fetch: FetchSettings
    threads: int


class EmbedActor:
    """A Ray Data actor: the catalogue's model loaded once, then block after block prepared and embedded.
    ``spec`` is a class attribute (:meth:`for_spec`), so the class carries it to the workers by value."""

    spec: WorkerSpec

    @classmethod
    def for_spec(cls, spec: WorkerSpec) -> type[EmbedActor]:
        return type(cls.__name__, (cls,), {"spec": spec, "__module__": __name__})

    def __init__(self) -> None:
        from lookalike.catalog.model_files import load_extractor

        spec = self.spec

        os.environ["LOOKALIKE_THREADS"] = str(spec.threads)  # the onnxruntime sessions: this actor's CPUs
        ext = load_extractor(spec.extractor, Path(spec.root) if spec.root else None, spec.where)
        if ext.dim != spec.dim:
            raise ModelMismatchError(f"extractor {ext.name!r} gives {ext.dim}-d vectors, the catalogue {spec.dim}-d")
        fast = fast_cfg(ext)
        size = ext.preprocess_cfg.size if ext.preprocess_cfg is not None else None
        self.prepare = Preparer(spec.limits, spec.fetch, size, fast, None if fast is not None else ext)
        self.host = SimpleNamespace(dim=ext.dim, extractor=ext)
        self.model = ext.bulk()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for blob in batch["items"]:
            items, refresh = pickle.loads(blob)
            prepared = self.prepare(items, refresh)
            vectors = embed_batch(self.host, prepared, self.model)  # type: ignore[arg-type]
            for p in prepared:
                for pic in p.pictures:
                    pic.array = None  # the writer stores the picture's bytes, not its pixels
            out.append(pickle.dumps((prepared, vectors), protocol=pickle.HIGHEST_PROTOCOL))
        return {"result": np.array(out, dtype=object)}


def worker_spec(host: IngestHost, threads: int) -> WorkerSpec:
    """The :class:`WorkerSpec` of a catalogue (a :class:`~lookalike.catalog.Catalog`)."""
    from lookalike.manifest import embedded_root

    manifest: dict[str, Any] = host.manifest  # type: ignore[attr-defined]
    path = Path(host.path)  # type: ignore[attr-defined]
    root = embedded_root(path)
    return WorkerSpec(
        dict(manifest["extractor"]),
        None if root is None else str(root.resolve()),
        str(path),
        host.dim,
        host.decode_limits,
        host.fetch_settings,
        threads,
    )


def _blocks(host: IngestHost, records: Iterable[IngestRecord], size: int, refresh: bool) -> Iterator[bytes]:
    """The records in blocks of ``size``, each with its stored state (None where a stored picture's file is gone,
    so it is embedded again, as the plain ingest does)."""
    root = host.pictures.root
    batch: list[IngestRecord] = []

    def block() -> bytes:
        states = host.backend.states([r.product.id for r in batch])
        items = []
        for r in batch:
            state = states.get(r.product.id)
            files = [p.image_file for p in state.all_pictures()] if state is not None else []
            if any(f and not (root / f).is_file() for f in files):
                state = None
            items.append((r, state))
        return pickle.dumps((items, refresh), protocol=pickle.HIGHEST_PROTOCOL)

    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield block()
            batch = []
    if batch:
        yield block()


def _connect(ray: Any, options: RayOptions) -> bool:
    """Join the cluster (or start a local one); True when this call started Ray, which the caller shuts down."""
    if ray.is_initialized():
        return False
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        cpus = options.local_cpus or len(os.sched_getaffinity(0))
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)  # loopback only
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise CatalogError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return True


def _dataset(ray: Any, blocks: list[bytes], spec: WorkerSpec, options: RayOptions) -> Any:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the ingest's own progress bar says how far it is
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars and deprecations
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    actors = options.actors or max(1, int(cpus // options.cpus_per_actor))
    ds = ray.data.from_items([{"items": b} for b in blocks], override_num_blocks=len(blocks))
    return ds.map_batches(
        EmbedActor.for_spec(spec),
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(blocks))),
        num_cpus=options.cpus_per_actor,
    )


def ray_ingest(
    host: IngestHost,
    records: Iterable[IngestRecord],
    batch_size: int = 64,
    refresh: bool = False,
    progress: Callable[[IngestProgress], None] | None = None,
    options: RayOptions | None = None,
) -> IngestReport:
    """Add or update products as :func:`~lookalike.catalog.ingest.ingest` does, the preparing and embedding done by
    an actor pool on a Ray cluster (see the module docstring); ``batch_size`` products per block and commit."""
    if not ray_available():
        raise LookalikeError(f"the Ray ingest needs Ray: {RAY_EXTRA}")
    import ray
    import ray.data

    options = options or RayOptions()
    report = IngestReport()
    started = _connect(ray, options)
    start = time.perf_counter()  # the ingest's clock, as the plain one's: without a local cluster's start-up
    writer = ThreadPoolExecutor(1, thread_name_prefix="lookalike-writer")
    io_pool = ThreadPoolExecutor(16, thread_name_prefix="lookalike-pictures")
    writing: list[tuple[Future[list[str]], int]] = []  # the commit in flight, and the products done after it
    results: Any = None

    flush = partial(wait_commits, writing, report, progress)

    try:
        blocks = list(_blocks(host, records, max(1, batch_size), refresh))
        if blocks:
            spec = worker_spec(host, max(1, int(options.cpus_per_actor)))
            ds = _dataset(ray, blocks, spec, options)
            results = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
            done = 0
            for batch in results:
                for blob in batch["result"]:
                    prepared, vectors = pickle.loads(blob)
                    flush()  # the previous block's commit overlaps this block's wait
                    done += len(prepared)
                    writing.append((writer.submit(commit_batch, host, prepared, vectors, report, io_pool), done))
            flush()
    finally:
        with contextlib.suppress(Exception):
            if results is not None:
                results.close()  # stops the actor pool
        writer.shutdown(wait=True)  # an interrupted ingest still finishes the commit in flight
        io_pool.shutdown(wait=True)
        report.seconds = time.perf_counter() - start
        with contextlib.suppress(LookalikeError, OSError):
            host.checkpoint()
        if started:
            ray.shutdown()
    return report
