"""Peak resident memory of ``lookalike serve`` while four big flat pictures are uploaded at once (issue 14, item 2).

    python bench/upload_memory.py                 # the 9,583-product catalogue under .lookalike/bench/catalog-224

Starts the server on 127.0.0.1, waits for /healthz, reads its resident memory (VmRSS) idle, sends four
concurrent searches each uploading a 6324 x 6324 flat-colour PNG (about 130 KB, 40 MP: under the pixel cap),
then reads the server's peak (VmHWM). Every answer must be 200 with hits. Prints JSON (``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, machine, write_json


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=CACHE / "catalog-224")
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    buf = io.BytesIO()
    Image.new("RGB", (6324, 6324), (40, 90, 160)).save(buf, format="PNG")
    picture = buf.getvalue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "lookalike.cli", "serve", str(args.catalog), "--host", "127.0.0.1"]
    server = subprocess.Popen([*cmd, "--port", str(port), "--log-level", "warning"], env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        httpx.post(f"{base}/api/search", files={"image": ("small.png", _small(), "image/png")})
        idle = status_kb(server.pid, "VmRSS")
        answers: list[tuple[int, int]] = []

        def upload() -> None:
            r = httpx.post(f"{base}/api/search", files={"image": ("big.png", picture, "image/png")}, timeout=120)
            answers.append((r.status_code, len(r.json().get("hits", [])) if r.status_code == 200 else 0))

        threads = [threading.Thread(target=upload) for _ in range(args.uploads)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        peak = status_kb(server.pid, "VmHWM")
        products = httpx.get(f"{base}/healthz").json().get("products")
    finally:
        server.terminate()
        server.wait(30)
    result = {
        "machine": machine(),
        "catalogue_products": products,
        "picture": {"pixels": "6324x6324", "png_bytes": len(picture)},
        "uploads_at_once": args.uploads,
        "answers": answers,
        "seconds": round(seconds, 2),
        "idle_rss_mb": round(idle / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


def _small() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (224, 224), (40, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
