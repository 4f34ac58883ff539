"""The Ray ingest against the plain CLI, side by side (issue 27's target: Ray >= 90 % of the plain rate).

    python bench/ray_ingest.py                      # 9,583 224-px products, 2 alternating rounds, then 2 nodes
    python bench/ray_ingest.py --images 2000 --rounds 1 --no-two-nodes

Per round, alternating so the machine's load drifts over both:
- **plain**: ``lookalike ingest CAT --csv labels.csv -q`` into a new catalogue (default model);
- **ray**: the same with ``--ray``, on a one-node cluster started before the rounds (``ray start --head
  --num-cpus N``, ``RAY_ADDRESS`` set), so the cluster's start-up is not the ingest's;
- each timed from spawning the process to its exit (wall), and by the ingest's own clock (the CLI's last line:
  images/s over the ingest, model loading in the process or the actors included).
Then, with ``--two-nodes``: a head and a worker node on this machine (``ray start --head --num-cpus 1`` and
``ray start --address ... --num-cpus 1``: two raylets, the actors spread over both), the mechanics of a
multi-node run, and the same check that the results equal the plain ingest's (products, errors, vectors).
With ``--writer``: the one writer's ceiling, rows only: ``backend.upsert`` of 10,000 products with 256-d vectors
(the default model's) in batches of 64 and of 1,000, into an embedded catalogue and into a real Milvus server (the
``milvus-server`` extra's 2.3.5, started here on 127.0.0.1).
Prints JSON (``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_ingest import subset_csv
from common import CACHE, ROOT, load_average, machine, write_json

RAY = Path(sys.executable).with_name("ray")
EXE = Path(sys.executable).with_name("lookalike")
_RATE = re.compile(r"(\d+) images in ([\d.]+) s \(([\d.]+) img/s\)")


def ingest(csv_path: Path, target: Path, env: dict[str, str], ray: bool) -> dict[str, Any]:
    """One ``lookalike ingest`` in a fresh process into a new catalogue: wall clock and the ingest's own rate."""
    shutil.rmtree(target, ignore_errors=True)
    cmd = [str(EXE), "ingest", str(target), "--csv", str(csv_path), "-q", *(["--ray"] if ray else [])]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"lookalike ingest failed ({done.returncode}): {done.stderr[-3000:]}")
    found = _RATE.search(done.stdout)
    if found is None:
        raise SystemExit(f"no rate in: {done.stdout[-500:]}")
    n, seconds, rate = int(found.group(1)), float(found.group(2)), float(found.group(3))
    return {"images": n, "wall_s": round(wall, 2), "wall_images_per_s": round(n / wall, 1), "ingest_s": seconds,
            "images_per_s": rate}  # fmt: skip


def same_results(a: Path, b: Path) -> dict[str, Any]:
    """Products, errors and vectors of two embedded catalogues compared (max abs difference of the vectors)."""
    from lookalike import Catalog

    with Catalog.open(a) as x, Catalog.open(b) as y:
        ids = sorted(x.store.iter_ids())
        same_ids = ids == sorted(y.store.iter_ids())
        same_products = same_ids and all(x.get(i) == y.get(i) for i in ids)
        errors = sorted((e["id"], e["error"]) for e in x.store.errors())
        same_errors = errors == sorted((e["id"], e["error"]) for e in y.store.errors())
        diff = 0.0
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            va, vb = x.backend.picture_vectors_of(chunk), y.backend.picture_vectors_of(chunk)
            diff = max([diff, *(float(np.abs(va[i] - vb[i]).max()) for i in chunk)])
    return {"products": len(ids), "same_products": same_products, "same_errors": same_errors, "max_abs_diff": diff}


def ray_cluster(*nodes: int) -> tuple[str, list[list[str]]]:
    """Start a head node (and worker nodes) of the given CPUs on this machine: its address, and the stop command."""
    stop = [str(RAY), "stop", "--force"]
    subprocess.run(stop, capture_output=True)
    port = "6390"
    local = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]  # loopback only
    head = [
        str(RAY),
        "start",
        "--head",
        f"--port={port}",
        f"--num-cpus={nodes[0]}",
        "--include-dashboard=false",
        *local,
    ]
    subprocess.run(head, check=True, capture_output=True)
    address = f"127.0.0.1:{port}"
    for cpus in nodes[1:]:  # a worker node: a second raylet on this machine, joined to the head
        worker = [str(RAY), "start", f"--address={address}", f"--num-cpus={cpus}", *local]
        subprocess.run(worker, check=True, capture_output=True)
    return address, [stop]


