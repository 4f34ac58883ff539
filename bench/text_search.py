"""Latency of a words query at 44k products: the text tower, the vector search, FTS5 BM25, the fusion and the
stages (``Catalog.search(text=...)``), side by side with the vector half alone, in one run.

    python bench/text_search.py            # 44,441 products of fashion-product-images-small, 300 phrases
    python bench/text_search.py --ids before.json        # also keep each phrase's top-10 ids and scores
    python bench/text_search.py --same-as before.json    # and check they are the ones another run kept

The catalogue holds every product's real text (title, type, colour, gender, usage) with a seeded random unit
vector each (the search's cost does not depend on what the vectors are); it is built once under the bench
cache. Phrases are task 4's (:func:`lookalike.evaluate.text_task.phrase_queries`). Prints JSON
(``--json FILE`` keeps it). ``--ids`` / ``--same-as``: the check that a change leaves every phrase's top 10
the same (ids and scores, exactly), run before and after it.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, SMALL_CSV, load_average, machine, summary_ms, write_json

from lookalike.evaluate.text_eval import build_catalogue, products_of
from lookalike.evaluate.text_task import phrase_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--ids", type=Path, default=None, help="write each phrase's top-10 ids and scores here")
    ap.add_argument("--same-as", type=Path, default=None, help="check the top-10s against an --ids file")
    args = ap.parse_args()
    with SMALL_CSV.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    from lookalike import Catalog

    path = CACHE / f"text-{len(rows)}"
    if not (path / "products.db").exists():
        vecs = np.random.default_rng(0).standard_normal((len(rows), 256)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        build_catalogue(path, products_of(rows, True, [None] * len(rows)), vecs).close()
    phrases = [q.text for q in phrase_queries(rows, seed=1)][:: max(1, len(rows) // args.queries)][: args.queries]
    with Catalog.open(path) as cat:
        enc = cat.text_encoder
        cat.search(text=phrases[0])  # warm: sessions, caches
        full, vector, encode = [], [], []
        tops: dict[str, list[tuple[str, float]]] = {}
        for p in phrases:
            t = time.perf_counter()
            hits = cat.search(text=p, k=10)
            full.append(time.perf_counter() - t)
            tops[p] = [(h.id, h.order_key) for h in hits]
            t = time.perf_counter()
            v = enc.encode([p])
            encode.append(time.perf_counter() - t)
            cat.search_vectors(v, k=10)
            vector.append(time.perf_counter() - t)
    result = {
        "products": len(rows),
        "queries": len(phrases),
        "text query (Catalog.search(text=...))": summary_ms(full),
        "text tower + vector search only": summary_ms(vector),
        "text tower alone": summary_ms(encode),
        "load_average": load_average(),
        "machine": machine(),
    }
    if args.ids is not None:
        args.ids.write_text(json.dumps(tops, indent=1) + "\n")
    if args.same_as is not None:
        known = {p: [tuple(x) for x in top] for p, top in json.loads(args.same_as.read_text()).items()}
        moved = [p for p in phrases if known.get(p) != tops[p]]
        result["top-10 as in " + args.same_as.name] = f"{len(phrases) - len(moved)} of {len(phrases)} phrases"
        if moved:
            result["moved"] = {p: {"before": known.get(p), "now": tops[p]} for p in moved[:5]}
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    if args.same_as is not None and moved:
        raise SystemExit(f"{len(moved)} phrases have another top 10")


if __name__ == "__main__":
    import json

    main()
