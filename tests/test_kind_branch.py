"""The kind branch (issue 28): the shipped embedding graph with a second output, the kinds a picture shows, read by a
fine-tuned copy of the model's last block; a catalogue of that very model reads a query's kinds with it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lookalike.extractors.base import with_mirror
from lookalike.extractors.kind_branch import KindBranch, kind_branch_of
from lookalike.imaging.decode import load_image
from lookalike.kind import KindBranchSpec, KindModel, default_kind_model

DATA = Path(__file__).parent / "data"
PHOTOS = DATA / "photos"


def test_the_head_and_the_branch_agree_by_a_weighted_geometric_mean(tmp_path: Path) -> None:
    head = KindModel(("Tshirts", "Dresses"), np.zeros((2, 2), np.float32), np.array([0.0, 0.0]), "m", 2)
    assert head.predict(np.ones((1, 2))) == pytest.approx([0.5, 0.5])
    with_branch = replace(head, branch=KindBranchSpec("b.onnx", "0" * 64, weight=0.5))
    read = np.array([[0.2, 0.8], [0.2, 0.8]], np.float32)  # the branch's reading of two views
    p = with_branch.predict(np.ones((2, 2)), read)
    assert p == pytest.approx([1 / 3, 2 / 3], abs=1e-5)  # sqrt(.5*.2) : sqrt(.5*.8), normalised
    assert head.predict(np.ones((2, 2)), read) == pytest.approx([0.5, 0.5])  # a head without a branch ignores it
    with_branch.save(tmp_path / "k.json")
    again = KindModel.load(tmp_path / "k.json")
    assert again.branch == with_branch.branch


@pytest.fixture(scope="module")
def fashion():
    from lookalike.extractors import create_extractor

    return create_extractor("lookalike-fashion")


def test_the_shipped_branch_gives_the_models_vectors_and_a_kind(fashion) -> None:
    model = default_kind_model()
    assert model is not None and model.branch is not None
    branch = kind_branch_of(fashion, model)
    assert isinstance(branch, KindBranch)
    img = load_image(PHOTOS / "tshirt.jpg")
    views = np.stack([fashion.preprocess(v) for v in with_mirror(img)])
    vectors, kinds = branch.read(views)
    assert np.array_equal(vectors, fashion.embed_preprocessed(views))  # the same graph: the same vectors
    assert kinds.shape == (2, len(model.classes)) and np.allclose(kinds.sum(axis=1), 1.0, atol=1e-4)
    assert model.classes[int(kinds.mean(axis=0).argmax())] in ("Tshirts", "Tops", "Shirts")


def test_only_the_very_model_file_gets_the_branch(fashion, lite0) -> None:
    from lookalike.extractors import create_extractor

    model = default_kind_model()
    assert kind_branch_of(lite0, model) is None  # another model
    assert kind_branch_of(create_extractor("lookalike-fashion-fp32"), model) is None  # the same model, FP32 weights
    assert kind_branch_of(fashion, replace(model, branch=None)) is None  # a head without a branch
    other = replace(model, branch=replace(model.branch, embedding_sha256="0" * 64))
    assert kind_branch_of(fashion, other) is None  # grafted on other weights


@pytest.fixture(scope="module")
def fashion_catalog(tmp_path_factory: pytest.TempPathFactory, fashion):
    from lookalike import Catalog, read_csv

    cat = Catalog.create(tmp_path_factory.mktemp("kind-branch") / "cat", extractor=fashion)
    assert cat.ingest(read_csv(DATA / "products" / "products.csv")).added == 16
    yield cat
    cat.close()


def test_a_search_reads_the_kind_with_the_branch(fashion_catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = PHOTOS / "tshirt.jpg"
    plain = fashion_catalog.search_result(photo, k=5)
    model = default_kind_model()
    assert model is not None
    jeans = np.zeros(len(model.classes), np.float32)
    jeans[model.classes.index("Jeans")] = 1.0
    real = KindBranch.read

    def sees_jeans(self: KindBranch, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vectors, kinds = real(self, batch)
        return vectors, np.tile(jeans, (len(kinds), 1))

    monkeypatch.setattr(KindBranch, "read", sees_jeans)
    steered = fashion_catalog.search_result(photo, k=5)
    assert steered.kind is not None and steered.kind.used == "Jeans" and steered.kind.seen[0][0] == "Jeans"
    assert plain.kind is not None and plain.kind.used != "Jeans"
    assert steered.hits[0].product.article_type == "Jeans"
    batch = fashion_catalog.search_many_results([photo], k=5)[0]  # a batch reads its queries alike
    assert [h.id for h in batch.hits] == [h.id for h in steered.hits] and batch.kind == steered.kind
    fashion_catalog.kind_rank = False  # the stage off: no branch, no kinds
    try:
        off = fashion_catalog.search_result(photo, k=5)
    finally:
        fashion_catalog.kind_rank = True
    assert off.kind is not None and off.kind.seen == []


def test_a_branch_learns_kinds_from_maps_and_grafts_on_the_shipped_graph(tmp_path: Path, fashion) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from lookalike.extractors.identity import spec_weights
    from lookalike.training.kind_branch import BranchCfg, branch_graph, branch_probabilities, fit_branch

    rng = np.random.default_rng(0)

    def maps(labels: list[int]) -> np.ndarray:  # kind c: channel c lit up, on noise
        x = rng.normal(0, 0.3, (len(labels), 192, 7, 7)).astype(np.float32)
        for i, c in enumerate(labels):
            x[i, c * 10 : c * 10 + 10] += 3.0
        return x.astype(np.float16)

    shot_labels = [0, 1, 2] * 8
    photo_labels = [0, 2] * 6
    data = {
        "classes": ("A", "B", "C"),
        "shots": maps(shot_labels),
        "shot_labels": np.array(shot_labels),
        "photos": maps(photo_labels),
        "photo_sets": [frozenset({c}) if c == 0 else frozenset({1, 2}) for c in photo_labels],  # partial labels
    }
    net = fit_branch(data, BranchCfg(steps=40, batch=16, lr=1e-3))
    test_labels = [0, 1, 2] * 3
    right = branch_probabilities(net, maps(test_labels)).argmax(axis=1)
    assert (right == np.array(test_labels)).mean() >= 0.8
    fashion_file = spec_weights("lookalike-fashion")
    assert fashion_file is not None
    out = branch_graph(net, fashion_file, tmp_path / "kind.onnx")
    branch = KindBranch("lookalike-fashion", out, fashion.preprocess_cfg, 3)
    img = load_image(PHOTOS / "shoes.jpg")
    views = np.stack([fashion.preprocess(v) for v in with_mirror(img)])
    vectors, kinds = branch.read(views)
    assert np.array_equal(vectors, fashion.embed_preprocessed(views)) and kinds.shape == (2, 3)
    with pytest.raises(Exception, match="kind"):
        KindBranch("lookalike-fashion", fashion_file, fashion.preprocess_cfg, 3)  # the plain graph has no kinds
