"""Which IVF codes: recall@10 after re-ranking, search time and bytes per product for SQ8, SQ4 and PQ.

    python bench/ann_codes.py                    # 200k vectors grown from the 44k catalogue
    python bench/ann_codes.py --n 1000000 --nlist 2048

Vectors: the ingested 44k catalogue's (``.lookalike/bench/catalog-44k``) plus synthetic ones around them
(bench/common.py). Queries: 100 shopper's photos embedded with the catalogue's model and 100 held-out
catalogue vectors. Ground truth: exact inner product. For each code and ``nprobe``, the top
``rerank`` candidates are re-scored exactly (what the embedded backend does) before taking the top 10.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, PHOTOS, Synthesizer, catalog_vectors, load_average, machine, write_json

from lookalike import Catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=CACHE / "catalog-44k")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--codes", nargs="*", default=["SQ8", "SQ4", "PQ{m}np", "PQ{m2}np"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    _, real = catalog_vectors(args.source)
    d = real.shape[1]
    rng = np.random.default_rng(0)
    held = rng.choice(len(real), 100, replace=False)
    base = np.delete(real, held, axis=0)
    with Catalog.open(args.source) as cat:
        photos = sorted(PHOTOS.glob("*.jpg"))[:100]
        q = np.concatenate([np.stack([cat.embed_query(p) for p in photos]), real[held]]).astype(np.float32)
    x = np.empty((args.n, d), dtype=np.float32)
    x[: len(base)] = base
    done = len(base)
    for _, chunk in Synthesizer(base).chunks(args.n - len(base)):
        x[done : done + len(chunk)] = chunk
        done += len(chunk)
    exact = faiss.IndexFlatIP(d)
    exact.add(x)
    gt_s, gt_i = exact.search(q, 10)
    train = x[rng.choice(args.n, min(args.n, 50_000), replace=False)]
    out: dict[str, Any] = {"machine": machine(), "n": args.n, "dim": d, "nlist": args.nlist, "codes": {}}
    for code in args.codes:
        spec = f"IVF{args.nlist},{code.format(m=d // 4, m2=d // 2)}"
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        index.train(train)
        index.add(x)
        build = time.perf_counter() - t
        rows = []
        for nprobe in (16, 32, 64):
            faiss.extract_index_ivf(index).nprobe = nprobe
            for rerank in (10, 50, 100):
                t = time.perf_counter()
                _, cand = index.search(q, rerank)
                hits = 0
                for qi in range(len(q)):
                    c = cand[qi][cand[qi] >= 0]
                    top = c[np.argsort(-(x[c] @ q[qi]))[:10]]
                    kth = gt_s[qi][-1]
                    hits += sum(int(i) in set(gt_i[qi].tolist()) or float(x[i] @ q[qi]) >= kth - 1e-6 for i in top)
                ms = (time.perf_counter() - t) / len(q) * 1e3
                rows.append({"nprobe": nprobe, "rerank": rerank, "recall_at_10": round(float(hits) / (10 * len(q)), 4),
                             "ms_per_query": round(ms, 2)})  # fmt: skip
        out["codes"][spec] = {
            "bytes_per_product": round(faiss.serialize_index(index).size / args.n, 1),
            "build_s": round(build, 1),
            "grid": rows,
        }
        print(spec, out["codes"][spec]["bytes_per_product"], rows, file=sys.stderr, flush=True)
    out["load_average_after"] = load_average()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
