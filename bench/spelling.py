"""What the spelling correction costs a words query at 44k products, side by side in one run.

    python bench/spelling.py                 # 44,441 products of fashion-product-images-small, 200 phrases
    python bench/spelling.py --queries 300 --json out.json

The catalogue is bench/text_search.py's (real text, seeded random vectors; built once under the bench cache).
Times ``Catalog.search(text=...)`` with spelling on and off in turn (each text searched once untimed first, the
order of on and off swapped from phrase to phrase), on the phrases as spelt and with one typo each
(:func:`lookalike.evaluate.misspell.misspell`); ``correct_query`` alone on each phrase with a typo, the first
time it meets it (nothing remembered); and the speller's first build for the catalogue (reading its words, once
per process).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, SMALL_CSV, load_average, machine, summary_ms, write_json

from lookalike.evaluate.misspell import misspell
from lookalike.evaluate.text_eval import build_catalogue, products_of
from lookalike.evaluate.text_task import phrase_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with SMALL_CSV.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    from lookalike import Catalog
    from lookalike.catalog.spelling import correct_query, speller_for

    path = CACHE / f"text-{len(rows)}"
    if not (path / "products.db").exists():
        vecs = np.random.default_rng(0).standard_normal((len(rows), 256)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        build_catalogue(path, products_of(rows, True, [None] * len(rows)), vecs).close()
    phrases = [q.text for q in phrase_queries(rows, seed=1)][:: max(1, len(rows) // args.queries)][: args.queries]
    typos = [misspell(p, random.Random(f"1:{p}")) for p in phrases]
    times: dict[str, list[float]] = {k: [] for k in ("as spelt, on", "as spelt, off", "typo, on", "typo, off")}
    correct: list[float] = []
    with Catalog.open(path) as cat:
        t = time.perf_counter()
        speller_for(cat)
        first = time.perf_counter() - t
        cat.search(text=phrases[0])  # warm: sessions, caches
        for p, typo in zip(phrases, typos, strict=True):
            cat.spelling = True
            t = time.perf_counter()
            correct_query(cat, typo)  # first met: nothing remembered
            correct.append(time.perf_counter() - t)
            for text, label in ((p, "as spelt"), (typo, "typo")):
                cat.search(text=text, k=10)  # untimed: the words' first reads of the word index
                for on in (True, False) if len(correct) % 2 else (False, True):
                    cat.spelling = on
                    t = time.perf_counter()
                    cat.search(text=text, k=10)
                    times[f"{label}, {'on' if on else 'off'}"].append(time.perf_counter() - t)
    result = {
        "products": len(rows),
        "queries": len(phrases),
        "speller's first build (s)": round(first, 3),
        **{f"Catalog.search(text=...), {k}": summary_ms(v) for k, v in times.items()},
        "correct_query alone, a phrase with a typo": summary_ms(correct),
        "load_average": load_average(),
        "machine": machine(),
    }
    write_json(args.json, result)


if __name__ == "__main__":
    main()
