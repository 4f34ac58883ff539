"""Search latency by ranking stage, side by side in one run: the mirror merge alone, with the colour stage
(garment segmenter + colour head + re-ranking the top candidates), the default search (colour and kind stages: the
kind head over the query's vectors and the kind branch, one more output of the embedding graph, its prior and the
page's places for likely kinds) against the same with the kind stage off (no branch: the plain graph), and
optionally another commit's search.

    python bench/search_stages.py                         # 9,583-product catalogue, 100 photo uploads
    python bench/search_stages.py --before 5ae5df3        # ... and that commit's Catalog.search, same photos
    python bench/search_stages.py --feedback 20 --catalog .lookalike/bench/catalog-44k   # ... and with feedback

Each query is a shopper's photo upload (``Catalog.search(bytes)``: decode, embed the picture and its mirror
image, search, ranking stages, metadata), one at a time; rounds alternate between the settings so machine
noise falls on all of them alike (each photo goes through every setting in turn; the per-photo differences
are reported too). Also times the colour detector alone, and the colour stage with the rows of
earlier searches forgotten before each query (as the first search after a write finds them:
:class:`lookalike.store.rows.SearchRows`). ``--feedback N``: also the photo's search with N judged products
(from its own plain top 2N: every other one of the first 10 liked, the rest disliked; issue 24). Prints JSON
(``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, PHOTOS, ROOT, load_average, machine, summary_ms, write_json

from lookalike import Catalog, read_csv
from lookalike.imaging.decode import load_image
from lookalike.store.rows import SearchRows

BEFORE_SCRIPT = """
import json, sys, time
from pathlib import Path
from lookalike import Catalog
cat = Catalog.open(sys.argv[1])
photos = [Path(p).read_bytes() for p in sys.argv[3:]]
rounds = int(sys.argv[2])
cat.search(photos[0], k=10)
times = []
for _ in range(rounds):
    for data in photos:
        t = time.perf_counter()
        cat.search(data, k=10)
        times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def catalogue(path: Path) -> Path:
    """The 224-px catalogue (9,583 products), ingested once under the bench cache."""
    if not (path / "manifest.json").exists():
        with Catalog.create(path) as cat:
            cat.ingest(read_csv(CSV_224))
    return path


def cold(cat: Catalog) -> Catalog:
    """``cat`` with the candidate rows earlier searches read forgotten, as for the first search after a write."""
    cat.backend._search_rows = SearchRows()  # type: ignore[attr-defined]
    return cat


def timed(fn: Any, photos: list[bytes]) -> list[float]:
    out = []
    for data in photos:
        t = time.perf_counter()
        fn(data)
        out.append(time.perf_counter() - t)
    return out


def without_kind(cat: Catalog, data: bytes) -> Any:
    """The default search with the kind stage off (the nearest products' vote instead, as before issue 28)."""
    cat.kind_rank = False
    try:
        return cat.search(data, k=10)
    finally:
        cat.kind_rank = True


def before(commit: str, path: Path, files: list[Path], rounds: int) -> list[float]:
    """``Catalog.search`` as it was at ``commit``, in a subprocess importing that commit's ``src``."""
    with tempfile.TemporaryDirectory(prefix="lookalike-before-") as tmp:
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        done = subprocess.run(
            [sys.executable, "-c", BEFORE_SCRIPT, str(path), str(rounds), *map(str, files)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=100, help="photo uploads per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", metavar="COMMIT", help="also time the search code of this commit")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--feedback", type=int, default=0, metavar="N", help="also time a search with N judged ids")
    parser.add_argument("--catalog", type=Path, help="an existing catalogue (default: the 224-px one, built once)")
    args = parser.parse_args()

    path = args.catalog or catalogue(CACHE / "catalog-224")
    files = sorted(PHOTOS.glob("*.jpg"))[: args.queries]
    photos = [f.read_bytes() for f in files]
    cat = Catalog.open(path)
    cat.search(photos[0], k=10)  # load the models
    runs: dict[str, list[float]] = {
        "mirror merge only": [],
        "colour stage, kind stage off": [],
        "with colour stage": [],
        "with colour stage, rows read cold": [],
        "colour detector alone": [],
    }
    if args.before:
        runs[f"before ({args.before})"] = []
    judged: dict[bytes, dict[str, list[str]]] = {}
    if args.feedback:
        for data in photos:  # each photo's judgements, from its own plain results
            ids = [h.id for h in cat.search(data, k=2 * args.feedback)][: args.feedback]
            liked = ids[:10:2]
            judged[data] = {"positive": liked, "negative": [i for i in ids if i not in liked]}
    settings = {
        "mirror merge only": lambda d: cat.search(d, k=10, colour_rank=False),
        "colour stage, kind stage off": lambda d: without_kind(cat, d),
        "with colour stage": lambda d: cat.search(d, k=10),
        "with colour stage, rows read cold": lambda d: cold(cat).search(d, k=10),
    }
    if args.feedback:
        settings[f"with feedback ({args.feedback} judged)"] = lambda d: cat.search(d, k=10, **judged[d])
        runs[f"with feedback ({args.feedback} judged)"] = []
    images = [load_image(f) for f in files]
    for r in range(args.rounds):
        # each photo through every setting in turn (the order turning each round), so drifting machine load
        # falls on all settings alike and the per-photo differences pair up
        names = list(settings)[r % len(settings) :] + list(settings)[: r % len(settings)]
        for data, image in zip(photos, images, strict=True):
            for name in names:
                runs[name] += timed(settings[name], [data])
            runs["colour detector alone"] += timed(lambda i: cat.colour_detector.detect(i), [image])  # type: ignore[arg-type,return-value]
        if args.before:
            runs[f"before ({args.before})"] += before(args.before, path, files, 1)
    products = len(cat)
    cat.close()
    result = {
        "machine": machine(),
        "load_average": load_average(),
        "catalogue_products": products,
        "queries": len(photos),
        "rounds": args.rounds,
        "latency": {name: summary_ms(times) for name, times in runs.items()},
    }
    base = result["latency"]["mirror merge only"]["p50_ms"]
    result["colour_stage_adds_p50_ms"] = round(result["latency"]["with colour stage"]["p50_ms"] - base, 2)
    no_kind = result["latency"]["colour stage, kind stage off"]["p50_ms"]
    result["kind_stage_adds_p50_ms"] = round(result["latency"]["with colour stage"]["p50_ms"] - no_kind, 2)
    pairs = [b - a for a, b in zip(runs["colour stage, kind stage off"], runs["with colour stage"], strict=True)]
    result["median of per-photo differences, kind stage, ms"] = round(1000 * statistics.median(pairs), 2)
    cold_p50 = result["latency"]["with colour stage, rows read cold"]["p50_ms"]
    result["colour_stage_adds_p50_ms_rows_cold"] = round(cold_p50 - base, 2)
    for name in ("with colour stage", "with colour stage, rows read cold"):
        pairs = [b - a for a, b in zip(runs["mirror merge only"], runs[name], strict=True)]
        result[f"median of per-photo differences, {name}, ms"] = round(1000 * statistics.median(pairs), 2)
    if args.feedback:
        name = f"with feedback ({args.feedback} judged)"
        plain_p50 = result["latency"]["with colour stage"]["p50_ms"]
        result["feedback_p50_over_plain_p50"] = round(result["latency"][name]["p50_ms"] / plain_p50, 3)
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
