"""Several pictures per product (issue 21): what a second picture finds, what more pictures cost.

    python bench/pictures.py --json .lookalike/bench/pictures.json          # every part
    python bench/pictures.py --parts second latency ingest --queries 100

Parts:

* ``second``: the 9,583 products of fashion-product-images-224, each with two pictures (its 224-px shot and the
  60x80 shot of the same id in fashion-product-images-small), ingested into one catalogue; each product's second
  picture is searched (the default ranking, k=10): how often the product comes first, which picture matched,
  and whether any product appears twice in any top 10. The same for the main picture.
* ``latency``: photo search (shoppers' phone photos, ``Catalog.search(bytes)``, default ranking) on the
  44,441-product catalogue (``bench/ingest.py --full`` builds it) with one picture per product, and on the same
  products with three pictures each (the real vector and two stand-ins for other views: the real vector plus
  seeded noise, re-normalised; 133k vectors); each photo is searched on both in turn, several rounds. p50/p95,
  their ratio, and the index's bytes per picture.
* ``ingest``: pictures per second of one ingest of N products with one picture and of the same N with two,
  alternated (same process, same model).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, DATASETS, PHOTOS, catalog_vectors, load_average, machine, summary_ms, write_json

from lookalike import Catalog, Product
from lookalike.backends.base import StoredPicture, UpsertItem
from lookalike.sources import IngestRecord

BIG = DATASETS / "fashion-product-images-224"
SMALL = DATASETS / "fashion-product-images-small"


def two_picture_records(n: int | None = None) -> list[IngestRecord]:
    """The 224-px catalogue's products, each with its 224-px shot and the small shot of the same id."""
    out = []
    with (BIG / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            main = BIG / row["image"]
            second = SMALL / "images" / f"{row['id']}.jpg"
            if not main.is_file() or not second.is_file():
                continue
            product = Product(
                id=row["id"],
                title=row["productDisplayName"],
                category=row["masterCategory"],
                subcategory=row["subCategory"],
                article_type=row["articleType"],
                colour=row["baseColour"],
                gender=row["gender"],
            )
            out.append(IngestRecord(product, str(main), sources=[str(main), str(second)]))
            if n is not None and len(out) >= n:
                break
    return out


def second_picture(workdir: Path, limit: int | None) -> dict[str, Any]:
    recs = two_picture_records(limit)
    path = workdir / "two-pictures"
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    with Catalog.create(path) as cat:
        report = cat.ingest(recs)
        ingest_s = time.perf_counter() - t
        out: dict[str, Any] = {
            "products": report.added,
            "pictures": cat.info()["pictures"],
            "failed": len(report.failed),
            "ingest_s": round(ingest_s, 1),
        }
        for which, index in (("second", 1), ("main", 0)):
            first = matched = twice = 0
            for rec in recs:
                hits = cat.search(rec.sources[index], k=10)
                ids = [h.id for h in hits]
                twice += len(ids) != len(set(ids))
                if hits and (hits[0].id == rec.product.id or rec.product.id in hits[0].duplicates):
                    first += 1
                    matched += hits[0].matched_image == index
            out[which] = {
                "queries": len(recs),
                "first": first,
                "share_first": round(first / len(recs), 4),
                "matched_that_picture": matched,
                "top10_with_a_product_twice": twice,
            }
            print(which, out[which], file=sys.stderr, flush=True)
    return out


def three_pictures(source: Path, target: Path, seed: int = 7) -> Path:
    """The catalogue at ``source`` with three pictures per product (the real vector and two noisy stand-ins)."""
    marker = target / ".bench-complete"
    if marker.is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    ids, real = catalog_vectors(source)
    rng = np.random.default_rng(seed)
    with Catalog.open(source) as src:
        by_id = {p.id: p for p in src.products(limit=len(ids) + 1)}
        cat = Catalog.create(target, extractor=src.extractor)
    try:
        for lo in range(0, len(ids), 5_000):
            items = []
            for k, pid in enumerate(ids[lo : lo + 5_000]):
                vec = real[lo + k]
                noisy = vec[None, :] + rng.normal(0.0, 0.02, size=(2, vec.shape[0])).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                vecs = np.vstack([vec[None, :], noisy])
                pics = [StoredPicture(f"view-{i}", f"sha-{pid}-{i}", None) for i in range(3)]
                product = Product(**{**by_id[pid].to_dict(), "images": [p.image for p in pics], "image": None})
                items.append(UpsertItem(product, vecs, pics[0].image_sha, None, pics))
            cat.backend.upsert(items)
        cat.checkpoint()
    finally:
        cat.close()
    marker.write_text("ok")
    return target


def latency(source: Path, n_queries: int, rounds: int) -> dict[str, Any]:
    if not (source / "manifest.json").is_file():
        sys.exit(f"no catalogue at {source}: run `python bench/ingest.py --full` first")
    many = three_pictures(source, CACHE / "catalog-44k-x3")
    files = sorted(PHOTOS.glob("*.jpg"))
    pick = np.random.default_rng(0).choice(len(files), size=min(n_queries, len(files)), replace=False)
    queries = [files[i].read_bytes() for i in sorted(pick)]
    cats = {"x1": Catalog.open(source), "x3": Catalog.open(many)}
    times: dict[str, list[float]] = {name: [] for name in cats}
    try:
        for cat in cats.values():
            cat.search(queries[0], k=10)  # warm-up: model, index, page cache
        for r in range(rounds):
            for q in queries:
                order = list(cats.items()) if r % 2 == 0 else list(reversed(cats.items()))
                for name, cat in order:
                    t = time.perf_counter()
                    cat.search(q, k=10)
                    times[name].append(time.perf_counter() - t)
        out: dict[str, Any] = {}
        for name, cat in cats.items():
            info = cat.info()
            out[name] = {
                **summary_ms(times[name]),
                "products": info["products"],
                "pictures": info["pictures"],
                "index": info["index"],
                "index_bytes_per_picture": round(info["index_bytes"] / max(1, info["pictures"]), 1),
            }
        out["p50_ratio_x3_over_x1"] = round(out["x3"]["p50_ms"] / out["x1"]["p50_ms"], 3)
        out["per_query_median_ratio"] = round(float(np.median(np.divide(times["x3"], times["x1"]))), 3)
    finally:
        for cat in cats.values():
            cat.close()
    return out


def ingest_rate(workdir: Path, n: int, rounds: int) -> dict[str, Any]:
    recs = two_picture_records(n)
    single = [IngestRecord(r.product, r.source) for r in recs]
    rates: dict[str, list[float]] = {"one picture": [], "two pictures": []}
    for r in range(rounds):
        order = [("one picture", single), ("two pictures", recs)]
        for name, batch in order if r % 2 == 0 else reversed(order):
            path = workdir / f"ingest-{r}-{len(name)}"
            shutil.rmtree(path, ignore_errors=True)
            with Catalog.create(path) as cat:
                cat.extractor  # noqa: B018 - loaded before the clock starts
                t = time.perf_counter()
                report = cat.ingest(batch)
                rates[name].append(report.embedded / (time.perf_counter() - t))
            shutil.rmtree(path, ignore_errors=True)
    out = {
        name: {"pictures_per_s": [round(x, 1) for x in v], "median": round(float(np.median(v)), 1)}
        for name, v in rates.items()
    }
    out["ratio_two_over_one"] = round(out["two pictures"]["median"] / out["one picture"]["median"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", default=["second", "latency", "ingest"])
    parser.add_argument("--source", type=Path, default=CACHE / "catalog-44k", help="the 44k catalogue")
    parser.add_argument("--limit", type=int, default=None, help="products for the 'second' part (default: all)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ingest-products", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine(), "load_average_before": load_average()}
    with tempfile.TemporaryDirectory(dir=CACHE if CACHE.is_dir() else None) as tmp:
        work = Path(tmp)
        if "second" in args.parts:
            out["second_picture"] = second_picture(work, args.limit)
        if "latency" in args.parts:
            out["latency"] = latency(args.source, args.queries, args.rounds)
            print("latency", out["latency"], file=sys.stderr, flush=True)
        if "ingest" in args.parts:
            out["ingest"] = ingest_rate(work, args.ingest_products, args.rounds)
            print("ingest", out["ingest"], file=sys.stderr, flush=True)
    out["load_average_after"] = load_average()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
