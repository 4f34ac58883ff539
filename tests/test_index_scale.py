"""The index that scales: IVF past a size threshold, filters inside the search, deletes, checkpoints.

Seeded synthetic data with cluster structure (like image embeddings, unlike uniform noise); the exact
reference is :class:`~lookalike.index.FlatIndex`. Recall allows for ties as faiss's
``contrib/evaluation.py`` does: a returned id counts when its exact score reaches the k-th exact score.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike import Catalog, Filters, Product, read_csv
from lookalike.backends.base import UpsertItem
from lookalike.backends.embedded import EmbeddedBackend
from lookalike.index import FaissIndex, FlatIndex, IndexChoice, IndexPolicy, IvfIndex

from .conftest import PRODUCTS_CSV, PRODUCTS_DIR

DIM = 64
COLOURS = ("red", "blue", "green", "black")


def clustered(n: int, seed: int, centres: int = 100, spread: float = 0.35) -> np.ndarray:
    """``n`` L2-normalised vectors around ``centres`` seeded cluster centres."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def queries_near(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vectors[rng.choice(len(vectors), n, replace=False)] + 0.2 * rng.standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def fill(backend: EmbeddedBackend, vectors: np.ndarray, start: int = 0, batch: int = 2000) -> None:
    """Products ``p<i>`` with a colour (i % 4) and the given vectors, in transactions of ``batch``."""
    for lo in range(0, len(vectors), batch):
        items = [
            UpsertItem(Product(id=f"p{start + i}", colour=COLOURS[(start + i) % 4]), vectors[i])
            for i in range(lo, min(lo + batch, len(vectors)))
        ]
        backend.upsert(items)


def exact(backend: EmbeddedBackend, allowed: np.ndarray | None = None) -> FlatIndex:
    ids, vecs = backend.vectors_by_rowid(backend.rowids())
    flat = FlatIndex(DIM)
    flat.add(ids, vecs)
    return flat


def recall_at_k(backend: EmbeddedBackend, q: np.ndarray, k: int = 10, filters: Filters | None = None) -> float:
    """Mean recall@k of the backend's search against exact search (ties count as hits)."""
    allowed = backend.filter_rowids(filters)
    scores, ids = exact(backend).search(q, k, allowed_ids=allowed)
    got = backend.search(q, k, filters)
    hits = 0
    for qi, row in enumerate(got):
        truth = set(ids[qi][ids[qi] >= 0].tolist())
        kth = scores[qi][min(k, len(truth)) - 1]
        for product, score in row:
            rowid = backend.rowid_of(product.id)
            hits += rowid in truth or score >= kth - 1e-6
    return hits / (len(got) * k)


@pytest.fixture(scope="module")
def ivf_backend(tmp_path_factory):
    """12,000 clustered products in an IVF-PQ catalogue (threshold 2,000; PQ codes forced)."""
    folder = tmp_path_factory.mktemp("ivf")
    policy = IndexPolicy(exact_max=2000, codes="pq", min_pq=4000, nprobe=16, rerank=100)
    backend = EmbeddedBackend(folder, DIM, policy)
    fill(backend, clustered(12_000, seed=1), batch=10_000)  # PQ trained on 10,000 vectors
    yield backend
    backend.close()


def test_policy_is_exact_when_small_and_compact_codes_past_the_threshold():
    policy = IndexPolicy(exact_max=10_000, memory_budget_mb=64)
    assert policy.choose(10_000, 256).kind == "faiss-flat-ip"
    assert policy.choose(10_001, 256).kind == "faiss-ivf-sq4"
    million = IndexPolicy().choose(1_000_000, 1280)
    assert million.kind == "faiss-ivf-sq4" and million.bytes_per_vector(1280) <= 1536
    tight = IndexPolicy(exact_max=10**9, memory_budget_mb=10)  # float32 would need 1 GB, SQ4 130 MB
    choice = tight.choose(1_000_000, 256)
    assert choice.kind == "faiss-ivf-pq" and choice.bytes_per_vector(256) * 1_000_000 <= 10 * 2**20
    assert 256 % choice.pq_m == 0


def test_ivf_with_reranking_matches_exact_search(ivf_backend):
    assert ivf_backend.index.kind == "faiss-ivf-pq"
    q = queries_near(clustered(12_000, seed=1), 200, seed=2)
    assert recall_at_k(ivf_backend, q) >= 0.98


def test_reranked_scores_are_exact_cosines(ivf_backend):
    q = queries_near(clustered(12_000, seed=1), 5, seed=3)
    for qi, row in enumerate(ivf_backend.search(q, 10)):
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)
        for product, score in row:
            vec = ivf_backend.vector_of(product.id)
            assert score == pytest.approx(float(vec @ q[qi]), abs=1e-5)


@pytest.mark.parametrize("colours", [("red",), ("red", "blue")])
def test_filters_apply_inside_the_ann_search(ivf_backend, colours):
    q = queries_near(clustered(12_000, seed=1), 100, seed=4)
    filters = Filters(colour=colours)
    for row in ivf_backend.search(q, 10, filters):
        assert len(row) == 10 and all(p.colour in colours for p, _ in row)
    assert recall_at_k(ivf_backend, q, filters=filters) >= 0.98


def test_a_filter_matching_a_handful_still_finds_them_all(tmp_path):
    policy = IndexPolicy(exact_max=500, nprobe=2, rerank=50)
    backend = EmbeddedBackend(tmp_path, DIM, policy)
    vectors = clustered(5000, seed=5)
    fill(backend, vectors)
    backend.upsert([UpsertItem(Product(id=f"rare{i}", colour="pink"), vectors[i * 100]) for i in range(7)])
    assert isinstance(backend.index, IvfIndex) and backend.index.nprobe == 2
    row = backend.search(queries_near(vectors, 1, seed=6), 10, Filters(colour="pink"))[0]
    assert sorted(p.id for p, _ in row) == [f"rare{i}" for i in range(7)]  # every list probed
    backend.close()


