"""``bench/load.py`` during a reindex + switch + rollback, against the same load without one (issue 26).

    python bench/reindex_load.py --catalog .lookalike/bench/reindex-bench-base-2000 --model efficientnet-lite0

Serves a copy of the catalogue (``lookalike serve`` in a subprocess), then:
1. **steady**: ``bench/load.py`` for ``--duration`` seconds, nothing else happening;
2. **operations**: ``bench/load.py`` again while ``lookalike reindex`` runs to ``--model`` (re-embedding every
   product beside the serving generation, at its default ``--nice 10``), ``/healthz`` is awaited to name the new
   generation, then ``lookalike reindex --rollback`` and the old one; the load runs ``--busy`` seconds, past both
   switches.
Prints both reports' requests/s, p50/p95/p99 and errors, the operations' times, and p99 (operations) / p99 (steady).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, machine, write_json

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(url: str, clients: int, duration: float, out: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--url", url, "--clients", str(clients),
           "--duration", str(duration), "--json", str(out), "--wait", "120"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _cli(*args: str) -> str:
    """``lookalike ARGS`` as a user runs it (``reindex`` lowers its own CPU priority: ``--nice 10``)."""
    done = subprocess.run([str(Path(sys.executable).with_name("lookalike")), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lookalike {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _wait_generation(url: str, generation: int, timeout: float = 600) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if httpx.get(f"{url}/healthz", timeout=30).json().get("generation") == generation:
            return time.perf_counter() - start
        time.sleep(0.2)
    raise SystemExit(f"the server did not reach generation {generation}")


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "requests_per_s", "errors", "duration_s", "loadavg_before", "loadavg_after")
    return {**{k: report[k] for k in keys}, **{k: report["all"][k] for k in ("p50_ms", "p95_ms", "p99_ms")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of the steady run.")
    parser.add_argument("--busy", type=float, default=300.0, help="Seconds of the run with the operations in it.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    path = CACHE / "reindex-load"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(args.catalog, path)
    url = f"http://127.0.0.1:{_port()}"
    exe = Path(sys.executable).with_name("lookalike")
    server = subprocess.Popen(
        [str(exe), "serve", str(path), "--port", url.rsplit(":", 1)[1], "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        steady = _load(url, args.clients, args.duration, CACHE / "reindex-load-steady.json")
        steady.communicate()
        started = time.perf_counter()
        busy = _load(url, args.clients, args.busy, CACHE / "reindex-load-busy.json")
        time.sleep(5)
        result = json.loads(_cli("reindex", str(path), "--model", args.model, "-q", "--json"))
        built = time.perf_counter() - started
        to_new = _wait_generation(url, result["generation"])
        time.sleep(5)
        _cli("reindex", str(path), "--rollback")
        to_old = _wait_generation(url, result["previous"])
        done = time.perf_counter() - started
        if busy.poll() is not None:
            raise SystemExit(f"the load ended before the operations did ({done:.0f} s): raise --busy")
        busy.communicate(timeout=args.busy + 120)
    finally:
        server.terminate()
        server.wait(timeout=60)
    steady_report = json.loads((CACHE / "reindex-load-steady.json").read_text())
    busy_report = json.loads((CACHE / "reindex-load-busy.json").read_text())
    write_json(args.json, {
        "machine": machine(), "catalogue_products": steady_report["catalogue_products"], "model": args.model,
        "clients": args.clients, "steady": _summary(steady_report), "operations": _summary(busy_report),
        "reindex_s": round(built, 1), "server_on_new_after_s": round(to_new, 1),
        "server_back_on_old_after_s": round(to_old, 1), "operations_done_after_s": round(done, 1),
        "busy_s": args.busy, "embedded": result["build"]["embedded"],
        "p99_operations_over_steady": round(busy_report["all"]["p99_ms"] / steady_report["all"]["p99_ms"], 2),
    })  # fmt: skip


if __name__ == "__main__":
    main()
