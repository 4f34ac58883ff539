"""A catalogue: products, their embeddings and pictures, searchable by image, URL or product.

By default a catalogue is a directory: ``manifest.json``, ``products.db`` (SQLite), ``index.<seq>.faiss``
and ``images/`` (a copy of every product picture, content-addressed); see
:mod:`lookalike.backends.embedded` for how the index and the store stay in step. With
``backend="milvus"`` the products and vectors live in a Milvus collection instead
(:mod:`lookalike.backends.milvus`). :class:`Catalog` owns what both share: the extractor, the ingest
pipeline, the pictures and the search API.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.backends.base import CatalogBackend, UpsertItem
from lookalike.backends.embedded import EmbeddedBackend, fsync_dir
from lookalike.catalog.pictures import PictureStore
from lookalike.errors import (
    CatalogError,
    CatalogExistsError,
    CatalogNotFoundError,
    InvalidQueryError,
    LookalikeError,
    ModelMismatchError,
    ProductNotFoundError,
)
from lookalike.extractors import DEFAULT_EXTRACTOR, Extractor, PreprocessCfg, create_extractor
from lookalike.extractors.base import with_mirror
from lookalike.extractors.quantize import preferred_extractor
from lookalike.fsutil import atomic_write
from lookalike.imaging import (
    DecodeLimits,
    FetchSettings,
    fetch_image_bytes,
    image_format,
    open_image_bytes,
    read_image_bytes,
)
from lookalike.index import IndexPolicy
from lookalike.manifest import MANIFEST, check_extractor, check_manifest, new_manifest
from lookalike.product import FILTER_FIELDS, Filters, Hit, Product
from lookalike.sources import IngestRecord

__all__ = ["Catalog", "IngestProgress", "IngestReport"]

BACKENDS = ("embedded", "milvus")
MAX_K = 1000
ImageInput = str | os.PathLike[str] | bytes | Image.Image


@dataclass
class IngestReport:
    """What an ingest did. ``failed`` holds ``(product id, image, reason)``."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str | None, str]] = field(default_factory=list)
    seconds: float = 0.0
    embedded: int = 0

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


@dataclass
class _Prepared:
    record: IngestRecord
    action: str  # "embed", "meta", "skip", "fail"
    array: np.ndarray | None = None  # the model input, or uint8 pixels (HWC) for the batched fast path
    sha: str | None = None
    data: bytes | None = None
    fmt: str | None = None
    error: str | None = None
    image: Image.Image | None = None


