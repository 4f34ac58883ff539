"""Ingest speed: lookalike against the seed-style pipeline, side by side in one run, and where time goes.

    python bench/ingest.py                       # 224-px JPEGs: 2,000 pictures, seed-style on 100
    python bench/ingest.py --full                # ... and the 44,441-product catalogue, end to end
    python bench/ingest.py --models efficientnet-lite0 efficientnet-lite0-int8
    python bench/ingest.py --before 560058e^     # ... and the ingest code of that commit, same pictures
    python bench/ingest.py --cli                 # ... and `lookalike ingest` of 9,583 products vs the reference

For each model: the end-to-end ``Catalog.ingest`` rate (worker processes, then threads) into a fresh
catalogue, and the stages alone (decode + resize in one process, the model on ready batches, writing
pictures and rows). The seed-style pipeline (bench/common.py) embeds pictures one at a time in PyTorch.
``--before COMMIT`` runs that commit's ``Catalog.ingest`` (``git archive``, in a subprocess) on the same
pictures and models, for a before/after. ``--full`` ingests fashion-product-images-small (labels.csv)
into ``.lookalike/bench/catalog-44k``, the catalogue the query and memory benchmarks reuse. Prints JSON
(``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, ROOT, SMALL_CSV, SeedPipeline, load_average, machine, write_json

from lookalike import Catalog, create_extractor
from lookalike.backends.base import UpsertItem
from lookalike.catalog.prepare import Preparer, fast_cfg, model_input
from lookalike.extractors.quantize import preferred_extractor
from lookalike.imaging import DecodeLimits, FetchSettings
from lookalike.sources import IngestRecord, read_csv


def records(csv: Path, n: int | None) -> list[IngestRecord]:
    rows = list(read_csv(csv))
    return rows[:n] if n else rows


def end_to_end(model: str, recs: list[IngestRecord], processes: bool, batch_size: int) -> dict[str, Any]:
    """A fresh catalogue, one full ``Catalog.ingest``; the model is loaded before the clock starts."""
    path = CACHE / f"ingest-{model}-{'proc' if processes else 'thread'}"
    shutil.rmtree(path, ignore_errors=True)
    cat = Catalog.create(path, extractor=create_extractor(model))
    report = cat.ingest(recs, batch_size=batch_size, processes=processes)
    cat.close()
    shutil.rmtree(path, ignore_errors=True)
    assert not report.failed, report.failed[:3]
    return {
        "images": report.embedded,
        "seconds": round(report.seconds, 2),
        "images_per_s": round(report.images_per_second, 1),
    }


BEFORE_SCRIPT = """
import json, shutil, sys, time
from lookalike import Catalog, create_extractor
from lookalike.sources import read_csv
model, csv, n, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
recs = list(read_csv(csv))[:n]
cat = Catalog.create(path, extractor=create_extractor(model))
report = cat.ingest(recs, batch_size=64)
cat.close()
shutil.rmtree(path, ignore_errors=True)
print(json.dumps({"images": report.embedded, "seconds": round(report.seconds, 2),
                  "images_per_s": round(report.images_per_second, 1)}))
