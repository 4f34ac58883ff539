"""Peak memory (RSS) of ``lookalike serve`` answering photo uploads, at 44k and 1M products.

    python bench/ingest.py --full && python bench/query.py     # build the catalogues first
    python bench/memory.py
    python bench/memory.py --catalogs .lookalike/bench/catalog-44k --uploads 100

Starts ``lookalike serve CATALOGUE`` on a free loopback port, waits for ``/healthz``, sends ``--uploads``
photo uploads (``POST /api/search``, multipart) one after another, then reads the server's peak resident
set size (``VmHWM`` in ``/proc/PID/status``) and its RSS now, and stops it. The model, the index and
SQLite's page cache are all inside that figure; the operating system's file cache is not.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, PHOTOS, load_average, machine, peak_rss_mb, summary_ms, write_json


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(catalog: Path, uploads: int, startup_timeout: float) -> dict[str, Any]:
    import httpx

    port = free_port()
    exe = Path(sys.executable).with_name("lookalike")
    cmd = [str(exe), "serve", str(catalog), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=120) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > startup_timeout:
                    raise TimeoutError("serve did not come up")
                time.sleep(0.5)
            ready_s = time.perf_counter() - started
            rss_ready = rss_mb(proc.pid)
            files = sorted(PHOTOS.glob("*.jpg"))[:uploads]
            latencies = []
            for f in files:
                t = time.perf_counter()
                r = client.post(f"{base}/api/search", files={"image": (f.name, f.read_bytes(), "image/jpeg")})
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
            return {
                "catalog": str(catalog),
                "products": client.get(f"{base}/healthz").json().get("products"),
                "ready_s": round(ready_s, 1),
                "rss_ready_mb": round(rss_ready, 1),
                "rss_after_mb": round(rss_mb(proc.pid), 1),
                "peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
                "http_upload_latency": summary_ms(latencies),
            }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", type=Path, nargs="*", default=[CACHE / "catalog-44k", CACHE / "catalog-1000000"])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--startup-timeout", type=float, default=900)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine(), "runs": []}
    for catalog in args.catalogs:
        if not (catalog / "manifest.json").is_file():
            sys.exit(f"no catalogue at {catalog}: run bench/ingest.py --full and bench/query.py first")
        out["runs"].append(measure(catalog, args.uploads, args.startup_timeout))
    out["load_average_after"] = load_average()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
