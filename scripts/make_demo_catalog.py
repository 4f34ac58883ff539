#!/usr/bin/env python3
"""Build the demo catalogue committed under data/demo/ (run once by a maintainer, not by `make demo`).

Takes about 2,000 products from ../shared/datasets/fashion-product-images-224, stratified by
articleType (every type keeps at least a few products), seeded, plus a few CC0 shopper's photos from
../shared/datasets/clothing-photos-dev as demo queries. Writes products.csv with the brand taken from the
product name (the words before the gender word: "Nike Men ..." -> "Nike").

    python scripts/make_demo_catalog.py --datasets ../shared/datasets --out data/demo
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
from collections import defaultdict
from pathlib import Path

GENDER_WORDS = {"men", "women", "boys", "girls", "kids", "unisex", "men's", "women's"}
QUERY_LABELS = ("T-Shirt", "Pants", "Shoes", "Dress", "Shirt", "Outwear", "Hat", "Shorts")


def brand_from_title(title: str) -> str | None:
    words = title.split()
    for i, w in enumerate(words[:6]):
        if w.lower() in GENDER_WORDS:
            return " ".join(words[:i]) or None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--out", type=Path, default=Path("data/demo"))
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--min-per-type", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    src = args.datasets / "fashion-product-images-224"
    rows = list(csv.DictReader((src / "labels.csv").open()))
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_type[r["articleType"]].append(r)
    rng = random.Random(args.seed)
    chosen: list[dict[str, str]] = []
    for t in sorted(by_type):
        items = sorted(by_type[t], key=lambda r: int(r["id"]))
        n = min(len(items), max(args.min_per_type, round(len(items) * args.size / len(rows))))
        chosen.extend(rng.sample(items, n))
    chosen.sort(key=lambda r: int(r["id"]))

    out = args.out
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    (out / "images").mkdir(parents=True)
    fields = ["id", "title", "brand", "gender", "category", "subcategory", "article_type", "colour",
              "season", "usage", "image"]  # fmt: skip
    with (out / "products.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in chosen:
            shutil.copyfile(src / r["image"], out / "images" / f"{r['id']}.jpg")
            w.writerow({
                "id": r["id"], "title": r["productDisplayName"], "brand": brand_from_title(r["productDisplayName"]),
                "gender": r["gender"], "category": r["masterCategory"], "subcategory": r["subCategory"],
                "article_type": r["articleType"], "colour": r["baseColour"], "season": r["season"],
                "usage": r["usage"], "image": f"images/{r['id']}.jpg",
            })  # fmt: skip

    photos = args.datasets / "clothing-photos-dev"
    qrows = list(csv.DictReader((photos / "labels.csv").open()))
    qdir = out / "queries"
    if qdir.exists():
        shutil.rmtree(qdir)
    qdir.mkdir()
    for label in QUERY_LABELS:
        cands = sorted((r for r in qrows if r["label"] == label and r["kids"] == "False"), key=lambda r: r["image"])
        pick = rng.choice(cands)
        shutil.copyfile(photos / pick["image_path"], qdir / f"{label.lower().replace('-', '')}.jpg")
    print(f"{len(chosen)} products, {len(by_type)} article types, {len(QUERY_LABELS)} query photos -> {out}")


if __name__ == "__main__":
    main()