"""


def before(commit: str, model: str, n: int) -> dict[str, Any]:
    """``Catalog.ingest`` as it was at ``commit``, in a subprocess importing that commit's ``src``."""
    import json
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lookalike-before-") as tmp:
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        done = subprocess.run(
            [sys.executable, "-c", BEFORE_SCRIPT, model, str(CSV_224), str(n), str(Path(tmp) / "cat")],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
        return {"commit": commit, **json.loads(done.stdout.strip().splitlines()[-1])}


def stages(model: str, recs: list[IngestRecord], batch_size: int) -> dict[str, Any]:
    """Each stage alone, in this process: decode + resize, the model, writing pictures and rows."""
    ext = create_extractor(model)
    fast = fast_cfg(ext)
    cfg = ext.preprocess_cfg
    prep = Preparer(DecodeLimits(), FetchSettings(), cfg.size if cfg else None, fast, None if fast else ext)
    t = time.perf_counter()
    prepared = prep([(r, None) for r in recs], refresh=False)
    decode_s = time.perf_counter() - t
    path = CACHE / f"stages-{model}"
    shutil.rmtree(path, ignore_errors=True)
    cat = Catalog.create(path, extractor=ext)
    batches = [prepared[i : i + batch_size] for i in range(0, len(prepared), batch_size)]
    inputs = [model_input(ext, [p.array for p in b]) for b in batches]
    t = time.perf_counter()
    for b in batches:
        model_input(ext, [p.array for p in b])
    normalise_s = time.perf_counter() - t
    ext.embed_preprocessed(inputs[0])  # warm-up
    t = time.perf_counter()
    vectors = [ext.embed_preprocessed(x) for x in inputs]
    infer_s = time.perf_counter() - t
    t = time.perf_counter()
    with ThreadPool() as pool:
        for b, v in zip(batches, vectors, strict=True):
            saved = cat.pictures.save_many(b, cat.decode_limits, pool)
            cat.backend.upsert(
                [UpsertItem(p.record.product, v[i], p.sha, saved[id(p)]) for i, p in enumerate(b)]  # type: ignore[arg-type]
            )
    write_s = time.perf_counter() - t
    cat.close()
    shutil.rmtree(path, ignore_errors=True)
    n = len(recs)
    return {
        "decode_resize_ms_per_image": round(decode_s / n * 1e3, 3),
        "normalise_ms_per_image": round(normalise_s / n * 1e3, 3),
        "inference_ms_per_image": round(infer_s / n * 1e3, 3),
        "write_ms_per_image": round(write_s / n * 1e3, 3),
        "inference_images_per_s": round(n / infer_s, 1),
    }


class ThreadPool:
    """The 16-thread picture writer ``Catalog.ingest`` uses."""

    def __enter__(self) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(16)
        return self.pool

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()


def seed_style(recs: list[IngestRecord]) -> dict[str, Any]:
    seed = SeedPipeline()
    seed.embed_file(recs[0].source)  # type: ignore[arg-type]
    vectors = []
    t = time.perf_counter()
    for r in recs:
        vectors.append(seed.embed_file(r.source))  # type: ignore[arg-type]
    np.save(CACHE / "seed-vectors.npy", np.stack(vectors))  # a seed keeps its vectors in one .npy
    s = time.perf_counter() - t
    return {"images": len(recs), "seconds": round(s, 2), "images_per_s": round(len(recs) / s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="224-px pictures for lookalike")
    parser.add_argument("--seed-images", type=int, default=100, help="224-px pictures for the seed pipeline")
    parser.add_argument("--models", nargs="*", help="default: the default model (INT8) and its FP32 source")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of seed-style + lookalike per model")
    parser.add_argument("--full", action="store_true", help="also ingest the 44k catalogue")
    parser.add_argument("--before", metavar="COMMIT", help="also time the ingest code of this commit")
    parser.add_argument("--cli", action="store_true", help="also: the CLI on all 9,583 products vs the reference")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)

    from lookalike.extractors import DEFAULT_EXTRACTOR, list_extractors

    models = args.models or [DEFAULT_EXTRACTOR]
    if not args.models and f"{DEFAULT_EXTRACTOR}-fp32" in list_extractors():
        models.append(f"{DEFAULT_EXTRACTOR}-fp32")
    out: dict[str, Any] = {"machine": machine(), "default_model": preferred_extractor(DEFAULT_EXTRACTOR)}
    recs = records(CSV_224, args.images)
    seed_recs = records(CSV_224, args.seed_images)
    out["lookalike_224px"] = {}
    for model in models:
        rounds = []
        for _ in range(args.repeat):  # seed and lookalike alternate, so load drift hits both
            seed = seed_style(seed_recs)
            proc = end_to_end(model, recs, True, args.batch_size)
            threads = end_to_end(model, recs, False, args.batch_size)
            rounds.append(
                {
                    "seed_style": seed["images_per_s"],
                    "processes": proc["images_per_s"],
                    "threads": threads["images_per_s"],
                    "x_seed_style": round(proc["images_per_s"] / seed["images_per_s"], 1),
                    "load_average": load_average(),
                }
            )
        out["lookalike_224px"][model] = {
            "rounds": rounds,
            "best_processes_images_per_s": max(r["processes"] for r in rounds),
            "median_x_seed_style": float(np.median([r["x_seed_style"] for r in rounds])),
            **({"before": before(args.before, model, len(recs))} if args.before else {}),
            "stages": stages(model, recs[:1000], args.batch_size),
        }
    if args.cli:  # issue 15's targets: `lookalike ingest` (start-up included) vs decode + embed with Lite0
        import cli_ingest

        out["cli_224px"] = cli_ingest.measure(None, args.repeat)
    if args.full:
        target = CACHE / "catalog-44k"
        shutil.rmtree(target, ignore_errors=True)
        model = preferred_extractor(DEFAULT_EXTRACTOR)
        recs = records(SMALL_CSV, None)
        cat = Catalog.create(target, extractor=create_extractor(model))
        t = time.perf_counter()
        report = cat.ingest(recs, batch_size=args.batch_size)
        cat.close()
        out["catalogue_44k"] = {
            "model": model,
            "products": report.added,
            "failed": len(report.failed),
            "seconds": round(time.perf_counter() - t, 1),
            "images_per_s": round(report.images_per_second, 1),
            "path": str(target),
        }
    out["load_average_after"] = load_average()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
