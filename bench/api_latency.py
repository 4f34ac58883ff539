"""Latency of ``POST /api/search`` with a photo upload, next to the library call it wraps.

Builds the demo catalogue when it is missing (``lookalike ingest``, about 25 s), serves it with uvicorn
on a free loopback port in a background thread, sends uploads one after another with httpx, and prints
p50/p95 of the HTTP round trip, of the server's own search time (``took_ms``) and of ``Catalog.search``
on the same bytes in the same process, with the ratio of the two medians.

    python bench/api_latency.py [--catalog .lookalike/demo-catalog] [--requests 200] [--k 24]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ensure_catalog(path: Path) -> None:
    if (path / "manifest.json").is_file():
        return
    from lookalike.catalog import Catalog
    from lookalike.sources import read_csv

    print(f"building the demo catalogue at {path} ...", flush=True)
    with Catalog.create(path) as cat:
        report = cat.ingest(read_csv(DEMO / "products.csv"))
    print(f"  {report.added} products in {report.seconds:.1f} s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / ".lookalike" / "demo-catalog")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--k", type=int, default=24)
    args = parser.parse_args()

    import uvicorn

    from lookalike.service import ServiceSettings, create_app

    ensure_catalog(args.catalog)
    queries = sorted((DEMO / "queries").glob("*.jpg"))
    photos = [(q.name, q.read_bytes()) for q in queries]
    app = create_app(args.catalog, ServiceSettings(admin_token=None, cors_origins=[]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)

    try:
        catalog = app.state.catalog
        url = f"http://127.0.0.1:{port}/api/search"
        round_trip: list[float] = []
        server_ms: list[float] = []
        with httpx.Client(timeout=30.0) as client:
            for i in range(args.warmup + args.requests):
                name, data = photos[i % len(photos)]
                start = time.perf_counter()
                r = client.post(url, files={"image": (name, data, "image/jpeg")}, data={"k": str(args.k)})
                elapsed = (time.perf_counter() - start) * 1000.0
                r.raise_for_status()
                if i >= args.warmup:
                    round_trip.append(elapsed)
                    server_ms.append(float(r.json()["took_ms"]))

        library: list[float] = []
        for i in range(args.requests):
            _, data = photos[i % len(photos)]
            start = time.perf_counter()
            catalog.search(data, k=args.k)
            library.append((time.perf_counter() - start) * 1000.0)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    print(f"catalogue: {args.catalog} ({len(catalog)} products), {len(photos)} query photos, k={args.k}")
    print(f"{args.requests} uploads, one at a time, after {args.warmup} warm-up requests")
    print(f"{'':32}{'p50':>9}{'p95':>9}{'mean':>9}  (ms)")
    for label, values in (
        ("POST /api/search round trip", round_trip),
        ("  server search (took_ms)", server_ms),
        ("Catalog.search, in process", library),
    ):
        p50, p95, mean = percentile(values, 50), percentile(values, 95), statistics.fmean(values)
        print(f"{label:32}{p50:9.1f}{p95:9.1f}{mean:9.1f}")
    ratio = percentile(round_trip, 50) / percentile(library, 50)
    print(f"HTTP round trip / library call, p50: {ratio:.2f}x")


if __name__ == "__main__":
    main()
