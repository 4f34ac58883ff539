"""The text tower: shipped tokenizer + ONNX encoder offline, the phrase generator, task 4 scoring."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.evaluate.text_task import (
    PhraseQuery,
    gender_fits,
    phrase_precision,
    phrase_queries,
    phrase_relevance,
    title_recall,
)
from lookalike.training.phrases import Labels, attribute_phrase, product_phrases

DATA = Path(__file__).parent / "data" / "text"
ROWS = [
    {"articleType": "Shirts", "baseColour": "Navy Blue", "gender": "Men", "usage": "Casual", "season": "Fall"},
    {"articleType": "Shirts", "baseColour": "Blue", "gender": "Unisex", "usage": "Formal", "season": "Summer"},
    {"articleType": "Shirts", "baseColour": "Blue", "gender": "Women", "usage": "Casual", "season": "Summer"},
    {"articleType": "Dresses", "baseColour": "Maroon", "gender": "Women", "usage": "Casual", "season": "Summer"},
    {"articleType": "Dresses", "baseColour": "Red", "gender": "Women", "usage": "Party", "season": "Winter"},
    {"articleType": "Wallets", "baseColour": "Black", "gender": "Men", "usage": "Casual", "season": "Fall"},
    {"articleType": "Wallets", "baseColour": "", "gender": "Men", "usage": "Casual", "season": "Fall"},
]


# --- the shipped encoder ----------------------------------------------------------------------------
def test_encoder_loads_offline_and_encodes() -> None:
    code = (
        "import socket\n"
        "def no_net(*a, **k): raise RuntimeError('network')\n"
        "socket.socket.connect = no_net; socket.getaddrinfo = no_net\n"
        "import numpy as np, sys\n"
        "from lookalike.text import default_text_encoder\n"
        "v = default_text_encoder().encode(['navy blue shirt for men', 'white sneakers', ''])\n"
        "assert v.shape == (3, 256) and v.dtype == np.float32, v.shape\n"
        "assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_encoder_is_deterministic_and_batch_independent() -> None:
    from lookalike.text import default_text_encoder

    enc = default_text_encoder()
    one = enc.encode(["black leather wallet"])
    assert np.array_equal(one, enc.encode(["black leather wallet"]))
    many = enc.encode(["a much longer phrase about a pair of white running shoes for women", "black leather wallet"])
    # padding is masked out; INT8 dynamic quantisation scales activations per batch, hence not exact
    assert float(one[0] @ many[1]) > 0.97
    with pytest.raises(TypeError):
        enc.encode("red dress")  # type: ignore[arg-type]


def test_red_dress_is_closer_to_the_red_dress_picture() -> None:
    from lookalike.extractors import create_extractor
    from lookalike.imaging.decode import load_image
    from lookalike.text import default_text_encoder

    ext = create_extractor("lookalike-fashion")
    pics = np.stack([ext.preprocess(load_image(DATA / f)) for f in ("18736.jpg", "10356.jpg")])
    dress, shirt = ext.embed_preprocessed(pics)
    text = default_text_encoder().encode(["red dress", "blue shirt for men"])
    assert text[0] @ dress > text[0] @ shirt + 0.05
    assert text[1] @ shirt > text[1] @ dress + 0.05


# --- phrases ----------------------------------------------------------------------------------------
def test_phrases_are_deterministic_and_name_the_labels() -> None:
    labels = Labels("Shirts", "Navy Blue", "Men", "Casual", "Fall")
    a = product_phrases(labels, random.Random(3), 8)
    assert a == product_phrases(labels, random.Random(3), 8)
    assert a != product_phrases(labels, random.Random(4), 8)
    assert all("shirt" in p for p in a)
    assert any("blue" in p for p in a) and any("men" in p or "him" in p for p in a)
    p = attribute_phrase("Wallets", "black", None, random.Random(0))
    assert "black" in p and ("wallet" in p or "purse" in p)
    assert phrase_queries(ROWS, seed=1) == phrase_queries(ROWS, seed=1)


def test_phrase_queries_one_per_combination() -> None:
    qs = phrase_queries(ROWS, distinct=True)
    keys = [(q.article_type, q.family, q.gender) for q in qs]
    # the Unisex shirt asks for no gender; the wallet with no colour is skipped; maroon and red are one family
    assert keys == [
        ("Dresses", "red", "Women"),
        ("Shirts", "blue", None),
        ("Shirts", "blue", "Men"),
        ("Shirts", "blue", "Women"),
        ("Wallets", "black", "Men"),
    ]
    per_product = phrase_queries(ROWS)
    assert len(per_product) == 6 and per_product[0].article_type == "Shirts" and per_product[0].gender == "Men"


# --- scoring against brute force --------------------------------------------------------------------
def test_gender_fits() -> None:
    assert gender_fits("Men", "Unisex") and gender_fits("Women", "Unisex") and gender_fits(None, "Boys")
    assert not gender_fits("Men", "Women") and not gender_fits("Boys", "Unisex") and not gender_fits("Unisex", "Men")


def test_phrase_relevance_and_precision_match_brute_force() -> None:
    qs = phrase_queries(ROWS, distinct=True)
    rel = phrase_relevance(qs, ROWS)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(len(qs), len(ROWS)))
    for k in (1, 3, 10):
        got = phrase_precision(scores, rel, k)
        for i, q in enumerate(qs):
            order = sorted(range(len(ROWS)), key=lambda j: -scores[i, j])[:k]
            hits = 0
            for j in order:
                r = ROWS[j]
                fam = {"Navy Blue": "blue", "Blue": "blue", "Maroon": "red", "Red": "red", "Black": "black"}.get(
                    r["baseColour"]
                )
                g_ok = q.gender is None or r["gender"] == q.gender or (r["gender"] == "Unisex" and q.gender != "Boys")
                hits += r["articleType"] == q.article_type and fam == q.family and g_ok
            assert got[i] == pytest.approx(hits / k)
    # Men's blue shirt: the navy one and the Unisex one, not the women's
    i = [q.gender for q in qs].index("Men")
    assert rel[i].tolist() == [True, True, False, False, False, False, False]
    assert PhraseQuery("x", "Dresses", "red", "Women") == qs[0].__class__("x", "Dresses", "red", "Women")


def test_title_recall_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(30, 12))
    own = rng.integers(0, 12, size=30)
    for k in (1, 5, 12):
        expect = [float(own[i] in np.argsort(-scores[i])[:k]) for i in range(30)]
        assert title_recall(scores, own, k).tolist() == expect
    assert title_recall(np.eye(4), [0, 1, 2, 3], 1).tolist() == [1.0] * 4
    assert title_recall(np.eye(4), [1, 2, 3, 0], 1).tolist() == [0.0] * 4


# --- a tiny training run ----------------------------------------------------------------------------
@pytest.mark.torch
def test_tiny_projection_training_aligns_texts_with_their_pictures() -> None:
    pytest.importorskip("torch")
    from lookalike.training.text import ProjectionConfig, TrainingTexts, projection_forward, train_projection

    rng = np.random.default_rng(0)
    n = 48
    text = rng.normal(size=(n, 384)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    image = text @ rng.normal(size=(384, 256)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    rows = [{"articleType": f"T{i}", "baseColour": "Black", "gender": "Men"} for i in range(n)]
    data = TrainingTexts(tuple(f"t{i}" for i in range(n)), tuple(range(n)), tuple([None] * n))
    before = (np.argmax(projection_forward(_random_projection(rng), text) @ image.T, axis=1) == np.arange(n)).mean()
    w = train_projection(text, image, data, rows, ProjectionConfig(epochs=60, batch_size=16, lr=1e-2))
    out = projection_forward(w, text)
    assert out.shape == (n, 256) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    after = (np.argmax(out @ image.T, axis=1) == np.arange(n)).mean()
    assert after >= 0.9 > before


def _random_projection(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"w1": rng.normal(size=(384, 256)).astype(np.float32), "b1": np.zeros(256, np.float32)}


@pytest.mark.torch
def test_numpy_projection_matches_torch_mlp() -> None:
    torch = pytest.importorskip("torch")
    from lookalike.training.text import projection_forward

    rng = np.random.default_rng(0)
    w = {
        k: rng.normal(size=s).astype(np.float32)
        for k, s in (("w1", (6, 8)), ("b1", (8,)), ("w2", (8, 3)), ("b2", (3,)))
    }
    x = rng.normal(size=(5, 6)).astype(np.float32)
    h = torch.nn.functional.gelu(torch.from_numpy(x @ w["w1"] + w["b1"])) @ torch.from_numpy(
        w["w2"]
    ) + torch.from_numpy(w["b2"])
    assert np.allclose(projection_forward(w, x), torch.nn.functional.normalize(h, dim=-1).numpy(), atol=1e-5)
