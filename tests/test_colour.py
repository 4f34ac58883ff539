"""Colour families, features, the colour head, colour-aware ranking and task 3's metrics."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.colour import (
    FAMILIES,
    ColourFeatureCfg,
    ColourModel,
    agreement,
    colour_features,
    default_colour_model,
    family_of,
    preference_distribution,
    rerank_order,
)
from lookalike.evaluate.colour_metrics import colour_scores
from lookalike.training.colour import fit_softmax


def test_catalogue_colour_names_map_to_families() -> None:
    assert family_of("Navy Blue") == "blue"
    assert family_of("  off-white ") == "white"
    assert family_of("Maroon") == "red"
    assert family_of("Beige") == "brown"
    assert family_of("red") == "red"
    assert family_of("Chartreuse-ish") is None
    assert family_of(None) is None


def test_a_preference_puts_all_mass_on_its_family_and_refuses_unknown_names() -> None:
    p = preference_distribution("Maroon")
    assert p[FAMILIES.index("red")] == 1.0 and p.sum() == 1.0
    with pytest.raises(ValueError, match="unknown colour"):
        preference_distribution("sparkly")


def test_features_follow_the_mask_not_the_background() -> None:
    cfg = ColourFeatureCfg(white_points=(0.0,))  # the pixels as they are
    arr = np.zeros((80, 80, 3), dtype=np.uint8)
    arr[:] = (200, 20, 20)  # red background
    arr[20:60, 20:60] = (20, 20, 200)  # blue garment in the middle
    img = Image.fromarray(arr)
    mask = np.zeros((80, 80), dtype=np.float32)
    mask[20:60, 20:60] = 1
    blue = colour_features(Image.fromarray(np.full((8, 8, 3), (20, 20, 200), np.uint8)), None, cfg)
    red = colour_features(Image.fromarray(np.full((8, 8, 3), (200, 20, 20), np.uint8)), None, cfg)
    masked = colour_features(img, mask, cfg)
    assert float(masked @ blue) > 0.9 and float(masked @ red) < 0.3
    assert masked.shape == (cfg.dim,) and abs(float(masked @ masked) - 1.0) < 1e-5


def test_the_white_patch_view_reads_a_dimly_lit_white_garment_as_white() -> None:
    cfg = ColourFeatureCfg()
    assert cfg.white_points == (0.0, 95.0) and cfg.dim == 2 * cfg.cells
    dim_white = np.full((64, 64, 3), 150, np.uint8)  # a white shirt under a dim lamp: the brightest thing there
    dim_white[:8] = 90  # a darker floor at the top
    white = dim_white.copy()
    white[8:] = 255
    mask = np.zeros((64, 64), np.float32)
    mask[8:] = 1
    dim_f, white_f = (colour_features(Image.fromarray(a), mask, cfg) for a in (dim_white, white))
    raw, patched = slice(0, cfg.cells), slice(cfg.cells, cfg.dim)
    assert float(dim_f[raw] @ white_f[raw]) < 0.1  # as they are, grey is not white
    assert float(dim_f[patched] @ white_f[patched]) > 0.99  # balanced, both are white
    for part in (raw, patched):
        assert abs(float(dim_f[part] @ dim_f[part]) - 1.0) < 1e-5


def test_softmax_fit_separates_two_colours() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[1, 0, 0, 0]] * 50 + [[0, 1, 0, 0]] * 50, dtype=float)
    x = rng.normal(0, 0.1, (100, 4)) + centres
    y = np.array([0] * 50 + [3] * 50)
    w, b = fit_softmax(x, y, epochs=200, lr=0.05)
    pred = (x @ w + b).argmax(axis=1)
    assert (pred == y).mean() == 1.0


def test_shipped_colour_head_reads_plain_colours_on_white(tmp_path) -> None:
    model = default_colour_model()
    for rgb, fam in (((15, 15, 15), "black"), ((200, 20, 30), "red"), ((30, 60, 180), "blue")):
        arr = np.full((96, 96, 3), 255, np.uint8)
        arr[16:80, 24:72] = rgb
        probs = model.predict(Image.fromarray(arr), (arr.min(axis=2) < 235).astype(np.float32))
        assert FAMILIES[int(probs.argmax())] == fam, (rgb, dict(zip(FAMILIES, probs.round(2), strict=True)))
    path = tmp_path / "head.json"
    model.save(path)
    again = ColourModel.load(path)
    np.testing.assert_allclose(again.weights, model.weights, atol=1e-6)


def test_rerank_adds_weighted_agreement_and_keeps_ties_in_order() -> None:
    q = preference_distribution("red")
    fams = np.array([FAMILIES.index("blue"), FAMILIES.index("red"), -1, FAMILIES.index("red")])
    agree = agreement(q, fams)
    assert agree.tolist() == [0.0, 1.0, 0.0, 1.0]
    order, scores = rerank_order(np.array([0.9, 0.8, 0.85, 0.8]), agree, 0.2)
    assert order.tolist() == [1, 3, 0, 2]
    np.testing.assert_allclose(scores, [1.0, 1.0, 0.9, 0.85], atol=1e-6)


def _brute(ranked, q_types, q_fams, g_types, g_fams, k, exclude=None):
    tc, ft, typed, both, best, fam = [], [], 0, 0, [], {}
    for i in range(len(q_types)):
        top = [j for j in ranked[i][:k] if j >= 0]
        t_hits = [j for j in top if g_types[j] in q_types[i]]
        c_hits = [j for j in t_hits if g_fams[j] == q_fams[i]]
        ft.append(len(t_hits) / k)
        if q_fams[i] == "multi":
            continue
        tc.append(len(c_hits) / k)
        fam.setdefault(q_fams[i], []).append(len(c_hits) / k)
        typed += len(t_hits)
        both += len(c_hits)
        n_rel = sum(
            1
            for j in range(len(g_types))
            if g_types[j] in q_types[i] and g_fams[j] == q_fams[i] and (exclude is None or j != exclude[i])
        )
        best.append(min(k, n_rel) / k)
    return np.mean(tc), np.mean(ft), both / typed, np.mean(best), {f: np.mean(v) for f, v in fam.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_colour_metrics_match_a_brute_force_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    types, fams = ["Shirts", "Jeans", "Heels"], ["red", "blue", "white", None]
    ng, nq, k = 60, 25, 10
    g_types = [types[i] for i in rng.integers(0, 3, ng)]
    g_fams = [fams[i] for i in rng.integers(0, 4, ng)]
    q_types = [frozenset(rng.choice(types, size=rng.integers(1, 3), replace=False)) for _ in range(nq)]
    q_fams = [["red", "blue", "white", "multi"][i] for i in rng.integers(0, 4, nq)]
    ranked = np.stack([rng.permutation(ng)[:12] for _ in range(nq)])
    ranked[0, 5:] = -1  # a padded row
    exclude = [int(j) for j in rng.integers(-1, ng, nq)]
    got = colour_scores(ranked, q_types, q_fams, g_types, g_fams, k, exclude)
    tc, ft, share, best, fam = _brute(ranked, q_types, q_fams, g_types, g_fams, k, exclude)
    assert got.type_colour == pytest.approx(tc)
    assert got.fine_type == pytest.approx(ft)
    assert got.colour_share == pytest.approx(share)
    assert got.best == pytest.approx(best)
    assert got.per_family == pytest.approx(fam)
    assert got.colour_queries == sum(f != "multi" for f in q_fams)


def test_colour_metrics_edge_cases() -> None:
    with pytest.raises(ValueError):
        colour_scores(np.zeros((1, 3), dtype=int), [frozenset({"a"})], ["red"], ["a"], ["red"], k=10)
    only_multi = colour_scores(np.array([[0]]), [frozenset({"a"})], ["multi"], ["a"], ["red"], k=1)
    assert only_multi.type_colour == 0.0 and only_multi.fine_type == 1.0 and only_multi.colour_share == 0.0


# --- choosing a photo's colour-stage weights (lookalike.evaluate.colour_tuning) -------------------------
def test_contributor_folds_keep_each_contributors_photos_together() -> None:
    from lookalike.evaluate.colour_tuning import contributor_folds

    senders = ["7", "3", "7", "1", "9", "3", "5", "2"]
    folds = contributor_folds(senders, folds=3)
    for s in set(senders):
        assert len({int(f) for f, t in zip(folds, senders, strict=True) if t == s}) == 1
    assert set(folds.tolist()) == {0, 1, 2}


def test_choose_takes_the_best_colour_that_keeps_the_fine_type() -> None:
    from lookalike.evaluate.colour_tuning import Setting, choose

    runs = [
        Setting(0.3, 0.2, 20, 0.479, 0.827),
        Setting(0.5, 0.1, 20, 0.491, 0.803),  # more colour, but the kind is lost
        Setting(0.5, 0.5, 20, 0.485, 0.831),
        Setting(0.3, 0.3, 20, 0.479, 0.832),
    ]
    assert choose(runs, 0.829) == runs[2]
    assert choose(runs, 0.9) == runs[3]  # none keeps it: the one that keeps the most


def test_cross_validated_colours_never_read_a_photo_with_a_head_that_saw_it() -> None:
    from lookalike.evaluate.colour_tuning import cross_validated_colours

    dim = default_colour_model().cfg.dim
    rng = np.random.default_rng(0)
    cat_x = rng.random((60, dim), dtype=np.float32)
    cat_y = rng.integers(0, 12, 60)
    photo_x = rng.random((12, dim), dtype=np.float32)
    photo_y = rng.integers(0, 12, 12)
    folds = np.arange(12) % 3
    first = cross_validated_colours(cat_x, cat_y, photo_x, photo_y, folds)
    assert first.shape == (12, 12) and np.allclose(first.sum(1), 1.0, atol=1e-5)
    relabelled = photo_y.copy()
    relabelled[folds == 0] = (relabelled[folds == 0] + 1) % 12  # fold 0's own labels change
    second = cross_validated_colours(cat_x, cat_y, photo_x, relabelled, folds)
    assert np.allclose(first[folds == 0], second[folds == 0])  # its photos are read by heads that never saw them
    assert not np.allclose(first[folds != 0], second[folds != 0])  # the other folds' heads did see them


def test_the_kind_vote_counts_only_the_nearest_voters() -> None:
    from lookalike.colour.ranking import colour_kind_order

    scores = np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32)
    kinds = ["Sandals", "Sports Shoes", "Sports Shoes", "Sandals"]
    families = np.array([-1, -1, -1, -1])
    flat = np.full(12, 1 / 12, dtype=np.float32)
    one, _, _ = colour_kind_order(scores, kinds, families, flat, 0.0, 1.0, voters=1)
    assert one.tolist() == [0, 3, 1, 2]  # only the nearest votes: sandals first
    all_four, _, _ = colour_kind_order(scores, kinds, families, flat, 0.0, 1.0, voters=4)
    assert all_four.tolist() == [0, 1, 2, 3]  # both kinds get half the vote: similarity decides
