"""Ingest and search of this checkout against another commit's, alternating in fresh subprocesses (so neither
gets a warmer process or a quieter minute): the before/after check of a refactor.

    python bench/before_after.py --before 5ae5df3        # 1,500 224-px pictures, 100 photo searches, 3 rounds

Search runs with the similarity alone on both sides (the colour stage and duplicate collapsing off here), so it
compares the same work. Prints JSON (``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, PHOTOS, ROOT, machine, write_json

INGEST = """
import json, shutil, sys, time
from pathlib import Path
from lookalike import Catalog, create_extractor, read_csv
recs = list(read_csv(sys.argv[1]))[: int(sys.argv[2])]
path = Path(sys.argv[3]); shutil.rmtree(path, ignore_errors=True)
cat = Catalog.create(path, extractor=create_extractor("lookalike-fashion"))
t = time.perf_counter(); report = cat.ingest(recs, batch_size=64); seconds = time.perf_counter() - t
cat.close(); shutil.rmtree(path, ignore_errors=True)
print(json.dumps({"images_per_s": report.embedded / seconds}))
"""
SEARCH = """
import json, sys, time
from pathlib import Path
from lookalike import Catalog
cat = Catalog.open(sys.argv[1])
kwargs = {}
if hasattr(cat, "colour_rank"):
    cat.colour_rank = False
if hasattr(cat, "collapse_duplicates"):
    cat.collapse_duplicates = False
photos = [p.read_bytes() for p in sorted(Path(sys.argv[2]).glob("*.jpg"))[: int(sys.argv[3])]]
for p in photos[:5]:
    cat.search(p, k=10)
times = []
for p in photos:
    t = time.perf_counter(); cat.search(p, k=10); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2] * 1e3, "p95_ms": times[int(len(times) * 0.95)] * 1e3}))
"""


def run(src: Path, script: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="COMMIT", required=True)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalog", type=Path, default=CACHE / "catalog-224", help="for the searches (built by "
                        "bench/search_stages.py)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-before-") as tmp:
        archive = subprocess.run(["git", "archive", args.before, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sources = {"before": Path(tmp) / "src", "after": ROOT / "src"}
        ingest: dict[str, list[float]] = {k: [] for k in sources}
        search: dict[str, list[float]] = {k: [] for k in sources}
        for _ in range(args.rounds):
            for name, src in sources.items():
                cat = str(Path(tmp) / f"cat-{name}")
                ingest[name].append(run(src, INGEST, str(CSV_224), str(args.images), cat)["images_per_s"])
                search[name].append(run(src, SEARCH, str(args.catalog), str(PHOTOS), str(args.queries))["p50_ms"])
    result = {
        "machine": machine(),
        "before": args.before,
        "ingest_images_per_s": {k: [round(v, 1) for v in vs] for k, vs in ingest.items()},
        "search_p50_ms": {k: [round(v, 2) for v in vs] for k, vs in search.items()},
        "ingest_after_over_before": round(statistics.median(ingest["after"]) / statistics.median(ingest["before"]), 3),
        "search_before_over_after": round(statistics.median(search["before"]) / statistics.median(search["after"]), 3),
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
