#!/usr/bin/env python3
"""Misspelt words: task 4 (``lookalike eval --task text``) with one typo in the longest word of each phrase and
title, searched with and without the spelling correction (docs/quality.md, "Misspelt words").

    python scripts/eval_misspelt.py                            # the development run: phrase seed 0, typo seed 0
    python scripts/eval_misspelt.py --seed 1 --typo-seed 1     # the held-out run: other wording, other typos
    python scripts/eval_misspelt.py --every 4 --json out.json  # every 4th query only; keep the numbers

Prints each catalogue's metrics under each condition and the ratio misspelt / as spelt (the target: >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=Path, default=None, help="datasets folder (default: ../shared/datasets)")
    ap.add_argument("--cache", type=Path, default=None, help="evaluation cache (default: as lookalike eval)")
    ap.add_argument("--seed", type=int, default=0, help="the phrases' wording")
    ap.add_argument("--typo-seed", type=int, default=0, help="the typos")
    ap.add_argument("--every", type=int, default=1, help="only every n-th query")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from lookalike.config import lookalike_home
    from lookalike.evaluate.misspell import run_misspelt_eval

    cache = args.cache or lookalike_home() / "eval-cache"
    start = time.perf_counter()
    results = run_misspelt_eval(
        args.datasets, cache, seed=args.seed, typo_seed=args.typo_seed, every=args.every,
        progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True),
    )  # fmt: skip
    metrics = list(next(iter(results.values())))
    print(f"{'run':45}" + "".join(f"{m:>22}" for m in metrics))
    for name, row in results.items():
        print(f"{name:45}" + "".join(f"{row[m]:>22.3f}" for m in metrics))
    for catalogue in ("with text", "pictures only"):
        spelt = results[f"{catalogue}: as spelt, no correction"]
        for cond in ("misspelt, no correction", "misspelt, corrected"):
            row = results[f"{catalogue}: {cond}"]
            ratios = "".join(f"{row[m] / spelt[m] if spelt[m] else float('nan'):>22.3f}" for m in metrics)
            print(f"{f'ratio {catalogue}: {cond}':45}{ratios}")
    print(f"({time.perf_counter() - start:.0f} s; seed {args.seed}, typo seed {args.typo_seed}, every {args.every})")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
