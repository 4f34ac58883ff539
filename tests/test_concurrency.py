"""Issue #6, concurrency: searches while another thread or another process ingests and deletes, and a
real ``lookalike serve`` (uvicorn in a subprocess, loopback only) under 16 concurrent HTTP clients.

Every search must succeed and return products that exist or existed, a batch is seen whole or not at
all (one ingest batch and one delete are one transaction each), and at the end the index and the store
agree and every product still has its picture.
"""

from __future__ import annotations

import io
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import Catalog, Product, read_csv
from lookalike.product import Filters
from lookalike.sources import IngestRecord

from .conftest import PRODUCTS_CSV, PRODUCTS_DIR

IMAGES = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))
ROUND_SIZE = 8
SEARCH_THREADS = 4
HTTP_CLIENTS = 16
REQUESTS_PER_CLIENT = 6
TOKEN = "concurrency-admin-token"


# --- catalogues -------------------------------------------------------------------------------------
@pytest.fixture()
def base_catalog(tmp_path: Path) -> Path:
    """The 16 test products (colour-histogram: cheap to embed, so the writers get many rounds in)."""
    path = tmp_path / "cat"
    with Catalog.create(path, extractor="colour-histogram") as cat:
        assert cat.ingest(read_csv(PRODUCTS_CSV)).added == len(IMAGES)
    return path


@pytest.fixture()
def variant_files(tmp_path: Path) -> list[Path]:
    """Pictures no base product uses, two sets: rounds of the same parity share picture files, so a
    delete of round r-1 races with the ingest of round r+1 over the very same files."""
    out = []
    for i, src in enumerate(IMAGES[: 2 * ROUND_SIZE]):
        img = ImageOps.mirror(Image.open(src).convert("RGB"))
        target = tmp_path / "variants" / f"v{i}.png"
        target.parent.mkdir(exist_ok=True)
        img.save(target)
        out.append(target)
    return out


def _round_ids(prefix: str, r: int) -> list[str]:
    return [f"{prefix}{r}-{i}" for i in range(ROUND_SIZE)]


def _round_records(prefix: str, r: int, variants: list[Path]) -> list[IngestRecord]:
    files = variants[(r % 2) * ROUND_SIZE : (r % 2 + 1) * ROUND_SIZE]
    return [
        IngestRecord(Product(id=pid, title=f"round {r} #{i}", brand=f"{prefix}round-{r}"), str(path))
        for i, (pid, path) in enumerate(zip(_round_ids(prefix, r), files, strict=True))
    ]


# --- the searchers ----------------------------------------------------------------------------------
class Searchers:
    """``n`` threads searching one catalogue in a loop (by picture, by product, by round filter)."""

    def __init__(self, cat: Catalog, known: Callable[[str], bool], prefix: str, rounds: int, n: int) -> None:
        self.cat, self.known, self.prefix, self.rounds = cat, known, prefix, rounds
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.counts = {"image": 0, "product": 0, "round": 0, "round_seen": 0}
        self._lock = threading.Lock()
        self.base_ids = sorted(cat.store.iter_ids())
        self.pictures = [p.read_bytes() for p in IMAGES]
        self.threads = [threading.Thread(target=self._run, args=(seed,), daemon=True) for seed in range(n)]

    def __enter__(self) -> Searchers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def _check_hits(self, hits: list[Any], k: int, what: str) -> None:
        assert 1 <= len(hits) <= k, f"{what}: {len(hits)} hits"
        keys = [h.order_key for h in hits]  # similarity, plus colour agreement and kind vote when re-ranked
        assert all(np.isfinite([h.score for h in hits])), f"{what}: scores {[h.score for h in hits]}"
        assert keys == sorted(keys, reverse=True), f"{what}: ranking keys {keys}"
        for h in hits:
            assert h.product.id == h.id and self.known(h.id), f"{what}: unknown or mismatched hit {h.id}"
            if h.id.startswith(self.prefix):  # a round product: its metadata came with it, whole
                assert h.product.brand == f"{self.prefix}round-{h.id[len(self.prefix) :].split('-')[0]}"

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            kind = rng.choice(["image", "product", "round"])
            try:
                if kind == "image":
                    self._check_hits(self.cat.search(rng.choice(self.pictures), k=10), 10, "image")
                elif kind == "product":
                    pid = rng.choice(self.base_ids)
                    hits = self.cat.search(product_id=pid, k=5)
                    self._check_hits(hits, 5, "product")
                    assert pid not in [h.id for h in hits]
                else:
                    r = rng.randrange(self.rounds)
                    brand = f"{self.prefix}round-{r}"
                    hits = self.cat.search(rng.choice(self.pictures), k=50, filters=Filters(brand=brand))
                    ids = sorted(h.id for h in hits)
                    assert ids in ([], sorted(_round_ids(self.prefix, r))), f"half a batch: {ids}"
                    with self._lock:
                        self.counts["round_seen"] += bool(ids)
                with self._lock:
                    self.counts[kind] += 1
            except Exception as exc:
                with self._lock:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")


