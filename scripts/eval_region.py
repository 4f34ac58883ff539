#!/usr/bin/env python3
"""Region and garments (EVALUATION.md task 7; docs/quality.md, "Region and garments"): collages of two test-split
catalogue pictures, synthetic outfits of test-split products, and task 3's photos (the first garment's box
against the whole photo).

    python scripts/eval_region.py                          # every part (about 10 minutes on 2 cores)
    python scripts/eval_region.py --parts photos --json out.json

Prints one JSON object: each part's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=Path, default=None, help="datasets folder (default: ../shared/datasets)")
    ap.add_argument("--cache", type=Path, default=None, help="evaluation cache (default: as lookalike eval)")
    ap.add_argument("--parts", default="collages,outfits,photos", help="comma-separated: collages, outfits, photos")
    ap.add_argument("--collages", type=int, default=200)
    ap.add_argument("--outfits", type=int, default=150)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from lookalike.config import lookalike_home
    from lookalike.evaluate.region_task import run_region_eval

    cache = args.cache or lookalike_home() / "eval-cache"
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    out = run_region_eval(args.datasets, cache, args.collages, args.outfits, parts,
                          progress=lambda m: print(m, file=sys.stderr, flush=True))  # fmt: skip
    text = json.dumps(out, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
