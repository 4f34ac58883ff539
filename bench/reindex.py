"""Reindex against ingest, side by side (issue 26's target: a reindex at >= 90 % of the ingest rate).

    python bench/reindex.py                          # 2,000 products of the 224-px set, 2 alternating rounds
    python bench/reindex.py --images 9583 --rounds 1 --json .lookalike/bench/reindex.json

Once: a base catalogue of the products under ``colour-histogram`` (cheap; not timed). Per round, the order
alternating so the machine's drifting load falls on both:
- **ingest**: ``Catalog.ingest`` of the products into a new catalogue with the model (read the source files, hash,
  decode, embed, store the pictures, commit), the model loaded before the clock starts;
- **reindex**: ``lookalike.catalog.reindex.reindex`` of a fresh copy of the base catalogue to the same model (read
  the stored pictures back, check their hashes, decode, embed, commit into the new generation, the catch-up passes
  and the switch), the model loaded before the clock starts.
Both predict the colour of products without a known one. Prints JSON: products/s of each and reindex / ingest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_ingest import subset_csv
from common import CACHE, load_average, machine, write_json

from lookalike import Catalog, create_extractor
from lookalike.catalog import reindex as rx
from lookalike.extractors import DEFAULT_EXTRACTOR
from lookalike.extractors.quantize import preferred_extractor
from lookalike.sources import read_csv


def run_ingest(csv_path: Path, model: Any) -> dict[str, Any]:
    target = CACHE / "reindex-bench-ingest"
    shutil.rmtree(target, ignore_errors=True)
    records = list(read_csv(csv_path))
    load = load_average()
    with Catalog.create(target, extractor=model) as cat:
        t = time.perf_counter()
        report = cat.ingest(records)
        seconds = time.perf_counter() - t
    shutil.rmtree(target, ignore_errors=True)
    assert not report.failed, report.failed[:3]
    n = report.added
    return {"products": n, "seconds": round(seconds, 2), "products_per_s": round(n / seconds, 1), "load": load}


def run_reindex(base: Path, model: Any) -> dict[str, Any]:
    target = CACHE / "reindex-bench-copy"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target)
    load = load_average()
    t = time.perf_counter()
    result = rx.reindex(target, model)
    seconds = time.perf_counter() - t
    shutil.rmtree(target, ignore_errors=True)
    assert result.switched and not result.build.failed, result.to_dict()
    n = result.build.embedded
    return {
        "products": n, "seconds": round(seconds, 2), "products_per_s": round(n / seconds, 1), "load": load,
        "build_seconds": round(result.build.seconds, 2),
        "switch_seconds": round(result.final.seconds if result.final else 0.0, 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default=None, help="default: the model a new catalogue gets")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    csv_path, _ = subset_csv(args.images)
    name = args.model or preferred_extractor(DEFAULT_EXTRACTOR)
    model = create_extractor(name)
    model.embed_preprocessed  # noqa: B018 - loaded now, outside the timings
    base = CACHE / f"reindex-bench-base-{args.images}"
    if not (base / "manifest.json").is_file():
        shutil.rmtree(base, ignore_errors=True)
        with Catalog.create(base, extractor="colour-histogram") as cat:
            cat.ingest(read_csv(csv_path))
    rounds = []
    for r in range(args.rounds):
        first, second = ("ingest", "reindex") if r % 2 == 0 else ("reindex", "ingest")
        row: dict[str, Any] = {}
        for kind in (first, second):
            row[kind] = run_ingest(csv_path, model) if kind == "ingest" else run_reindex(base, model)
        row["reindex_over_ingest"] = round(row["reindex"]["products_per_s"] / row["ingest"]["products_per_s"], 3)
        rounds.append(row)
        print(row, file=sys.stderr)
    ratios = [r["reindex_over_ingest"] for r in rounds]
    write_json(args.json, {
        "machine": machine(), "model": name, "products": args.images, "rounds": rounds,
        "reindex_over_ingest": {"min": min(ratios), "max": max(ratios)},
    })  # fmt: skip


if __name__ == "__main__":
    main()
