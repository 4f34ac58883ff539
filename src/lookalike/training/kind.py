"""Training the kind head (``lookalike train-kind``): a query picture's embedding → its kind of product.

Data, all read through the evaluation's embedding cache with the embedding model the head is for:

* the 224-px catalogue's training split (ids not divisible by 5), labelled by ``articleType``;
* the 44k-product small catalogue's products outside the test split, at most ``per_class`` of each article type
  (seeded), so rare kinds (dresses, skirts, leggings) have hundreds of examples;
* the shoppers' photos of ``clothing-photos-dev`` whose contributors :func:`split_contributors` puts on the training
  side, each with its mirror image, labelled by the *set* of article types their label maps to (the fine kind of
  ``colours.csv`` where it has one: jeans, heels...), a partial label: the loss is ``-log`` of the probability
  the head gives the whole set, so "Pants" teaches "one of trousers, jeans, track pants" and no more.

Classes are balanced (each example weighted by ``count ** -balance`` of its class, or of its label set for photos),
so T-shirts, the largest kind, do not win by number. Plain numpy: full-batch Adam; deterministic.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.kind.model import KindModel

__all__ = ["KindData", "KindTrainCfg", "fit_partial_softmax", "kind_training_data", "photo_labels", "train_kind_head"]

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class KindTrainCfg:
    """How the head is trained (the shipped one: these defaults; chosen in docs/quality.md, "The right kind")."""

    epochs: int = 300
    lr: float = 0.01
    l2: float = 1e-4
    scale: float = 10.0  # logits = scale × (x @ W + b): unit vectors need a sharper softmax
    balance: float = 0.5  # example weight = (count of its class or label set) ** -balance
    photo_weight: float = 1.0  # the photos' share of the loss against the catalogue shots'
    per_class: int = 400  # small-catalogue products per article type
    seed: int = 0


@dataclass
class KindData:
    """Vectors and labels: ``shots`` (catalogue pictures, one class each) and ``photos`` (a set of classes each)."""

    classes: tuple[str, ...]
    shots: np.ndarray
    shot_labels: np.ndarray
    photos: np.ndarray
    photo_sets: list[frozenset[int]]
    counts: dict[str, int]


def fit_partial_softmax(
    x: np.ndarray, targets: np.ndarray, weights: np.ndarray, cfg: KindTrainCfg
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (dim, c) and bias (c,) of ``softmax(scale × (x @ W + b))`` minimising the ``weights``-weighted mean
    of ``-log P(target set)`` (``targets``: (n, c) 0/1, one 1 for a plain label) plus ``l2`` × the squared
    parameters; full-batch Adam from zeros, deterministic."""
    x = np.asarray(x, dtype=np.float32)
    mask = np.asarray(targets, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float32)
    w = w / w.mean()
    n, d = x.shape
    params = [np.zeros((d, mask.shape[1]), np.float32), np.zeros(mask.shape[1], np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, cfg.epochs + 1):
        logits = cfg.scale * (x @ params[0] + params[1])
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        inside = p * mask
        q = inside / np.maximum(inside.sum(axis=1, keepdims=True), 1e-12)
        g = cfg.scale * (p - q) * w[:, None] / n
        grads = [x.T @ g + 2 * cfg.l2 * params[0], g.sum(axis=0) + 2 * cfg.l2 * params[1]]
        for i, gr in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * gr
            v[i] = b2 * v[i] + (1 - b2) * gr * gr
            params[i] -= cfg.lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    return params[0], params[1]


def _balance(keys: Sequence[Any], power: float) -> np.ndarray:
    counts = Counter(keys)
    return np.array([counts[k] ** -power for k in keys], dtype=np.float32)


def fit_kind_head(data: KindData, cfg: KindTrainCfg, embedding: str) -> KindModel:
    """The head fitted on ``data`` (shots and photos, each half of the loss scaled by its balanced weights)."""
    c = len(data.classes)
    shot_w = _balance(data.shot_labels.tolist(), cfg.balance)
    photo_w = _balance([tuple(sorted(s)) for s in data.photo_sets], cfg.balance)
    shot_w, photo_w = shot_w / shot_w.mean(), photo_w / max(float(photo_w.mean()), 1e-12) * cfg.photo_weight
    # the two parts weigh as two means, whatever their sizes
    shot_w *= (len(shot_w) + len(photo_w)) / (2 * max(len(shot_w), 1))
    photo_w *= (len(shot_w) + len(photo_w)) / (2 * max(len(photo_w), 1))
    targets = np.zeros((len(data.shot_labels) + len(data.photo_sets), c), np.float32)
    targets[np.arange(len(data.shot_labels)), data.shot_labels] = 1.0
    for i, s in enumerate(data.photo_sets):
        targets[len(data.shot_labels) + i, sorted(s)] = 1.0
    x = np.concatenate([data.shots, data.photos]) if len(data.photos) else data.shots
    weights, bias = fit_partial_softmax(x, targets, np.concatenate([shot_w, photo_w]), cfg)
    return KindModel(data.classes, weights, bias, embedding, x.shape[1], scale=cfg.scale)


def _small_rows(folder: Path, classes: set[str], per_class: int, seed: int) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("articleType") in classes and int(r["id"]) % 5 != 0]
    order = np.random.default_rng(seed).permutation(len(rows))
    taken: Counter[str] = Counter()
    out = []
    for i in order.tolist():
        kind = rows[i]["articleType"]
        if taken[kind] < per_class:
            taken[kind] += 1
            out.append(rows[i])
    return out


