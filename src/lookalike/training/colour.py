"""Training the colour head (``lookalike train-colour``): colour features → 12 families, softmax-linear.

Data: the 224-px catalogue's training split (ids not divisible by 5) labelled by ``baseColour`` through
:func:`lookalike.colour.family_of`, each shot masked by its non-background pixels; and the photos of
``clothing-photos-dev/colours.csv`` whose contributors :func:`lookalike.evaluate.datasets.split_contributors`
puts on the training side (the other contributors stay unseen for ``lookalike eval --task photo-colour``),
masked by the garment segmenter when one is given. Plain numpy: full-batch Adam on weighted cross-entropy.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.colour.families import FAMILIES, family_index
from lookalike.colour.features import ColourFeatureCfg, colour_features
from lookalike.colour.model import ColourModel

__all__ = ["colour_training_data", "fit_softmax", "train_colour_head"]

MaskFn = Callable[[Image.Image], "np.ndarray | None"]
ProgressFn = Callable[[str, int, int], None]


def fit_softmax(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, epochs: int = 300, lr: float = 0.01, l2: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (dim, c) and bias (c,) of a softmax-linear classifier minimising the ``w``-weighted mean
    cross-entropy of labels ``y`` (0..c-1) plus ``l2`` × the squared weights; deterministic."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, d = x.shape
    c = len(FAMILIES)
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.mean()
    onehot = np.eye(c)[y]
    params = [np.zeros((d, c)), np.zeros(c)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        logits = x @ params[0] + params[1]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * w[:, None] / n
        grads = [x.T @ g + 2 * l2 * params[0], g.sum(axis=0)]
        for i, gr in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * gr
            v[i] = b2 * v[i] + (1 - b2) * gr * gr
            params[i] -= lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    return params[0].astype(np.float32), params[1].astype(np.float32)


def _catalogue_mask(image: Image.Image, size: int) -> np.ndarray | None:
    """Non-background pixels of a shot on white: channels all above 235 count as background."""
    arr = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    mask = (arr.min(axis=2) < 235).astype(np.float32)
    return mask if mask.sum() > 0.005 * mask.size else None


def composite_data(
    datasets: Path,
    cfg: ColourFeatureCfg,
    mask: MaskFn,
    views: int,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of ``views`` phone-scene composites (:mod:`lookalike.training.composite`) of each
    catalogue training product, each read through ``mask`` (the segmenter, as a query photo is)."""
    from lookalike.training.composite import composite
    from lookalike.training.segment import catalogue_cutouts

    cat_dir = datasets / "fashion-product-images-224"
    with open(cat_dir / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["id"]) % 5 != 0 and family_index(r["baseColour"]) >= 0]
    if limit is not None:
        rows = rows[:limit]
    cache = cache_dir / "garment-masks.npz" if cache_dir is not None else None
    pairs = catalogue_cutouts([(int(r["id"]), cat_dir / r["image"]) for r in rows], cache)
    family = {int(r["id"]): family_index(r["baseColour"]) for r in rows}
    others = [c for _, c in pairs]
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    total = views * len(pairs)
    for v in range(views):
        for i, (pid, cut) in enumerate(pairs):
            picture, _ = composite(cut, rng, 128, others)
            xs.append(colour_features(picture, mask(picture), cfg))
            ys.append(family[pid])
            done = v * len(pairs) + i + 1
            if progress is not None and (done % 200 == 0 or done == total):
                progress("composites", done, total)
    return np.asarray(xs, dtype=np.float32).reshape(-1, cfg.dim), np.asarray(ys, dtype=np.int64)


def colour_training_data(
    datasets: Path,
    cfg: ColourFeatureCfg,
    photo_mask: MaskFn | None = None,
    seed: int = 0,
    limit: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, np.ndarray]:
    """Features and labels: ``cat_x``/``cat_y`` (catalogue training split), ``photo_x``/``photo_y`` (training
    contributors' labelled photos)."""
    from lookalike.evaluate.colour_task import photo_colour_rows, split_photo_contributors

    cat_dir = datasets / "fashion-product-images-224"
    with open(cat_dir / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["id"]) % 5 != 0 and family_index(r["baseColour"]) >= 0]
    if limit is not None:
        rows = rows[:limit]
    cat_x, cat_y = [], []
    for i, r in enumerate(rows):
        with Image.open(cat_dir / r["image"]) as img:
            img.load()
            cat_x.append(colour_features(img, _catalogue_mask(img, cfg.size), cfg))
        cat_y.append(family_index(r["baseColour"]))
        if progress is not None and (i % 200 == 0 or i + 1 == len(rows)):
            progress("catalogue", i + 1, len(rows))
    photos = [r for r in photo_colour_rows(datasets) if r["sender_id"] in split_photo_contributors(datasets, seed)]
    if limit is not None:
        photos = photos[:limit]
    photo_x, photo_y = [], []
    for i, r in enumerate(photos):
        with Image.open(r["path"]) as img:
            img.load()
            rgb = img.convert("RGB")
            photo_x.append(colour_features(rgb, photo_mask(rgb) if photo_mask else None, cfg))
        photo_y.append(FAMILIES.index(r["colour_family"]))
        if progress is not None:
            progress("photos", i + 1, len(photos))
    dim = cfg.dim
    return {
        "cat_x": np.asarray(cat_x, dtype=np.float32).reshape(-1, dim),
        "cat_y": np.asarray(cat_y, dtype=np.int64),
        "photo_x": np.asarray(photo_x, dtype=np.float32).reshape(-1, dim),
        "photo_y": np.asarray(photo_y, dtype=np.int64),
    }


def train_colour_head(
    datasets: Path,
    out: Path,
    *,
    cfg: ColourFeatureCfg | None = None,
    photo_mask: MaskFn | None = None,
    photo_weight: float = 20.0,
    composites: int = 0,
    seed: int = 0,
    epochs: int = 300,
    limit: int | None = None,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Fit the colour head and write it to ``out`` (JSON); returns a summary. ``composites``: phone-scene
    composites per catalogue product, read through ``photo_mask`` (needs it), added to the training data."""
    cfg = cfg or ColourFeatureCfg()
    start = time.perf_counter()
    data = colour_training_data(datasets, cfg, photo_mask, seed, limit, progress)
    if composites > 0:
        if photo_mask is None:
            raise ValueError("composites need the photo mask (the segmenter) to read them")
        comp_x, comp_y = composite_data(datasets, cfg, photo_mask, composites, seed, limit, cache_dir, progress)
    else:
        comp_x, comp_y = np.zeros((0, cfg.dim), np.float32), np.zeros(0, np.int64)
    x = np.concatenate([data["cat_x"], comp_x, data["photo_x"]])
    y = np.concatenate([data["cat_y"], comp_y, data["photo_y"]])
    w = np.concatenate([np.ones(len(data["cat_y"]) + len(comp_y)), np.full(len(data["photo_y"]), photo_weight)])
    weights, bias = fit_softmax(x, y, w, epochs=epochs)
    model = ColourModel(weights, bias, cfg)
    train_acc = float((model.probabilities(x).argmax(axis=1) == y).mean()) if len(y) else 0.0
    summary = {
        "catalogue_items": len(data["cat_y"]),
        "composites": len(comp_y),
        "photos": len(data["photo_y"]),
        "photo_weight": photo_weight,
        "photo_mask": "garment segmenter" if photo_mask else "centre prior",
        "seed": seed,
        "epochs": epochs,
        "train_accuracy": round(train_acc, 4),
        "seconds": round(time.perf_counter() - start, 1),
        "command": command,
    }
    model.info = summary
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return summary