def measure(n: int | None, rounds: int, two_nodes: bool) -> dict[str, Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a cluster on 127.0.0.1 for this run only
    csv_path, paths = subset_csv(n)
    plain_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cpus = len(os.sched_getaffinity(0))
    address, stops = ray_cluster(cpus)
    ray_env = {**plain_env, "RAY_ADDRESS": address}
    out: dict[str, Any] = {"images": len(paths), "cluster": f"1 node, {cpus} CPUs", "rounds": []}
    try:
        for _ in range(rounds):
            plain = ingest(csv_path, CACHE / "ray-bench-plain", plain_env, ray=False)
            ray = ingest(csv_path, CACHE / "ray-bench-ray", ray_env, ray=True)
            row = {"plain": plain, "ray": ray, "ray_over_plain": round(ray["images_per_s"] / plain["images_per_s"], 3),
                   "ray_over_plain_wall": round(ray["wall_images_per_s"] / plain["wall_images_per_s"], 3),
                   "load_average": load_average()}  # fmt: skip
            out["rounds"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        out["same_results"] = same_results(CACHE / "ray-bench-plain", CACHE / "ray-bench-ray")
    finally:
        for cmd in stops:
            subprocess.run(cmd, capture_output=True)
    out["median_ray_over_plain"] = float(np.median([r["ray_over_plain"] for r in out["rounds"]]))
    out["median_ray_over_plain_wall"] = float(np.median([r["ray_over_plain_wall"] for r in out["rounds"]]))
    if two_nodes:
        address, stops = ray_cluster(1, 1)
        try:
            ray = ingest(csv_path, CACHE / "ray-bench-two-nodes", {**plain_env, "RAY_ADDRESS": address}, ray=True)
            out["two_nodes"] = {"cluster": "head 1 CPU + worker node 1 CPU, one machine", "ray": ray,
                                "same_results": same_results(CACHE / "ray-bench-plain", CACHE / "ray-bench-two-nodes"),
                                "load_average": load_average()}  # fmt: skip
            print(json.dumps(out["two_nodes"]), file=sys.stderr, flush=True)
        finally:
            for cmd in stops:
                subprocess.run(cmd, capture_output=True)
    return out


def writer_rate(n: int = 10_000, dim: int = 256, batches: tuple[int, ...] = (64, 1000)) -> dict[str, Any]:
    """Rows a second that one writer upserts (no pictures, no model): embedded and a Milvus 2.3.5 server."""
    sys.path.insert(0, str(ROOT))
    from lookalike import Catalog, Product
    from lookalike.backends.base import UpsertItem
    from tests.milvus_server import start_milvus_server

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [UpsertItem(Product(id=f"p{i}", title=f"product {i}", brand="Brand", colour="Blue", gender="Women",
                                price=float(i % 300), category="Apparel"), vecs[i], f"{i:064x}", f"ab/{i}.jpg")
             for i in range(n)]  # fmt: skip
    out: dict[str, Any] = {"rows": n, "dim": dim}
    server = start_milvus_server(CACHE / "writer-milvus-server")
    try:
        from lookalike.extractors import DEFAULT_EXTRACTOR, create_extractor

        ext = create_extractor(DEFAULT_EXTRACTOR)  # 256-d: the catalogue's dimension (nothing is embedded)
        assert ext.dim == dim, ext.dim
        targets = {"embedded": {"path": CACHE / "writer-embedded"},
                   "milvus_2_3_5_server": {"path": "writer_bench", "backend": "milvus", "uri": server.uri,
                                           "images_dir": CACHE / "writer-images"}}  # fmt: skip
        for (name, where), batch in ((t, b) for t in targets.items() for b in batches):
            where = dict(where)
            path = where.pop("path")
            path = f"{path}_{batch}" if isinstance(path, str) else path.with_name(f"{path.name}-{batch}")
            if not isinstance(path, str):
                shutil.rmtree(path, ignore_errors=True)
            with Catalog.create(path, extractor=ext, **where) as cat:
                t = time.perf_counter()
                for i in range(0, n, batch):
                    cat.backend.upsert(items[i : i + batch])
                cat.checkpoint()
                seconds = time.perf_counter() - t
            out[f"{name}_batch_{batch}"] = {"seconds": round(seconds, 2), "rows_per_s": round(n / seconds, 1)}
            print(json.dumps({f"{name}_batch_{batch}": out[f"{name}_batch_{batch}"]}), file=sys.stderr, flush=True)
    finally:
        server.stop()
        shutil.rmtree(CACHE / "writer-milvus-server", ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="first N products (default: all 9,583)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--two-nodes", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--writer", action="store_true", help="only the writer's ceiling (rows/s), no ingest")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.writer:
        write_json(args.json, {"machine": machine(), **writer_rate()})
        return
    write_json(args.json, {"machine": machine(), **measure(args.images, args.rounds, args.two_nodes)})


if __name__ == "__main__":
    main()