def _assert_consistent(path: Path, expected_ids: set[str]) -> None:
    with Catalog.open(path) as cat:
        assert set(cat.store.iter_ids()) == expected_ids
        assert cat.verify()["ok"], cat.verify()
        for pid in expected_ids:
            assert cat.image_path(pid).is_file()  # no picture lost to a racing delete


# --- threads ----------------------------------------------------------------------------------------
def test_searches_never_fail_while_other_threads_ingest_and_delete(
    base_catalog: Path, variant_files: list[Path]
) -> None:
    rounds = 16
    prefix = "t"
    every_round_id = {pid for r in range(rounds) for pid in _round_ids(prefix, r)}
    with Catalog.open(base_catalog) as cat:
        base_ids = set(cat.store.iter_ids())
        committed: queue.Queue[int | None] = queue.Queue()
        writer_errors: list[BaseException] = []

        def ingester() -> None:
            try:
                for r in range(rounds):
                    report = cat.ingest(_round_records(prefix, r, variant_files), batch_size=ROUND_SIZE)
                    assert report.added == ROUND_SIZE and not report.failed, report.to_dict()
                    committed.put(r)
            except BaseException as exc:
                writer_errors.append(exc)
            finally:
                committed.put(None)

        def deleter() -> None:  # deletes round r-1 while round r+1 is being ingested
            try:
                while (r := committed.get()) is not None:
                    if r > 0:
                        assert cat.delete(_round_ids(prefix, r - 1)) == ROUND_SIZE
            except BaseException as exc:
                writer_errors.append(exc)

        known = (base_ids | every_round_id).__contains__
        with Searchers(cat, known, prefix, rounds, SEARCH_THREADS) as searchers:
            writers = [threading.Thread(target=ingester), threading.Thread(target=deleter)]
            for t in writers:
                t.start()
            for t in writers:
                t.join(timeout=120)
            time.sleep(0.2)  # a few searches on the final state too
        assert not writer_errors, writer_errors
        assert searchers.errors == [], searchers.errors[:5]
        assert min(searchers.counts[k] for k in ("image", "product", "round")) >= 3, searchers.counts
    _assert_consistent(base_catalog, base_ids | set(_round_ids(prefix, rounds - 1)))


