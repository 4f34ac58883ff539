"""Region search and garments() latency, side by side in one run (docs/performance.md, "Region and garments").

    python bench/region.py                  # 100 shoppers' photos x 3 rounds, the 9,583-product catalogue
    python bench/region.py --queries 40 --rounds 2 --json out.json

Each query is a photo upload (bytes), one at a time: ``Catalog.search(photo)``, the same with a region
(the first garment's box, or the middle 80 % when none is found; the region's crop is decoded at the size that
keeps it sharp) and ``Catalog.garments(photo)`` (decode at the detector's size, detect). Each photo goes through
every setting in turn, the order turning each round, so drifting machine load falls on all alike; the median of the
per-photo differences (region - whole) is what the region adds. Also the detector alone on decoded photos, and
``garments()`` back to back (no search between them).
Prints JSON (``--json FILE`` keeps it). The catalogue is built from the evaluation cache's vectors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATASETS, PHOTOS, load_average, machine, summary_ms, write_json

from lookalike.config import lookalike_home
from lookalike.evaluate.region_task import gallery_catalogue
from lookalike.imaging.decode import load_image


def timed(fn: Any, arg: Any) -> float:
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=100, help="photo uploads per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    files = sorted(PHOTOS.glob("*.jpg"))[: args.queries]
    photos = [f.read_bytes() for f in files]
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-region-") as tmp:
        cat, _ = gallery_catalogue(DATASETS, lookalike_home() / "eval-cache", Path(tmp) / "cat")
        with cat:
            cat._extractor = cat.extractor._inner  # type: ignore[attr-defined]  # no memo: every search embeds
            cat._colour_detector = cat.colour_detector._inner  # type: ignore[attr-defined]
            cat.search(photos[0], k=10)  # load the models
            regions = []
            for data in photos:
                found = cat.garments(data)
                regions.append(found[0].box if found else (0.1, 0.1, 0.9, 0.9))
            images = [load_image(f) for f in files]
            detector = cat.garment_detector
            runs: dict[str, list[float]] = {"photo search": [], "photo search with a region": [], "garments()": []}
            runs["detector alone (decoded photo)"] = []
            for r in range(args.rounds):
                for data, region, image in zip(photos, regions, images, strict=True):
                    settings = [
                        ("photo search", lambda d: cat.search(d, k=10)),
                        ("photo search with a region", lambda d, reg=region: cat.search(d, k=10, region=reg)),
                        ("garments()", cat.garments),
                    ]
                    for name, fn in settings[r % 3 :] + settings[: r % 3]:
                        runs[name].append(timed(fn, data))
                    runs["detector alone (decoded photo)"].append(timed(detector.detect, image))
            runs["garments(), back to back"] = []  # no search between: the model's weights stay in the CPU's caches
            for _ in range(args.rounds):
                runs["garments(), back to back"] += [timed(cat.garments, data) for data in photos]
            products = len(cat)
    pairs = [b - a for a, b in zip(runs["photo search"], runs["photo search with a region"], strict=True)]
    result = {
        "machine": machine(),
        "load_average": load_average(),
        "catalogue_products": products,
        "queries": len(photos),
        "rounds": args.rounds,
        "latency": {name: summary_ms(times) for name, times in runs.items()},
        "region adds (median of per-photo differences), ms": round(1000 * statistics.median(pairs), 2),
    }
    write_json(args.json, result)


if __name__ == "__main__":
    main()