class Catalog:
    """A searchable product catalogue in one directory."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        backend: CatalogBackend | None = None,
        extractor: Extractor | None = None,
        decode_limits: DecodeLimits | None = None,
        fetch_settings: FetchSettings | None = None,
        images_dir: Path | None = None,
        index_policy: IndexPolicy | None = None,
        query_flip: bool = True,
    ) -> None:
        """Use :meth:`create` or :meth:`open`. ``path`` is the catalogue directory (embedded) or the
        collection name (Milvus); pictures go to ``images_dir`` (default ``path/images``). The embedded
        index follows ``index_policy`` (default: the one in the manifest). ``query_flip``: a search
        picture is embedded with its mirror image and each product scores the better of the two
        similarities (:func:`~lookalike.extractors.base.with_mirror`); catalogue vectors are never flipped."""
        self.path = path
        self.query_flip = query_flip
        self.manifest = manifest
        self.dim = int(manifest["extractor"]["dim"])
        self.decode_limits = decode_limits or DecodeLimits()
        self.fetch_settings = fetch_settings or FetchSettings()
        self._extractor = extractor
        self._extractor_lock = threading.Lock()
        if backend is None:
            policy = index_policy or IndexPolicy.from_dict(manifest.get("index", {}).get("policy"))
            backend = EmbeddedBackend(path, self.dim, policy)
        self.backend: CatalogBackend = backend
        self.pictures = PictureStore(images_dir if images_dir is not None else path / "images")

    @property
    def store(self) -> CatalogBackend:
        """The backend (kept under this name for the product-store reads: count, get, facets...)."""
        return self.backend

    @property
    def index(self) -> Any:
        """The embedded backend's FAISS index."""
        return getattr(self.backend, "index", None)

    # --- opening -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        extractor: str | Extractor | None = None,
        exist_ok: bool = False,
        backend: str = "embedded",
        uri: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> Catalog:
        """Create a catalogue at ``path`` for ``extractor`` (or open it when it exists and ``exist_ok``).

        With ``backend="milvus"``, ``path`` names the collection and ``uri`` the Milvus server
        (``http://host:19530``) or a local Milvus Lite file (``./catalog.db``). No ``extractor``: the
        default model, or its INT8 variant when that was measured within 0.01 mP@10 of it
        (:func:`lookalike.extractors.quantize.preferred_extractor`).
        """
        if extractor is None and not (exist_ok and backend == "embedded" and (Path(path) / MANIFEST).exists()):
            extractor = preferred_extractor(DEFAULT_EXTRACTOR)
        if backend == "milvus":
            from lookalike.backends.milvus import create_milvus_catalog

            return create_milvus_catalog(cls, str(path), extractor, exist_ok, uri, token, **kwargs)
        if backend != "embedded":
            raise CatalogError(f"unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")
        root = Path(path)
        if (root / MANIFEST).exists():
            if not exist_ok:
                raise CatalogExistsError(f"a catalogue already exists at {root}")
            return cls.open(root, extractor=extractor, **kwargs)
        if root.exists() and not root.is_dir():
            raise CatalogError(f"{root} exists and is not a directory")
        if root.is_dir() and any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise CatalogError(f"{root} is a non-empty directory that is not a lookalike catalogue")
        ext = extractor if isinstance(extractor, Extractor) else create_extractor(extractor or DEFAULT_EXTRACTOR)
        root.mkdir(parents=True, exist_ok=True)
        policy = kwargs.get("index_policy") or IndexPolicy()
        index = {"backend": "embedded", "type": "faiss-flat-ip", "metric": "cosine", "policy": policy.to_dict()}
        manifest = new_manifest(ext, index)
        atomic_write(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        fsync_dir(root)  # the manifest comes first: a crash before it leaves an empty folder
        (root / "images").mkdir(exist_ok=True)
        return cls(root, manifest, extractor=ext, **kwargs)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        extractor: str | Extractor | None = None,
        backend: str = "embedded",
        uri: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> Catalog:
        """Open an existing catalogue. Passing ``extractor`` checks it is the one the catalogue uses."""
        if backend == "milvus":
            from lookalike.backends.milvus import open_milvus_catalog

            return open_milvus_catalog(cls, str(path), extractor, uri, token, **kwargs)
        if backend != "embedded":
            raise CatalogError(f"unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")
        root = Path(path)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise CatalogNotFoundError(f"no lookalike catalogue at {root} (missing {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text())
            name = manifest["extractor"]["name"]
            int(manifest["extractor"]["dim"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"{manifest_path} is damaged: {exc}") from exc
        check_manifest(manifest, str(root))
        ext_obj = check_extractor(manifest, extractor, str(root))
        del name
        return cls(root, manifest, extractor=ext_obj, **kwargs)

    @property
    def extractor(self) -> Extractor:
        """The catalogue's extractor, loaded on first use."""
        if self._extractor is None:
            with self._extractor_lock:
                if self._extractor is None:
                    ext = create_extractor(self.manifest["extractor"]["name"])
                    if ext.dim != self.dim:
                        raise ModelMismatchError(
                            f"extractor {ext.name!r} now gives {ext.dim}-d vectors; the catalogue holds {self.dim}-d"
                        )
                    self._extractor = ext
        return self._extractor

    @property
    def extractor_name(self) -> str:
        return str(self.manifest["extractor"]["name"])

    def __len__(self) -> int:
        return self.store.count()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Checkpoint the index if it moved, record its type in the manifest, and close the backend."""
        with contextlib.suppress(LookalikeError, OSError):
            self._record_index()
        self.backend.close()

    # --- consistency ------------------------------------------------------------------------------
    def sync(self) -> None:
        """See other processes' writes now (searches do this by themselves)."""
        sync = getattr(self.backend, "sync", None)
        if sync is not None:
            sync()

    def checkpoint(self) -> None:
        """Persist the index (embedded backend); a no-op where the backend persists by itself."""
        self.backend.checkpoint()
        self._record_index()

    def _record_index(self) -> None:
        """Keep the manifest's ``index`` entry (type, IVF shape) in step with the embedded index."""
        if not isinstance(self.backend, EmbeddedBackend) or not (self.path / MANIFEST).is_file():
            return
        desc = self.backend.describe()
        entry = dict(self.manifest.get("index", {}))
        wanted = {**entry, "type": desc["index"], "params": desc.get("index_params", {})}
        wanted.setdefault("policy", self.backend.policy.to_dict())
        if wanted == entry:
            return
        self.manifest["index"] = wanted
        atomic_write(self.path / MANIFEST, (json.dumps(self.manifest, indent=2) + "\n").encode())

    def verify(self) -> dict[str, Any]:
        """Check that the index and the product store hold the same products."""
        return self.backend.verify()

    # --- images --------------------------------------------------------------------------------
    @property
    def images_dir(self) -> Path:
        """The folder of the catalogue's pictures (:class:`~lookalike.catalog.pictures.PictureStore`)."""
        return self.pictures.root

    def image_path(self, product_id: str) -> Path:
        """The stored picture of a product (always inside the catalogue's picture folder)."""
        return self.pictures.image_path(self.store, product_id)

    # --- ingest --------------------------------------------------------------------------------
    def _load_bytes(self, source: str) -> bytes:
        if source.lower().startswith(("http://", "https://")):
            data, _ = fetch_image_bytes(source, self.fetch_settings)
            return data
        return read_image_bytes(source, self.decode_limits)

    def _preparer(self, processes: bool) -> _Preparer:
        """What the decode workers run. The fast path (worker processes) needs a plain
        :class:`PreprocessCfg`: workers return resized uint8 pixels, normalised here per batch."""
        cfg = self.extractor.preprocess_cfg
        fast = _fast_cfg(self.extractor)
        return _Preparer(
            self.decode_limits,
            self.fetch_settings,
            cfg.size if cfg is not None else None,
            fast,
            None if processes and fast is not None else self.extractor,
        )

    def ingest(
        self,
        records: Iterable[IngestRecord],
        batch_size: int = 64,
        workers: int | None = None,
        refresh: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        processes: bool | None = None,
    ) -> IngestReport:
        """Add or update products in batches; each batch is one transaction (resumable).

        Unchanged products (same picture bytes, same metadata) are skipped without decoding, so running
        the same ingest again after an interruption finishes the rest. A product whose picture cannot
        be read is reported in ``IngestReport.failed`` and skipped; the rest of its batch goes on.

        A pipeline: ``workers`` worker processes (``processes=True``; the default on Linux for ingests
        of more than 256 records with a model whose preprocessing is a plain :class:`PreprocessCfg`) or
        threads read, hash, decode (JPEG ``draft``) and resize pictures two batches ahead; this thread
        normalises each batch and runs the model on it (for more than 256 records, the model's
        :meth:`~lookalike.extractors.Extractor.bulk` twin); a writer thread stores the batch's pictures
        (concurrently) and then its rows (one transaction) while the model works on the next batch.
        ``progress`` is called here, after each commit and before the next one starts.
        """
        report = IngestReport()
        start = time.perf_counter()
        size = len(records) if isinstance(records, Sized) else None
        big = size is None or size > 256
        if processes is None:
            processes = big and _fast_cfg(self.extractor) is not None
        processes = processes and _fast_cfg(self.extractor) is not None and _mp_context() is not None
        model = self.extractor.bulk() if big else self.extractor  # see Extractor.bulk
        n_workers = workers or (max(2, min(8, _cpus())) if processes else min(8, _cpus() + 2))
        preparer = self._preparer(processes)
        batches = _batched(records, batch_size)
        done = 0
        pool: Executor = (
            ProcessPoolExecutor(n_workers, mp_context=_mp_context(), initializer=_worker_init, initargs=(os.getpid(),))
            if processes
            else ThreadPoolExecutor(n_workers, thread_name_prefix="lookalike-ingest")
        )
        chunk = max(1, min(32, -(-batch_size // (2 * n_workers))))
        pending: deque[list[Future[list[_Prepared]]]] = deque()
        writing: list[tuple[Future[list[str]], int]] = []  # the commit in flight, and `done` after it
        io_pool = ThreadPoolExecutor(16, thread_name_prefix="lookalike-pictures")
        writer = ThreadPoolExecutor(1, thread_name_prefix="lookalike-writer")

        def flush() -> None:
            while writing:
                future, upto = writing.pop()
                committed = future.result()
                if progress is not None:
                    progress(IngestProgress(upto, committed, report))

        def step(futures: list[Future[list[_Prepared]]]) -> int:
            prepared = [p for f in futures for p in f.result()]
            vectors = self._embed(prepared, model)  # overlaps the previous batch's commit
            flush()
            writing.append((writer.submit(self._commit, prepared, vectors, report, io_pool), done + len(prepared)))
            return len(prepared)

        try:
            for batch in batches:
                pending.append(self._submit(pool, preparer, batch, refresh, chunk))
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
                self.checkpoint()
        return report

    def _submit(
        self,
        pool: Executor,
        preparer: _Preparer,
        batch: list[IngestRecord],
        refresh: bool,
        chunk: int,
    ) -> list[Future[list[_Prepared]]]:
        states = self.store.states([r.product.id for r in batch])
        items = [(r, states.get(r.product.id)) for r in batch]
        return [pool.submit(preparer, items[i : i + chunk], refresh) for i in range(0, len(items), chunk)]

    def _model_input(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Stack a batch; uint8 pixels from the fast path are normalised here (see :func:`_normalise`)."""
        batch = np.stack(arrays)
        cfg = _fast_cfg(self.extractor)
        if batch.dtype != np.uint8 or cfg is None:
            return batch
        return _normalise(cfg, batch)

    def _embed(self, prepared: list[_Prepared], model: Extractor) -> np.ndarray:
        """The vectors of a batch's pictures to embed, in order (``model``: the extractor or its bulk twin)."""
        arrays = [p.array for p in prepared if p.action == "embed"]
        if not arrays:
            return np.zeros((0, self.dim), np.float32)
        step = max(1, model.batch_size)  # the model's own batch: a commit batch may be larger
        return np.concatenate(
            [
                model.embed_preprocessed(self._model_input(arrays[i : i + step]))  # type: ignore[arg-type]
                for i in range(0, len(arrays), step)
            ]
        )

    def _commit(
        self,
        prepared: list[_Prepared],
        vectors: np.ndarray,
        report: IngestReport,
        io_pool: ThreadPoolExecutor | None = None,
    ) -> list[str]:
        """Store a batch's pictures, then its rows in one transaction; returns the ids written."""
        to_embed = [p for p in prepared if p.action == "embed"]
        existing = self.store.states([p.record.product.id for p in prepared])
        items: list[UpsertItem] = []
        errors: list[tuple[str, str | None, str]] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        vec_iter = iter(vectors)
        with self.pictures.locked():
            saved = self.pictures.save_many(to_embed, self.decode_limits, io_pool)
            for p in prepared:
                pid = p.record.product.id
                if p.action == "fail":
                    errors.append((pid, p.record.source, p.error or "unknown error"))
                    continue
                if p.action == "skip":
                    counts["unchanged"] += 1
                    continue
                if p.action == "meta":
                    items.append(UpsertItem(p.record.product, None))
                    counts["updated"] += 1
                    continue
                vec = next(vec_iter)
                rel = saved[id(p)]
                if isinstance(rel, Exception):
                    errors.append((pid, p.record.source, f"cannot store image: {rel}"))
                    continue
                items.append(UpsertItem(p.record.product, vec, image_sha=p.sha, image_file=rel))
                counts["updated" if pid in existing else "added"] += 1
            self.backend.upsert(items, errors)
        report.added += counts["added"]
        report.updated += counts["updated"]
        report.unchanged += counts["unchanged"]
        report.embedded += len(to_embed)
        report.failed.extend(errors)
        return [it.product.id for it in items]

    def upsert(self, product: Product, image: ImageInput | None = None) -> str:
        """Add or update one product. With no ``image``, only its metadata changes (it must exist)."""
        if image is None:
            if self.store.get(product.id) is None:
                raise ProductNotFoundError(f"no product with id {product.id!r}; a new product needs an image")
            self.backend.upsert([UpsertItem(product, None)])
            return "updated"
        data = self._image_bytes(image)
        sha = hashlib.sha256(data).hexdigest()
        img = open_image_bytes(data, self.decode_limits)
        fmt, _ = image_format(data)
        prep = _Prepared(IngestRecord(product, product.image), "embed", sha=sha, data=data, fmt=fmt, image=img)
        vec = self.extractor.embed([img])[0]
        with self.pictures.locked():
            rel = self.pictures.save(prep, self.decode_limits)
            existed = self.store.get(product.id) is not None
            self.backend.upsert([UpsertItem(product, vec, image_sha=sha, image_file=rel)])
        return "updated" if existed else "added"

    def delete(self, product_ids: Sequence[str]) -> int:
        """Delete products by id; returns how many existed. Their pictures go when no product uses them."""
        with self.pictures.locked():
            n, files = self.backend.delete(list(product_ids))
            self.pictures.remove_unused(files, self.backend.image_file_in_use)
        return n

    # --- search --------------------------------------------------------------------------------
    def _image_bytes(self, image: ImageInput) -> bytes:
        if isinstance(image, Image.Image):
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="PNG")
            return buf.getvalue()
        if isinstance(image, bytes | bytearray | memoryview):
            return bytes(image)
        text = os.fspath(image)
        if text.lower().startswith(("http://", "https://")):
            return self._load_bytes(text)
        return read_image_bytes(text, self.decode_limits)

    def _query_image(self, image: ImageInput) -> Image.Image:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        size = self.extractor.preprocess_cfg.size if self.extractor.preprocess_cfg else None
        name = "image" if isinstance(image, bytes | bytearray | memoryview) else Path(os.fspath(image)).name
        return open_image_bytes(self._image_bytes(image), self.decode_limits, draft_size=size, name=name)

    def embed_query(self, image: ImageInput) -> np.ndarray:
        """The vector of an image (path, URL, bytes or PIL image), as the catalogue's vectors are made."""
        return self.extractor.embed([self._query_image(image)])[0]

    def query_vectors(self, image: ImageInput) -> np.ndarray:
        """What a search with this image looks for: (1, dim), or with :attr:`query_flip` (2, dim), the
        picture's and its mirror image's vectors (one batch of the model)."""
        img = self._query_image(image)
        return self.extractor.embed(with_mirror(img) if self.query_flip else [img])

    def search(
        self,
        image: ImageInput | None = None,
        *,
        url: str | None = None,
        product_id: str | None = None,
        vector: np.ndarray | None = None,
        k: int = 10,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """Products most like the query: an image (path, bytes, PIL), an image ``url``, a catalogue
        ``product_id`` ("more like this": the product itself is left out) or a ``vector``."""
        _check_k(k)
        given = [x is not None for x in (image, url, product_id, vector)]
        if sum(given) != 1:
            raise InvalidQueryError("give exactly one of image, url, product_id or vector")
        exclude: set[str] = set()
        if product_id is not None:
            vec = self.store.vector_of(product_id)
            if vec is None:
                raise ProductNotFoundError(f"no product with id {product_id!r}")
            exclude.add(product_id)
        elif url is not None or image is not None:
            if url is not None and not url.lower().startswith(("http://", "https://")):
                raise InvalidQueryError("url must start with http:// or https://")
            views = self.query_vectors(url if url is not None else image)  # type: ignore[arg-type]
            return merge_views(self.search_vectors(views, k=k, filters=filters), k)
        else:
            vec = np.asarray(vector, dtype=np.float32)
        return self.search_vectors(vec[None, :], k=k, filters=filters, exclude=[exclude])[0]

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filters: Filters | None = None,
        exclude: Sequence[set[str]] | None = None,
    ) -> list[list[Hit]]:
        """Search a batch of query vectors; ``exclude[i]`` lists product ids to leave out of query i."""
        _check_k(k)
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if not np.all(np.isfinite(q)):
            raise InvalidQueryError("query vector has NaN or infinite values")
        extra = max((len(e) for e in exclude), default=0) if exclude else 0
        found = self.backend.search(q, k + extra, filters)
        out: list[list[Hit]] = []
        for qi, row in enumerate(found):
            skip = exclude[qi] if exclude else set()
            hits = [Hit(p.id, score, p) for p, score in row if p.id not in skip][:k]
            out.append(hits)
        return out

    def search_many(
        self, images: Sequence[ImageInput], k: int = 10, filters: Filters | None = None, batch_size: int = 32
    ) -> list[list[Hit] | LookalikeError]:
        """Search many query images at once (batched embedding); a query that fails gives its error."""
        _check_k(k)
        results: list[list[Hit] | LookalikeError] = [InvalidQueryError("not run")] * len(images)

        def prep(image: ImageInput) -> list[np.ndarray] | LookalikeError:
            try:
                img = self._query_image(image)
                return [self.extractor.preprocess(v) for v in (with_mirror(img) if self.query_flip else [img])]
            except LookalikeError as exc:
                return exc
            except Exception as exc:
                return InvalidQueryError(f"unexpected {type(exc).__name__}: {exc}")

        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) + 2)) as pool:
            for start in range(0, len(images), batch_size):
                chunk = list(pool.map(prep, images[start : start + batch_size]))
                good = [(i, a) for i, a in enumerate(chunk) if isinstance(a, list)]
                for i, a in enumerate(chunk):
                    if isinstance(a, LookalikeError):
                        results[start + i] = a
                if good:
                    vecs = self.extractor.embed_preprocessed(np.stack([x for _, a in good for x in a]))
                    found = iter(self.search_vectors(vecs, k=k, filters=filters))
                    for i, views in good:
                        results[start + i] = merge_views([next(found) for _ in views], k)
        return results

    # --- browsing ------------------------------------------------------------------------------
    def get(self, product_id: str) -> Product:
        product = self.store.get(product_id)
        if product is None:
            raise ProductNotFoundError(f"no product with id {product_id!r}")
        return product

    def products(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]:
        return self.store.list(filters, offset=offset, limit=limit)

    def count(self, filters: Filters | None = None) -> int:
        return self.backend.count(filters)

    def facets(self, fields: Sequence[str] = FILTER_FIELDS) -> dict[str, list[tuple[Any, Any]]]:
        """Distinct values and counts of the filter fields (and the price range)."""
        return self.backend.facets(fields)

    def info(self) -> dict[str, Any]:
        folders = {self.images_dir}
        if isinstance(self.backend, EmbeddedBackend):
            folders = {self.path}
        size = sum(p.stat().st_size for f in folders if f.exists() for p in f.rglob("*") if p.is_file())
        return {
            "path": str(self.path),
            "products": len(self),
            "extractor": self.manifest["extractor"]["name"],
            "dim": self.dim,
            **self.backend.describe(),
            "ingest_errors": len(self.backend.errors()),
            "bytes_on_disk": size,
            "created": self.manifest.get("created"),
            "lookalike_version": self.manifest.get("lookalike_version"),
        }


def merge_views(hit_lists: Sequence[list[Hit]], k: int) -> list[Hit]:
    """The top ``k`` of several views of one query (a picture and its mirror image): each product
    scores its best view. Exact: the top ``k`` by best view lie in the union of each view's top ``k``."""
    if len(hit_lists) == 1:
        return hit_lists[0][:k]
    best: dict[str, Hit] = {}
    for hits in hit_lists:
        for hit in hits:
            known = best.get(hit.id)
            if known is None or hit.score > known.score:
                best[hit.id] = hit
    return sorted(best.values(), key=lambda h: -h.score)[:k]


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_K:
        raise InvalidQueryError(f"k must be between 1 and {MAX_K}")


_AHEAD = 2  # batches being decoded while the model works on the current one


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


def _worker_init(parent: int) -> None:
    """In each decode worker: die with the ingest that forked it (``PR_SET_PDEATHSIG``: a SIGKILLed
    ingest leaves no orphans holding its pipes), and leave Ctrl-C to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _fast_cfg(extractor: Extractor) -> PreprocessCfg | None:
    """The extractor's preprocessing when it is exactly :meth:`PreprocessCfg.to_array` (so workers can
    resize and the batch can be normalised at once), else None."""
    cfg = extractor.preprocess_cfg
    if cfg is None or type(cfg) is not PreprocessCfg or type(extractor).preprocess is not Extractor.preprocess:
        return None
    return cfg


def _normalise(cfg: PreprocessCfg, batch: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> the model's float32 input, bit-identical to :meth:`PreprocessCfg.to_array`
    (the same float32 subtraction and division): the subtraction reads the uint8 pixels through a
    transposed view and writes float32 straight into the output layout, the division runs in place
    (0.16 ms per 224-px picture; a per-channel table lookup took 0.33, NumPy casting its uint8 indices
    to int64 first)."""
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    n, h, w, _ = batch.shape
    if cfg.layout == "NCHW":
        out = np.empty((n, 3, h, w), dtype=np.float32)
        src, mean, std = batch.transpose(0, 3, 1, 2), mean[:, None, None], std[:, None, None]
    else:
        out = np.empty((n, h, w, 3), dtype=np.float32)
        src = batch
    np.subtract(src, mean, out=out, dtype=np.float32, casting="unsafe")
    np.divide(out, std, out=out)
    return out


@dataclass(frozen=True)
class _Preparer:
    """Reads, hashes, decodes and preprocesses pictures; runs in worker processes or threads.

    With ``fast`` the result is the resized uint8 picture (the parent normalises the batch); otherwise
    ``extractor.preprocess`` (threads only)."""

    limits: DecodeLimits
    fetch: FetchSettings
    draft: int | None
    fast: PreprocessCfg | None
    extractor: Extractor | None

    def __call__(self, items: list[tuple[IngestRecord, Any]], refresh: bool) -> list[_Prepared]:
        return [self.prepare(record, state, refresh) for record, state in items]

    def load(self, source: str) -> bytes:
        if source.lower().startswith(("http://", "https://")):
            data, _ = fetch_image_bytes(source, self.fetch)
            return data
        return read_image_bytes(source, self.limits)

    def prepare(self, record: IngestRecord, state: Any, refresh: bool) -> _Prepared:
        src = record.source
        if not src:
            return _Prepared(record, "fail", error="no image given for this product")
        meta_same = state is not None and state.meta_hash == record.product.metadata_hash()
        is_url = src.lower().startswith(("http://", "https://"))
        if state is not None and not refresh and is_url and state.image == src and state.image_sha:
            return _Prepared(record, "skip" if meta_same else "meta")
        try:
            data = self.load(src)
            sha = hashlib.sha256(data).hexdigest()
            if state is not None and not refresh and state.image_sha == sha:
                return _Prepared(record, "skip" if meta_same else "meta")
            img = open_image_bytes(data, self.limits, draft_size=self.draft, name=Path(src).name)
            fmt = (img.format or "").upper() or image_format(data)[0]
            if self.fast is not None:
                arr = np.asarray(self.fast.resize(img.convert("RGB")), dtype=np.uint8)
            elif self.extractor is not None:
                arr = self.extractor.preprocess(img)
            else:  # pragma: no cover - _preparer never builds this
                raise CatalogError("no preprocessing available in this worker")
            return _Prepared(record, "embed", array=arr, sha=sha, data=data, fmt=fmt, image=None)
        except LookalikeError as exc:
            return _Prepared(record, "fail", error=str(exc))
        except Exception as exc:  # a bug in a decoder must not stop the whole ingest
            return _Prepared(record, "fail", error=f"unexpected {type(exc).__name__}: {exc}")


def _batched(records: Iterable[IngestRecord], size: int) -> Iterator[list[IngestRecord]]:
    batch: list[IngestRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
