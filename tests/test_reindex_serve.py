"""Issue 26: a running ``lookalike serve`` follows ``reindex`` and ``--rollback`` without a restart and without a
failed request; ``/healthz`` names the model serving; a server killed in the middle of a switch comes back on the
generation the pointer names."""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lookalike import Catalog, read_csv
from lookalike.catalog import reindex as rx
from lookalike.catalog.repair import inspect
from tests.conftest import PRODUCTS_CSV, PRODUCTS_DIR

pytestmark = pytest.mark.slow
CLIENTS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``lookalike serve PATH`` in a subprocess on a free loopback port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = f"http://127.0.0.1:{_free_port()}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Server:
        script = Path(sys.executable).with_name("lookalike")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.cli"]
        port = self.base.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [*command, "serve", str(self.path), "--host", "127.0.0.1", "--port", port, "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"lookalike serve exited: {self.proc.communicate()[0][-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("lookalike serve did not come up")
            time.sleep(0.2)

    def health(self) -> dict[str, object]:
        return dict(httpx.get(f"{self.base}/healthz", timeout=10).json())

    def wait_for(self, generation: int, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health["generation"] == generation:
                return health
            time.sleep(0.2)
        pytest.fail(f"the server did not switch to generation {generation}: {self.health()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def hist_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-reindex") / "hist"
    with Catalog.create(path, extractor="colour-histogram") as cat:
        assert cat.ingest(read_csv(PRODUCTS_CSV)).added == 16
    return path


@pytest.fixture()
def server(hist_source: Path, tmp_path: Path) -> Iterator[Server]:
    path = tmp_path / "cat"
    shutil.copytree(hist_source, path)
    srv = Server(path).start()
    try:
        yield srv
    finally:
        srv.stop()


def _jpeg(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_switch_and_rollback_under_load_fail_no_request(server: Server) -> None:
    pictures = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
    uploads = [(p.stem, _jpeg(p)) for p in pictures]
    ids = [p.stem for p in pictures]
    stop = threading.Event()
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.base, timeout=60) as http:
            while not stop.is_set():
                try:
                    if rng.random() < 0.5:
                        stem, data = rng.choice(uploads)
                        r = http.post("/api/search", files={"image": (f"{stem}.jpg", data, "image/jpeg")},
                                      data={"k": "5"})  # fmt: skip
                    else:
                        r = http.post("/api/search", json={"product_id": rng.choice(ids), "k": 5})
                    if r.status_code != 200 or not r.json()["hits"]:
                        raise AssertionError(f"{r.status_code} {r.text[:200]}")
                except Exception as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                with lock:
                    done[0] += 1

    assert server.health()["extractor"] == "colour-histogram" and server.health()["generation"] == 0
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        result = rx.reindex(server.path, "efficientnet-lite0")
        assert result.switched
        health = server.wait_for(1)
        assert health["extractor"] == "efficientnet-lite0" and health["model_sha256"] and health["products"] == 16
        before = done[0]
        time.sleep(1.0)  # searches answered by the new generation
        rx.rollback(server.path)
        assert server.wait_for(0)["extractor"] == "colour-histogram"
        time.sleep(1.0)
        assert done[0] > before
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:5]
    assert done[0] > 20


def test_a_server_killed_in_the_middle_of_a_switch_comes_back_on_the_generation_serving(server: Server) -> None:
    result = rx.reindex(server.path, "efficientnet-lite0")
    assert result.switched
    time.sleep(0.05)  # it is opening the new generation now, in the background
    server.stop(kill=True)
    server.start()
    assert server.health()["generation"] == 1 and server.health()["extractor"] == "efficientnet-lite0"
    with Catalog.open(server.path) as cat:
        assert inspect(cat) == []