def test_a_delete_racing_an_ingest_of_the_same_picture_keeps_the_picture(base_catalog: Path, tmp_path: Path) -> None:
    """Pictures are content-addressed and shared: deleting product A (its picture then looks unused) while
    product B with the same picture is between storing it and committing must not remove B's picture."""
    picture = tmp_path / "shared.png"
    ImageOps.flip(Image.open(IMAGES[0]).convert("RGB")).save(picture)
    with Catalog.open(base_catalog) as cat:
        cat.ingest([IngestRecord(Product(id="A"), str(picture))])
        paused, go = threading.Event(), threading.Event()
        real_upsert = cat.backend.upsert

        def slow_upsert(items: Any, *args: Any, **kwargs: Any) -> Any:
            if any(it.product.id == "B" for it in items):
                paused.set()  # B's picture is on disk (it already was), its row not yet committed
                go.wait(10)
            return real_upsert(items, *args, **kwargs)

        cat.backend.upsert = slow_upsert  # type: ignore[method-assign]
        ingest = threading.Thread(target=cat.ingest, args=([IngestRecord(Product(id="B"), str(picture))],))
        delete = threading.Thread(target=cat.delete, args=(["A"],))
        ingest.start()
        assert paused.wait(30)
        delete.start()
        delete.join(timeout=1.0)  # unprotected, the delete finishes here and removes the "unused" picture
        go.set()
        ingest.join(timeout=30)
        delete.join(timeout=30)
        assert not ingest.is_alive() and not delete.is_alive()
        assert sorted(set(cat.store.iter_ids()) & {"A", "B"}) == ["B"]
        assert cat.image_path("B").is_file()
        assert cat.verify()["ok"]


# --- another process --------------------------------------------------------------------------------
WRITER_PROCESS = """
import sys
from pathlib import Path
from lookalike import Catalog, Product
from lookalike.sources import IngestRecord
path, folder, rounds, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
variants = sorted(folder.glob("v*.png"), key=lambda p: int(p.stem[1:]))
ids = lambda r: [f"p{r}-{i}" for i in range(size)]
with Catalog.open(path) as cat:
    for r in range(rounds):
        files = variants[(r % 2) * size : (r % 2 + 1) * size]
        records = [IngestRecord(Product(id=pid, title=f"round {r} #{i}", brand=f"pround-{r}"), str(f))
                   for i, (pid, f) in enumerate(zip(ids(r), files))]
        report = cat.ingest(records, batch_size=size)
        assert report.added == size and not report.failed, report.to_dict()
        if r > 0:
            assert cat.delete(ids(r - 1)) == size
        print("ROUND", r, flush=True)
print("DONE", flush=True)
"""


def test_searches_never_fail_while_another_process_ingests_and_deletes(
    base_catalog: Path, variant_files: list[Path]
) -> None:
    rounds = 12
    every_round_id = {pid for r in range(rounds) for pid in _round_ids("p", r)}
    with Catalog.open(base_catalog) as cat:
        base_ids = set(cat.store.iter_ids())
        known = (base_ids | every_round_id).__contains__
        with Searchers(cat, known, "p", rounds, SEARCH_THREADS) as searchers:
            proc = subprocess.run(
                [sys.executable, "-c", WRITER_PROCESS, str(base_catalog), str(variant_files[0].parent), str(rounds),
                 str(ROUND_SIZE)],
                capture_output=True, text=True, timeout=180, env={**os.environ, "LOOKALIKE_THREADS": "1"},
            )  # fmt: skip
            time.sleep(0.2)
        assert proc.returncode == 0 and proc.stdout.strip().endswith("DONE"), proc.stderr[-2000:]
        assert searchers.errors == [], searchers.errors[:5]
        assert min(searchers.counts[k] for k in ("image", "product", "round")) >= 3, searchers.counts
        assert searchers.counts["round_seen"] >= 1  # this process did see the other one's commits
        assert set(cat.store.iter_ids()) == base_ids | set(_round_ids("p", rounds - 1))
        assert cat.verify()["ok"]
    _assert_consistent(base_catalog, base_ids | set(_round_ids("p", rounds - 1)))