def kind_training_data(
    root: str | Path, extractor: Any, cache: Any, cfg: KindTrainCfg, progress: ProgressFn | None = None
) -> tuple[KindData, dict[str, Any]]:
    """(the training data, the held-out photos: their vectors and label sets, for the report)."""
    from lookalike.evaluate.datasets import (
        CATALOG_DATASET,
        PHOTO_DATASET,
        ImageSet,
        catalog_rows,
        photo_task,
        resolve_datasets_root,
    )

    base = resolve_datasets_root(root)
    gallery, grows = catalog_rows(base)
    classes = tuple(sorted({r["articleType"] for r in grows}))
    index = {c: i for i, c in enumerate(classes)}
    train = [i for i, r in enumerate(grows) if int(r["id"]) % 5 != 0]
    shots, _ = cache.embed(extractor, gallery.subset(train), progress=_part(progress, "catalogue"))
    labels = [index[grows[i]["articleType"]] for i in train]
    small_folder = base / "fashion-product-images-small"
    if (small_folder / "labels.csv").is_file() and cfg.per_class > 0:
        rows = _small_rows(small_folder, set(classes), cfg.per_class, cfg.seed)
        small = ImageSet("fashion-product-images-small", tuple(small_folder / r["image"] for r in rows),
                         tuple(r["id"] for r in rows))  # fmt: skip
        more, _ = cache.embed(extractor, small, progress=_part(progress, "small catalogue"))
        shots = np.concatenate([shots, more])
        labels += [index[r["articleType"]] for r in rows]
    task = photo_task(base)
    q, _ = cache.embed(extractor, task.queries, progress=_part(progress, "photos"))
    mirrored, _ = cache.embed(extractor, task.queries, progress=_part(progress, "mirrored photos"), flip=True)
    sets, side, has_fine = photo_labels(base, task.queries.ids, task.query_groups, index)
    ii = np.flatnonzero(side)
    data = KindData(
        classes,
        shots,
        np.array(labels, dtype=np.int64),
        np.concatenate([q[ii], mirrored[ii]]),
        [sets[i] for i in ii] * 2,
        {"catalogue shots": len(train), "small-catalogue shots": len(labels) - len(train), "photos": len(ii)},
    )
    held = np.flatnonzero(~side)
    heldout = {
        "views": np.stack([q[held], mirrored[held]], axis=1),
        "sets": [sets[i] for i in held],
        "fine": [bool(has_fine[i]) for i in held],
        "source": f"{CATALOG_DATASET}, {PHOTO_DATASET}",
    }
    return data, heldout


def photo_labels(
    base: Path, ids: Sequence[str], groups: Sequence[str], index: dict[str, int]
) -> tuple[list[frozenset[int]], np.ndarray, np.ndarray]:
    """For task 2's photos (``ids`` with their labels ``groups``): each one's set of class indices (its label's
    article types, or its fine kind's where ``colours.csv`` has one), whether its contributor is on the training
    side of :func:`split_contributors` (seed 0), and whether it has a fine kind."""
    from lookalike.evaluate.datasets import PHOTO_DATASET, split_contributors

    folder = base / PHOTO_DATASET
    mapping = json.loads((folder / "label_to_articletype.json").read_text())
    fine_map = json.loads((folder / "fine_type_to_articletype.json").read_text())
    with (folder / "colours.csv").open(newline="") as fh:
        fine = {r["image"]: r["fine_type"] for r in csv.DictReader(fh) if r.get("fine_type")}
    senders = _senders(folder)
    trained = split_contributors([senders[i] for i in ids], seed=0)
    sets = [frozenset(index[k] for k in (fine_map[fine[i]] if i in fine else mapping[g]) if k in index)
            for i, g in zip(ids, groups, strict=True)]  # fmt: skip
    return sets, np.array([senders[i] in trained for i in ids]), np.array([i in fine for i in ids])


def _senders(folder: Path) -> dict[str, str]:
    with (folder / "labels.csv").open(newline="") as fh:
        return {r["image"]: r["sender_id"] for r in csv.DictReader(fh)}


def _part(progress: ProgressFn | None, part: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(part, done, total))


def train_kind_head(
    root: str | Path,
    out: str | Path,
    model: str = "lookalike-fashion",
    cfg: KindTrainCfg | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train the kind head for embedding model ``model`` on the datasets under ``root`` and write it to ``out``;
    returns the report (data sizes, held-out photos' top-1 accuracy, seconds), also kept in the file's ``info``."""
    from lookalike.config import lookalike_home
    from lookalike.evaluate.cache import EmbeddingCache
    from lookalike.evaluate.harness import load_model

    cfg = cfg or KindTrainCfg()
    start = time.perf_counter()
    name, extractor = load_model(model)
    cache = EmbeddingCache(Path(cache_dir) if cache_dir is not None else lookalike_home() / "eval-cache")
    data, heldout = kind_training_data(root, extractor, cache, cfg, progress)
    head = fit_kind_head(data, cfg, name)
    probs = np.stack([head.predict(v) for v in heldout["views"]]) if len(heldout["sets"]) else np.zeros((0, 1))
    right = [int(p.argmax()) in s for p, s in zip(probs, heldout["sets"], strict=True)]
    fine_right = [r for r, f in zip(right, heldout["fine"], strict=True) if f]
    report = {
        "model": "lookalike-kind",
        "embedding": name,
        "classes": len(data.classes),
        "data": data.counts,
        "settings": cfg.__dict__,
        "heldout_photos": len(right),
        "heldout_top1": round(float(np.mean(right)), 4) if right else None,
        "heldout_fine_photos": len(fine_right),
        "heldout_fine_top1": round(float(np.mean(fine_right)), 4) if fine_right else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    head.info = report
    head.save(out)
    return report
