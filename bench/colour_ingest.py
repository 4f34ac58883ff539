"""Ingest speed with and without predicting colours: the same pictures, once with their colour field and once
without (each picture's colour family then predicted in the decode workers), alternating.

    python bench/colour_ingest.py --images 1000 --rounds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, machine, write_json

from lookalike import Catalog, create_extractor, read_csv
from lookalike.product import PREDICTED_COLOUR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    recs = list(read_csv(CSV_224))[: args.images]
    blank = [dataclasses.replace(r, product=dataclasses.replace(r.product, colour=None)) for r in recs]
    ext = create_extractor("lookalike-fashion")
    rates: dict[str, list[float]] = {"with colour field": [], "no colour field (predicted)": []}
    for _ in range(args.rounds):
        for name, records in zip(rates, (recs, blank), strict=True):
            path = CACHE / "colour-ingest"
            shutil.rmtree(path, ignore_errors=True)
            cat = Catalog.create(path, extractor=ext)
            t = time.perf_counter()
            report = cat.ingest(records)
            seconds = time.perf_counter() - t
            if records is blank:
                assert all(PREDICTED_COLOUR in p.extra for p in cat.products(limit=50))
            cat.close()
            shutil.rmtree(path, ignore_errors=True)
            rates[name].append(round(report.embedded / seconds, 1))
    medians = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "machine": machine(),
        "images": len(recs),
        "images_per_s": rates,
        "predicted_over_given": round(medians["no colour field (predicted)"] / medians["with colour field"], 3),
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