# --- a real server under concurrent clients -------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def served(built_catalog: Catalog, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``lookalike serve`` in a subprocess over a copy of the 16-product catalogue; yields (base URL, path)."""
    built_catalog.checkpoint()
    path = tmp_path / "served"
    shutil.copytree(built_catalog.path, path)
    port = _free_port()
    script = Path(sys.executable).with_name("lookalike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.cli"]
    env = {**os.environ, "LOOKALIKE_ADMIN_TOKEN": TOKEN, "LOOKALIKE_MAX_K": "50"}
    proc = subprocess.Popen(
        [*command, "serve", str(path), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"lookalike serve exited: {proc.communicate()[0][-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("lookalike serve did not come up")
            time.sleep(0.2)
        yield base, path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _jpeg(path: Path, upside_down: bool = False) -> bytes:
    img = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    (ImageOps.flip(img) if upside_down else img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def test_served_catalogue_answers_16_concurrent_clients_without_an_error(served: tuple[str, Path]) -> None:
    base, path = served
    base_ids = [p["id"] for p in httpx.get(f"{base}/api/products", params={"limit": 200}).json()["items"]]
    assert len(base_ids) == len(IMAGES)
    uploads = [(p.stem, _jpeg(p)) for p in IMAGES]
    added = [f"http-{i}" for i in range(6)]
    # upside down (not mirrored: a search also looks for the picture's mirror image), so no upload finds these first
    added_pictures = [_jpeg(p, upside_down=True) for p in IMAGES[: len(added)]]
    known = set(base_ids) | set(added)
    results: list[tuple[str, int, float]] = []
    problems: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(HTTP_CLIENTS + 1)

    def check(kind: str, r: httpx.Response, expect_top: str | None = None) -> None:
        body = r.json()
        ids = [h["id"] for h in body["hits"]]
        if not ids or not set(ids) <= known:
            raise AssertionError(f"{kind}: hits {ids}")
        if expect_top is not None and ids[0] != expect_top:
            raise AssertionError(f"{kind}: expected {expect_top} first, got {ids[:3]}")

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=120) as http:
            barrier.wait(timeout=60)
            for i in range(REQUESTS_PER_CLIENT):
                kind = ("upload", "product", "similar")[(seed + i) % 3]
                start = time.perf_counter()
                try:
                    if kind == "upload":
                        stem, data = rng.choice(uploads)
                        r = http.post("/api/search", files={"image": (f"{stem}.jpg", data, "image/jpeg")},
                                      data={"k": "8"})  # fmt: skip
                        r.raise_for_status()
                        check(kind, r, expect_top=stem)
                    elif kind == "product":
                        r = http.post("/api/search", json={"product_id": rng.choice(base_ids), "k": 8})
                        r.raise_for_status()
                        check(kind, r)
                    else:
                        r = http.get(f"/api/products/{rng.choice(base_ids)}/similar", params={"k": 8})
                        r.raise_for_status()
                        check(kind, r)
                    status = r.status_code
                except Exception as exc:
                    status = -1
                    with lock:
                        problems.append(f"client {seed} {kind}: {type(exc).__name__}: {exc}")
                with lock:
                    results.append((kind, status, time.perf_counter() - start))

    def admin() -> None:  # writes through the API while the clients read
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, timeout=120, headers=headers) as http:
            barrier.wait(timeout=60)
            for i, pid in enumerate(added):
                r = http.post("/api/products", data={"id": pid, "title": "added under load"},
                              files={"image": ("a.jpg", added_pictures[i], "image/jpeg")})  # fmt: skip
                if r.status_code != 201:
                    problems.append(f"admin add {pid}: {r.status_code} {r.text[:200]}")
                if i % 2:
                    r = http.delete(f"/api/products/{added[i - 1]}")
                    if r.status_code != 200:
                        problems.append(f"admin delete: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(HTTP_CLIENTS)]
    threads.append(threading.Thread(target=admin))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert problems == [], problems[:5]
    assert len(results) == HTTP_CLIENTS * REQUESTS_PER_CLIENT
    assert all(status == 200 for _, status, _ in results)
    assert {kind for kind, _, _ in results} == {"upload", "product", "similar"}
    health = httpx.get(f"{base}/healthz").json()
    assert health["products"] == len(base_ids) + len(added) // 2
    with Catalog.open(path) as cat:  # the server's writes, seen from another process
        assert cat.verify()["ok"]
        for pid in cat.store.iter_ids():
            assert cat.image_path(pid).is_file()
