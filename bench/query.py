"""Query latency, ANN recall and index size: lookalike against the seed-style pipeline, side by side.

    python bench/ingest.py --full                # first: the 44k catalogue this grows from
    python bench/query.py                        # 10k, 44k and 1M products
    python bench/query.py --sizes 10000 44441 --queries 50

For each catalogue size: end-to-end latency of a shopper's photo upload (decode, embed, search, fetch the
products' metadata: ``Catalog.search(bytes)``), p50/p95, split into embedding and search; the seed-style
pipeline's latency on the same photos (PyTorch one picture, brute-force Euclidean in numpy over every
vector, metadata from a dict); the index type and bytes per product. Where the index is approximate:
recall@10 against exact search (all stored vectors, ties counted as hits), and search-only queries/s
(one query at a time, and batches of 64). Catalogues above the 44k one are the 44k real products plus
synthetic ones (bench/common.py), built once under ``.lookalike/bench/``; the first open builds the
index (timed) and checkpoints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    PHOTOS,
    SeedPipeline,
    build_catalog,
    catalog_vectors,
    load_average,
    machine,
    summary_ms,
    write_json,
)

from lookalike import Catalog, Filters
from lookalike.catalog import merge_views


def photos(n: int, seed: int = 0) -> list[bytes]:
    files = sorted(PHOTOS.glob("*.jpg"))
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i].read_bytes() for i in sorted(pick)]


def seed_matrix(n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    """The seed's own ``n`` x ``dim`` float32 vectors (its model's 1280-d features; their values do not
    change brute-force timing, so seeded random ones stand in)."""
    rng = np.random.default_rng(3)
    out = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        out[lo : lo + chunk] = rng.random((min(chunk, n - lo), dim), dtype=np.float32)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products (scores, row numbers), in chunks."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for lo in range(0, len(vectors), chunk):
        sims = queries @ vectors[lo : lo + chunk].T
        s = np.concatenate([best_s, sims], axis=1)
        i = np.concatenate([best_i, np.arange(lo, lo + sims.shape[1])[None, :].repeat(len(queries), 0)], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_s, best_i


def recall_at_10(cat: Catalog, ids: list[str], vectors: np.ndarray, queries: np.ndarray) -> float:
    """Mean recall@10 of ``cat.search_vectors`` against exact search; a hit scoring at least the exact
    10th score counts (ties)."""
    scores, rows = exact_top(vectors, queries, 10)
    got = cat.search_vectors(queries, k=10)
    hits = 0
    for qi, row in enumerate(got):
        truth = {ids[r] for r in rows[qi]}
        kth = float(np.min(scores[qi]))
        hits += sum(h.id in truth or h.score >= kth - 1e-6 for h in row)
    return hits / (10 * len(queries))


def sweep(cat: Catalog, ids: list[str], vectors: np.ndarray, qv: np.ndarray) -> list[dict[str, Any]]:
    """Recall@10 and search latency for a grid of ``nprobe`` and re-ranked candidates."""
    import dataclasses

    backend = cat.backend
    policy, nprobe = backend.policy, backend.index.nprobe
    rows = []
    try:
        for probes in (8, 16, 32, 64, 128):
            for rerank in (0, 50, 100, 200):
                backend.index.nprobe = probes
                backend.policy = dataclasses.replace(policy, nprobe=probes, rerank=rerank)
                times = []
                for v in qv[:100]:
                    t0 = time.perf_counter()
                    cat.search_vectors(v[None, :], k=10)
                    times.append(time.perf_counter() - t0)
                rows.append(
                    {
                        "nprobe": probes,
                        "rerank": rerank,
                        "recall_at_10": round(recall_at_10(cat, ids, vectors, qv), 4),
                        "search_p50_ms": summary_ms(times)["p50_ms"],
                    }
                )
                print("  sweep", rows[-1], file=sys.stderr, flush=True)
    finally:
        backend.policy, backend.index.nprobe = policy, nprobe
    return rows


def bench_size(
    path: Path, queries: list[bytes], seed: SeedPipeline, n_seed: int, full: bool, grid: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t = time.perf_counter()
    cat = Catalog.open(path)
    cat.sync()  # loads the checkpoint, or builds the index
    out["open_s"] = round(time.perf_counter() - t, 1)
    cat.checkpoint()
    info = cat.backend.describe()
    n = len(cat)
    out.update(products=n, index=info["index"], index_params=info.get("index_params", {}))
    out["index_bytes_per_product"] = round(info["index_bytes"] / n, 1)
    ckpt = sorted(path.glob("index.*.faiss"))
    out["checkpoint_bytes_per_product"] = round(ckpt[-1].stat().st_size / n, 1) if ckpt else None
    for q in queries[:5]:
        cat.search(q, k=10)  # warm-up: model, page cache
    total, embed, search = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = cat.search(q, k=10)
        total.append(time.perf_counter() - t0)
        assert len(hits) == 10 and hits[0].product.id
        t0 = time.perf_counter()
        views = cat.query_vectors(q)  # the picture and its mirror image (Catalog.query_flip)
        t1 = time.perf_counter()
        merge_views(cat.search_vectors(views, k=10), 10)
        t2 = time.perf_counter()
        embed.append(t1 - t0)
        search.append(t2 - t1)
    out["end_to_end"] = summary_ms(total)
    out["embed"] = summary_ms(embed)
    out["search_and_metadata"] = summary_ms(search)
    t_filter = []
    filters = Filters(article_type="Tshirts")
    for q in queries[:30]:
        vec = cat.embed_query(q)
        t0 = time.perf_counter()
        cat.search_vectors(vec[None, :], k=10, filters=filters)
        t_filter.append(time.perf_counter() - t0)
    out["search_filtered_tshirts"] = summary_ms(t_filter)

    ids, vectors = catalog_vectors(path)
    seed_vectors = seed_matrix(len(ids), seed.dim)
    meta = {pid: cat.get(pid) for pid in ids[:1]}  # a seed keeps metadata in a dict: lookups are free
    seed_total = []
    for q in queries[:n_seed]:
        import io

        from PIL import Image

        t0 = time.perf_counter()
        img_path = CACHE / "seed-query.jpg"
        Image.open(io.BytesIO(q)).save(img_path)  # the seed reads its query from a file
        rows = seed.nearest(seed_vectors, seed.embed_file(img_path), 10)
        _ = [meta.get(ids[r]) for r in rows]
        seed_total.append(time.perf_counter() - t0)
    out["seed_style_end_to_end"] = summary_ms(seed_total)
    del seed_vectors
    out["x_faster_than_seed_p50"] = round(out["seed_style_end_to_end"]["p50_ms"] / out["end_to_end"]["p50_ms"], 1)

    if full or info["index"] != "faiss-flat-ip":
        rng = np.random.default_rng(7)
        photo_vecs = np.stack([cat.embed_query(q) for q in queries[:100]])
        catalogue_vecs = vectors[rng.choice(len(vectors), 100, replace=False)]
        qv = np.concatenate([photo_vecs, catalogue_vecs]).astype(np.float32)
        out["recall_at_10"] = round(recall_at_10(cat, ids, vectors, qv), 4)
        t0 = time.perf_counter()
        for v in qv:
            cat.search_vectors(v[None, :], k=10)
        out["search_queries_per_s_single"] = round(len(qv) / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        for lo in range(0, len(qv), 64):
            cat.search_vectors(qv[lo : lo + 64], k=10)
        out["search_queries_per_s_batch64"] = round(len(qv) / (time.perf_counter() - t0), 1)
        if grid and info["index"] != "faiss-flat-ip":
            out["sweep"] = sweep(cat, ids, vectors, qv)
    del vectors
    cat.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=CACHE / "catalog-44k", help="an ingested catalogue")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 44_441, 1_000_000])
    parser.add_argument("--queries", type=int, default=100, help="photo uploads per size")
    parser.add_argument("--seed-queries", type=int, default=20, help="of which the seed pipeline runs")
    parser.add_argument("--sweep", action="store_true", help="recall/latency grid of nprobe x re-ranking")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.source / "manifest.json").is_file():
        sys.exit(f"no catalogue at {args.source}: run `python bench/ingest.py --full` first")
    out: dict[str, Any] = {"machine": machine(), "source": str(args.source), "sizes": {}}
    queries = photos(args.queries)
    seed = SeedPipeline()
    with Catalog.open(args.source) as src:
        source_n = len(src)
    for n in args.sizes:
        path = args.source if n == source_n else build_catalog(CACHE / f"catalog-{n}", args.source, n)
        t = time.perf_counter()
        out["sizes"][str(n)] = bench_size(path, queries, seed, args.seed_queries, n == source_n, args.sweep)
        out["sizes"][str(n)]["bench_s"] = round(time.perf_counter() - t, 1)
        out["sizes"][str(n)]["load_average"] = load_average()
        print(n, out["sizes"][str(n)], file=sys.stderr, flush=True)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