def test_deleted_products_never_come_back_from_the_ann_index(tmp_path):
    backend = EmbeddedBackend(tmp_path, DIM, IndexPolicy(exact_max=1000, nprobe=8))
    vectors = clustered(4000, seed=7)
    fill(backend, vectors)
    q = vectors[:50]
    first = {p.id for row in backend.search(q, 10) for p, _ in row}
    gone = sorted(first)[: len(first) // 2]
    backend.delete(gone)
    after = {p.id for row in backend.search(q, 10) for p, _ in row}
    assert not after & set(gone)
    assert backend.verify()["ok"] and len(backend.index) == 4000 - len(gone)
    assert recall_at_k(backend, q) >= 0.98
    backend.close()


def test_index_switches_from_exact_to_ivf_past_the_threshold_and_back(tmp_path):
    backend = EmbeddedBackend(tmp_path, DIM, IndexPolicy(exact_max=1000, nprobe=8))
    vectors = clustered(1600, seed=8)
    fill(backend, vectors[:1000])
    assert backend.index.kind == "faiss-flat-ip"
    fill(backend, vectors[1000:1001], start=1000)
    assert backend.index.kind == "faiss-ivf-sq4" and len(backend.index) == 1001
    fill(backend, vectors[1001:], start=1001)
    assert backend.verify()["ok"] and recall_at_k(backend, vectors[:100]) >= 0.98
    backend.delete([f"p{i}" for i in range(1200)])  # under half the threshold: exact again
    assert backend.index.kind == "faiss-flat-ip" and backend.verify()["ok"]
    backend.close()


def test_ivf_checkpoint_is_reloaded_not_rebuilt(tmp_path, monkeypatch):
    policy = IndexPolicy(exact_max=1000, nprobe=8)
    backend = EmbeddedBackend(tmp_path, DIM, policy)
    vectors = clustered(3000, seed=9)
    fill(backend, vectors)
    q = queries_near(vectors, 20, seed=10)
    before = [[(p.id, round(s, 5)) for p, s in row] for row in backend.search(q, 10)]
    backend.close()
    assert len(list(tmp_path.glob("index.*.faiss"))) == 1

    def no_rebuild(self: EmbeddedBackend) -> int:
        raise AssertionError("the checkpoint should have been loaded")

    monkeypatch.setattr(EmbeddedBackend, "rebuild", no_rebuild)
    again = EmbeddedBackend(tmp_path, DIM, policy)
    assert again.index.kind == "faiss-ivf-sq4" and len(again.index) == 3000
    assert [[(p.id, round(s, 5)) for p, s in row] for row in again.search(q, 10)] == before
    fill(again, clustered(10, seed=11), start=5000)  # catches up incrementally on the loaded index
    assert again.verify()["ok"] and len(again.index) == 3010
    again.close()


def test_ivf_index_reports_its_compact_size():
    vectors = clustered(5000, seed=12)
    index = IvfIndex.create(DIM, IndexChoice("faiss-ivf-pq", 64, 16), vectors)
    index.add_new(np.arange(5000), vectors)
    per_product = (index.nbytes() - 64 * DIM * 4 - 16 * 256 * 4 * 4) / 5000
    assert per_product == 16 + 8
    assert index.remove(np.arange(100)) == 100 and len(index) == 4900
    assert sorted(index.ids().tolist()) == list(range(100, 5000))


def test_catalogue_manifest_records_the_index_type(tmp_path):
    path = tmp_path / "cat"
    with Catalog.create(path, extractor="colour-histogram", index_policy=IndexPolicy(exact_max=8)) as cat:
        assert json.loads((path / "manifest.json").read_text())["index"]["type"] == "faiss-flat-ip"
        report = cat.ingest(read_csv(PRODUCTS_CSV))
        assert report.added == 16
        assert cat.search(PRODUCTS_DIR / "images/13466.jpg", k=1)[0].id == "13466"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["index"]["type"] == "faiss-ivf-sq4"
    assert manifest["index"]["policy"]["exact_max"] == 8
    with Catalog.open(path) as cat:  # the policy comes back from the manifest
        assert cat.backend.policy.exact_max == 8 and cat.index.kind == "faiss-ivf-sq4"


def test_remembered_filters_follow_writes(tmp_path):
    backend = EmbeddedBackend(tmp_path, DIM, IndexPolicy(exact_max=100))
    vectors = clustered(300, seed=13)
    fill(backend, vectors)
    red = Filters(colour="red")
    before = {p.id for p, _ in backend.search(vectors[:1], 300, red)[0]}
    assert len(before) == 75 and "p1" not in before
    backend.upsert([UpsertItem(Product(id="p1", colour="red"), None)])  # p1 was blue
    after = {p.id for p, _ in backend.search(vectors[:1], 300, red)[0]}
    assert after == before | {"p1"}
    backend.close()


def test_filters_on_ids_too_large_for_a_bitmap():
    index = FaissIndex(DIM)
    ids = np.array([3, 2**40, 2**40 + 5], dtype=np.int64)
    vectors = clustered(3, seed=14)
    index.add(ids, vectors)
    _, got = index.search(vectors, 3, allowed_ids=np.array([2**40 + 5, 3]))
    assert all(set(row[row >= 0].tolist()) == {3, 2**40 + 5} for row in got)
