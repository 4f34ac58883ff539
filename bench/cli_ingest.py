"""A fresh clone's ingest, as a user runs it, against the reference pipeline, side by side (issue 15's targets).

    python bench/cli_ingest.py                  # 9,583 224-px products, 3 alternating rounds
    python bench/cli_ingest.py --images 2000 --rounds 1

Per round, alternating so the machine's load drifts over all three:
- **CLI**: ``lookalike ingest CAT --csv labels.csv -q`` into a new catalogue with the default model, timed from
  spawning the process to its exit (Python start-up, imports, model load, ingest, index checkpoint);
- **reference**: ImageNet EfficientNet-Lite0 in onnxruntime, decode + embed only (Pillow decode, short side to
  224, centre crop, batches of 32; no pictures kept, no rows, no index), in one process;
- **model alone**: the default model on ready, preprocessed batches of 64 (the ceiling of an ingest).
Prints JSON (``--json FILE`` keeps it): rates, CLI / reference, CLI / model alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, ROOT, load_average, machine, write_json

from lookalike import create_extractor
from lookalike.extractors import DEFAULT_EXTRACTOR
from lookalike.sources import read_csv


def subset_csv(n: int | None) -> tuple[Path, list[Path]]:
    """The first ``n`` rows of the 224-px catalogue's CSV (absolute image paths), and their pictures."""
    import csv

    with CSV_224.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[:n] if n else rows
    column = "image" if "image" in rows[0] else next(c for c in rows[0] if "image" in c)
    for row in rows:
        p = Path(row[column])
        row[column] = str(p if p.is_absolute() else CSV_224.parent / p)
    out = CACHE / f"cli-ingest-{len(rows)}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out, [Path(r[column]) for r in rows]


def cli_ingest(csv_path: Path, n: int) -> dict[str, Any]:
    """``lookalike ingest`` in a fresh process into a new catalogue (default model); wall clock to exit."""
    target = CACHE / "cli-ingest-catalogue"
    shutil.rmtree(target, ignore_errors=True)
    exe = Path(sys.executable).with_name("lookalike")
    cmd = [str(exe), "ingest", str(target), "--csv", str(csv_path), "-q"]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"lookalike ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    import json

    model = json.loads((target / "manifest.json").read_text())["extractor"]["name"]
    shutil.rmtree(target, ignore_errors=True)
    return {"model": model, "images": n, "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 1)}


def reference(paths: list[Path]) -> dict[str, Any]:
    """ImageNet Lite0 in onnxruntime: decode + embed only, batches of 32, one process (model load excluded)."""
    from PIL import Image

    ext = create_extractor("efficientnet-lite0")
    cfg = ext.preprocess_cfg
    assert cfg is not None
    t = time.perf_counter()
    for i in range(0, len(paths), 32):
        batch = []
        for p in paths[i : i + 32]:
            with Image.open(p) as img:
                batch.append(cfg.to_array(img.convert("RGB")))
        ext.embed_preprocessed(np.stack(batch))
    seconds = time.perf_counter() - t
    return {"images": len(paths), "seconds": round(seconds, 2), "images_per_s": round(len(paths) / seconds, 1)}


def model_alone(paths: list[Path], n: int = 1024) -> dict[str, Any]:
    """The default model on ready batches of 64 (decoded and normalised before the clock starts)."""
    from PIL import Image

    ext = create_extractor(DEFAULT_EXTRACTOR).bulk()
    cfg = ext.preprocess_cfg
    assert cfg is not None
    arrays = []
    for p in paths[:n]:
        with Image.open(p) as img:
            arrays.append(cfg.to_array(img.convert("RGB")))
    batches = [np.stack(arrays[i : i + 64]) for i in range(0, len(arrays), 64)]
    ext.embed_preprocessed(batches[0])
    t = time.perf_counter()
    for b in batches:
        ext.embed_preprocessed(b)
    seconds = time.perf_counter() - t
    return {"model": ext.name, "images": len(arrays), "images_per_s": round(len(arrays) / seconds, 1)}


def measure(n: int | None, rounds: int) -> dict[str, Any]:
    """``rounds`` alternating rounds of the reference, the CLI and the model alone on the first ``n`` products
    (all when None), and the medians of the two ratios."""
    csv_path, paths = subset_csv(n)
    assert len(list(read_csv(csv_path))) == len(paths)
    done = []
    for _ in range(rounds):
        ref = reference(paths)
        cli = cli_ingest(csv_path, len(paths))
        alone = model_alone(paths)
        done.append(
            {
                "cli": cli,
                "reference": ref,
                "model_alone": alone,
                "cli_x_reference": round(cli["images_per_s"] / ref["images_per_s"], 2),
                "cli_share_of_model_alone": round(cli["images_per_s"] / alone["images_per_s"], 3),
                "load_average": load_average(),
            }
        )
        print(done[-1], file=sys.stderr, flush=True)
    return {
        "rounds": done,
        "median_cli_x_reference": float(np.median([r["cli_x_reference"] for r in done])),
        "median_cli_share_of_model_alone": float(np.median([r["cli_share_of_model_alone"] for r in done])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="first N products (default: all 9,583)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    write_json(args.json, {"machine": machine(), **measure(args.images, args.rounds)})


if __name__ == "__main__":
    main()
