"""Load test: N concurrent clients against a running ``lookalike serve``, for a bounded time.

Each client (an asyncio task with its own HTTP connection) sends requests back to back: a photo upload
(``POST /api/search``, multipart, from ``data/demo/queries``) or a "more like this" query
(``POST /api/search`` with ``{"product_id": ...}``), mixed by ``--upload-share``. At the end it prints
requests/s, p50/p95/p99 latency (overall and per kind), the error count (any non-200 answer, timeout or
connection error), and the machine's load average before and after. Exit status 1 when any request failed.

    lookalike serve .lookalike/demo-catalog --port 8765 &
    python bench/load.py --url http://127.0.0.1:8765 --clients 16 --duration 30

Loopback or any URL you own; it never retries, so every failure counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "data" / "demo" / "queries"


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"upload": [], "product": []})
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(detail)


async def client(
    http: httpx.AsyncClient,
    seed: int,
    stop_at: float,
    photos: list[tuple[str, bytes]],
    product_ids: list[str],
    upload_share: float,
    k: int,
    results: Results,
) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < stop_at:
        kind = "upload" if rng.random() < upload_share else "product"
        start = time.perf_counter()
        try:
            if kind == "upload":
                name, data = rng.choice(photos)
                r = await http.post("/api/search", files={"image": (name, data, "image/jpeg")}, data={"k": str(k)})
            else:
                r = await http.post("/api/search", json={"product_id": rng.choice(product_ids), "k": k})
            elapsed = time.perf_counter() - start
            if r.status_code != 200:
                results.error(f"HTTP {r.status_code}", f"{kind}: HTTP {r.status_code} {r.text[:200]}")
                continue
            if not r.json()["hits"]:
                results.error("no hits", f"{kind}: no hits")
                continue
            results.latencies[kind].append(elapsed)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            cause = exc.__cause__ or exc.__context__
            after = time.perf_counter() - start
            results.error(type(exc).__name__, f"{kind}: {type(exc).__name__}: {exc} ({cause!r}) after {after:.2f} s")


async def wait_for_server(http: httpx.AsyncClient, wait: float) -> dict[str, Any]:
    """``/healthz`` of the server, polled for up to ``wait`` seconds while it starts."""
    deadline = time.monotonic() + wait
    while True:
        try:
            r = await http.get("/healthz")
            r.raise_for_status()
            return dict(r.json())
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    photos = [(p.name, p.read_bytes()) for p in sorted(args.queries.glob("*.jpg"))]
    if not photos:
        raise SystemExit(f"no .jpg query photos in {args.queries}")
    # An idle pooled connection is dropped after --keepalive-expiry, which must be shorter than the server's
    # keep-alive (uvicorn: 5 s): with equal timeouts a request can go out on a connection the server is
    # closing that very moment, and fail with a ReadError that says nothing about the server's health.
    limits = httpx.Limits(
        max_connections=args.clients, max_keepalive_connections=args.clients, keepalive_expiry=args.keepalive_expiry
    )
    async with httpx.AsyncClient(base_url=args.url, timeout=args.timeout, limits=limits) as http:
        health = await wait_for_server(http, args.wait)
        page = (await http.get("/api/products", params={"limit": 200})).json()
        product_ids = [p["id"] for p in page["items"]]
        for i in range(args.warmup):  # load the model's caches and the connections
            name, data = photos[i % len(photos)]
            (await http.post("/api/search", files={"image": (name, data, "image/jpeg")})).raise_for_status()
        results = Results()
        load_before = os.getloadavg()
        start = time.perf_counter()
        stop_at = start + args.duration
        await asyncio.gather(
            *(
                client(http, seed, stop_at, photos, product_ids, args.upload_share, args.k, results)
                for seed in range(args.clients)
            )
        )
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
    done = results.latencies["upload"] + results.latencies["product"]
    errors = sum(results.errors.values())

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "count": len(values),
            **{f"p{q}_ms": round(percentile(values, q) * 1000.0, 1) for q in (50, 95, 99)},
            "max_ms": round(max(values) * 1000.0, 1) if values else float("nan"),
        }

    return {
        "url": args.url,
        "catalogue_products": health["products"],
        "extractor": health["extractor"],
        "clients": args.clients,
        "duration_s": round(wall, 1),
        "upload_share": args.upload_share,
        "k": args.k,
        "requests": len(done) + errors,
        "requests_per_s": round((len(done) + errors) / wall, 1),
        "errors": errors,
        "error_kinds": dict(results.errors),
        "first_errors": results.first_errors,
        "all": stats(done),
        "upload": stats(results.latencies["upload"]),
        "product": stats(results.latencies["product"]),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "keepalive_expiry_s": args.keepalive_expiry,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="The running server.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of load.")
    parser.add_argument("--upload-share", type=float, default=0.5, help="Share of photo uploads (the rest: ids).")
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=8, help="Uploads sent one by one before the clock starts.")
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request time limit (an error past it).")
    parser.add_argument("--queries", type=Path, default=QUERIES, help="Folder of .jpg query photos.")
    parser.add_argument(
        "--keepalive-expiry", type=float, default=2.0, help="Drop pooled connections idle this long (< server's 5 s)."
    )
    parser.add_argument("--json", type=Path, help="Also write the results here as JSON.")
    parser.add_argument("--wait", type=float, default=0.0, help="Seconds to wait for the server to come up.")
    args = parser.parse_args()

    try:
        report = asyncio.run(run(args))
    except httpx.HTTPError as exc:
        raise SystemExit(f"cannot reach {args.url}: {type(exc).__name__}: {exc}") from None
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{report['url']}: {report['catalogue_products']} products ({report['extractor']}), "
        f"{report['clients']} clients for {report['duration_s']} s, {report['upload_share']:.0%} uploads, "
        f"k={report['k']}"
    )
    print(f"requests {report['requests']}  ({report['requests_per_s']} req/s)   errors {report['errors']}")
    print(f"{'':10}{'count':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}  (ms)")
    for label in ("all", "upload", "product"):
        s = report[label]
        print(f"{label:10}{s['count']:7d}{s['p50_ms']:9.1f}{s['p95_ms']:9.1f}{s['p99_ms']:9.1f}{s['max_ms']:9.1f}")
    print(f"load average (1/5/15 min): before {report['loadavg_before']}, after {report['loadavg_after']}, "
          f"{report['cpus']} CPUs")  # fmt: skip
    for line in report["first_errors"]:
        print(f"  error: {line}")
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
