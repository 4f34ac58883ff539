"""The Milvus backend (Milvus Lite, or a server) next to the embedded one (SQLite + FAISS), in one run.

The products of the Kaggle "Fashion Product Images (Small)" catalogue (44,441 pictures) are embedded
once with ``--model`` and the vectors cached (``--cache``), so what is measured is the backends, not the
model. Then, side by side:

* ingest: products (metadata + precomputed vector) written in batches of ``--batch`` through the
  backend's ``upsert``, plus the final checkpoint (FAISS file / Milvus flush); products per second;
* query latency of ``Catalog.search_vectors`` (top-10, product metadata included) for ``--queries``
  catalogue vectors, without a filter and with two filters; p50/p95 per backend. The two backends
  answer each query in turn, alternating which goes first;
* agreement: share of queries whose top-10 ids are the same set, and whose ranked scores are the same
  (a different id at an equal score is a tie broken another way; both indexes are exact by default);
* ``count`` with a filter and ``facets()`` once each, and with ``--migrate`` the rate of
  ``lookalike migrate`` from the embedded catalogue to a new Milvus collection.

    python bench/milvus_vs_embedded.py [--limit N] [--queries 200] [--model colour-histogram] [--migrate]
    python bench/milvus_vs_embedded.py --milvus-uri http://host:19530 --milvus-token user:password

On a shared machine, ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` keeps FAISS and numpy threads from
fighting other jobs (the figures in docs/scaling.md were taken that way).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lookalike import Catalog, Filters, create_extractor, read_csv
from lookalike.backends.base import UpsertItem
from lookalike.config import lookalike_home
from lookalike.imaging import load_image
from lookalike.product import Product

DATASET = Path(os.environ.get("LOOKALIKE_DATASETS", "/work/shared/datasets")) / "fashion-product-images-small"
FILTERS: dict[str, Filters | None] = {
    "none": None,
    "gender=Women": Filters(gender="Women"),
    "article_type=Tshirts, colour=black": Filters(article_type="Tshirts", colour="black"),
}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def load_vectors(model: str, limit: int | None, cache: Path) -> tuple[list[Product], np.ndarray]:
    """The dataset's products and their vectors (embedded once, then read from ``cache``)."""
    records = list(read_csv(DATASET / "labels.csv"))
    records = [r for r in records if r.source and Path(r.source).is_file()]
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{DATASET.name}-{model}.npz"
    vectors: dict[str, np.ndarray] = {}
    if path.is_file():
        data = np.load(path)
        vectors = dict(zip(data["ids"].tolist(), data["vectors"], strict=True))
    wanted = records[:limit] if limit else records
    todo = [r for r in wanted if r.product.id not in vectors]
    if todo:
        ext = create_extractor(model)
        print(f"embedding {len(todo)} pictures with {model} (cached in {path}) ...", flush=True)
        start = time.perf_counter()

        def prep(source: str) -> np.ndarray:
            return ext.preprocess(load_image(source))

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for i in range(0, len(todo), 256):
                chunk = todo[i : i + 256]
                arrays = list(pool.map(prep, [str(r.source) for r in chunk]))
                for r, v in zip(chunk, ext.embed_preprocessed(np.stack(arrays)), strict=True):
                    vectors[r.product.id] = v
                if (i // 256) % 20 == 0:
                    print(f"  {i + len(chunk)} / {len(todo)} ({time.perf_counter() - start:.0f} s)", flush=True)
        ids = sorted(vectors)
        np.savez(path, ids=np.array(ids), vectors=np.stack([vectors[i] for i in ids]))
    return [r.product for r in wanted], np.stack([vectors[r.product.id] for r in wanted]).astype(np.float32)


def exact_embedded(n: int, dim: int) -> dict[str, Any]:
    """Options that keep the embedded index exact (FAISS flat) at ``n`` products, where lookalike has an
    index policy (past a size threshold it would switch to IVF)."""
    try:
        from lookalike.index import IndexPolicy  # type: ignore[attr-defined]
    except ImportError:
        return {}
    budget_mb = max(1024.0, 2 * n * (4 * dim + 8) / 2**20)
    return {"index_policy": IndexPolicy(exact_max=max(n, 1), memory_budget_mb=budget_mb)}


def ingest(cat: Catalog, products: list[Product], vectors: np.ndarray, batch: int) -> float:
    """Write every product through the backend; returns seconds (checkpoint included)."""
    start = time.perf_counter()
    for i in range(0, len(products), batch):
        items = [
            UpsertItem(p, v, image_sha=f"sha-{p.id}", image_file=None)
            for p, v in zip(products[i : i + batch], vectors[i : i + batch], strict=True)
        ]
        cat.backend.upsert(items)
    cat.checkpoint()
    return time.perf_counter() - start


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="colour-histogram", help="extractor that makes the vectors")
    parser.add_argument("--limit", type=int, default=None, help="only the first N products")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500, help="products per upsert")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--migrate", action="store_true", help="also time a migration embedded -> Milvus")
    parser.add_argument("--cache", type=Path, default=lookalike_home() / "bench")
    parser.add_argument("--milvus-uri", default=None, help="a Milvus server (default: a Milvus Lite file)")
    parser.add_argument("--milvus-token", default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="where the catalogues go (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()

    products, vectors = load_vectors(args.model, args.limit, args.cache)
    n = len(products)
    ext = create_extractor(args.model)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lookalike-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    uri = args.milvus_uri or str(work / "milvus.db")
    lite = args.milvus_uri is None
    milvus_label = "Milvus Lite" if lite else "Milvus server"
    collection = f"bench_{os.getpid()}"
    milvus_opts: dict[str, Any] = {"backend": "milvus", "uri": uri, "token": args.milvus_token}
    if not lite:
        milvus_opts["images_dir"] = work / "milvus-images"
    print(f"{n} products, {vectors.shape[1]}-d {args.model} vectors; catalogues in {work}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    cats = {
        "embedded": Catalog.create(work / "embedded", extractor=ext, **exact_embedded(n, int(vectors.shape[1]))),
        "milvus": Catalog.create(collection, extractor=ext, **milvus_opts),
    }
    figures: dict[str, Any] = {"products": n, "dim": int(vectors.shape[1]), "model": args.model, "k": args.k}
    for name, cat in cats.items():
        seconds = ingest(cat, products, vectors, args.batch)
        figures[f"{name}.ingest_per_s"] = n / seconds
        figures[f"{name}.ingest_s"] = seconds
        print(f"ingest {name:<12} {n / seconds:8.0f} products/s ({seconds:.1f} s)", flush=True)

    rng = np.random.default_rng(args.seed)
    picks = rng.choice(n, size=min(args.queries, n), replace=False)
    for label, filters in FILTERS.items():
        latency: dict[str, list[float]] = {name: [] for name in cats}
        same = same_scores = 0
        for qi, idx in enumerate(picks):
            q = vectors[idx][None, :]
            order = list(cats) if qi % 2 == 0 else list(reversed(cats))
            hits: dict[str, list[Any]] = {}
            for name in order:
                start = time.perf_counter()
                hits[name] = cats[name].search_vectors(q, k=args.k, filters=filters)[0]
                latency[name].append((time.perf_counter() - start) * 1000)
            a, b = hits["embedded"], hits["milvus"]
            same += {h.id for h in a} == {h.id for h in b}
            # the same ranked scores: a different id at the same score is a tie broken another way
            same_scores += len(a) == len(b) and np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        for name, values in latency.items():
            figures[f"{name}.search[{label}].p50_ms"] = percentile(values, 50)
            figures[f"{name}.search[{label}].p95_ms"] = percentile(values, 95)
        figures[f"agreement[{label}]"] = same / len(picks)
        figures[f"agreement_ties_aside[{label}]"] = same_scores / len(picks)
        print(
            f"search [{label}]: "
            + ", ".join(
                f"{name} p50 {percentile(v, 50):.2f} ms p95 {percentile(v, 95):.2f} ms" for name, v in latency.items()
            )
            + f"; same top-{args.k} ids: {same}/{len(picks)}, same scores: {same_scores}/{len(picks)}",
            flush=True,
        )

    one_filter = Filters(gender="Women")
    for name, cat in cats.items():
        count, seconds = timed(lambda c=cat: c.count(one_filter))
        figures[f"{name}.count_ms"] = seconds * 1000
        _, seconds_f = timed(cat.facets)
        figures[f"{name}.facets_ms"] = seconds_f * 1000
        print(f"{name:<12} count(gender=Women)={count} in {seconds * 1000:.1f} ms, facets in {seconds_f:.2f} s")

    if args.migrate:
        from lookalike.migrate import migrate_catalog

        cats["embedded"].close()
        report = migrate_catalog(
            work / "embedded",
            f"{collection}_migrated",
            dst_uri=uri,
            dst_token=args.milvus_token,
            dst_options={"images_dir": work / "migrated-images"},
            batch_size=args.batch,
        )
        figures["migrate.per_s"] = report.products_per_second
        print(
            f"migrate embedded -> {milvus_label}: {report.products_per_second:.0f} products/s ({report.seconds:.1f} s)"
        )

    if not lite:  # leave nothing behind on a server
        client = cats["milvus"].backend.client
        for suffix in ("", "_migrated"):
            for extra in ("", "__lookalike_errors"):
                if client.has_collection(collection + suffix + extra):
                    client.drop_collection(collection + suffix + extra)
    for cat in cats.values():
        cat.close()
    figures["load_average_end"] = os.getloadavg()[0]
    print(f"load average {figures['load_average_end']:.1f} at the end")
    e, m = figures["embedded.ingest_per_s"], figures["milvus.ingest_per_s"]
    print(f"\n| measure | embedded | {milvus_label} | ratio |\n|---|---:|---:|---:|")
    print(f"| ingest (products/s) | {e:.0f} | {m:.0f} | {e / m:.1f}x |")
    for label in FILTERS:
        for q in ("p50", "p95"):
            a = figures[f"embedded.search[{label}].{q}_ms"]
            b = figures[f"milvus.search[{label}].{q}_ms"]
            print(f"| search {q}, filter {label} (ms) | {a:.1f} | {b:.1f} | {b / a:.1f}x |")
    print(f"| count(gender=Women) (ms) | {figures['embedded.count_ms']:.1f} | {figures['milvus.count_ms']:.1f} | |")
    print(f"| facets() (ms) | {figures['embedded.facets_ms']:.0f} | {figures['milvus.facets_ms']:.0f} | |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.workdir is None:
        if lite:  # stop this process's Milvus Lite server before removing its files
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(Path(uri).resolve()))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
