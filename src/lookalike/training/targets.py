"""Training data: records and splits, the cached backbone maps of every view, per-sample label masks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from lookalike.imaging.decode import load_image
from lookalike.training import augment as A
from lookalike.training.cache import FeatureCache, FeatureStore, Progress, export_backbone, head_cfg_feat_shape
from lookalike.training.config import EVAL_PREPROCESS, TrainConfig
from lookalike.training.data import (
    CatalogItem,
    PhotoItem,
    Vocab,
    is_test_id,
    load_catalog,
    load_photos,
    load_small_catalog,
    split_senders,
)
from lookalike.training.model import Head

__all__ = ["Records", "Targets", "build_caches", "load_records", "make_targets"]


# --- records --------------------------------------------------------------------------------------
@dataclass
class Records:
    catalog: list[CatalogItem]
    photos: list[PhotoItem]
    train_products: list[int]  # indices into catalog
    train_photos: list[int]  # indices into photos
    heldout_photos: list[int]
    small: list[CatalogItem] = field(default_factory=list)  # extra training products (60 x 80 catalogue)


def load_records(cfg: TrainConfig) -> Records:
    """Catalogue and photos with the protocol's splits (optionally cut to ``max_images``)."""
    catalog = load_catalog(cfg.datasets)
    full_size_ids = {c.id for c in catalog}  # trained on (or tested) at full size: never again at 60 x 80
    photos = load_photos(cfg.datasets)
    train_senders = split_senders(photos, cfg.seed)
    if cfg.max_images is not None:
        rng = np.random.default_rng(cfg.seed)
        keep_c = np.sort(rng.choice(len(catalog), min(len(catalog), cfg.max_images), replace=False))
        keep_p = np.sort(rng.choice(len(photos), min(len(photos), cfg.max_images // 2), replace=False))
        catalog = [catalog[i] for i in keep_c]
        photos = [photos[i] for i in keep_p]
    small: list[CatalogItem] = []
    if cfg.small_products:
        small = load_small_catalog(cfg.datasets, full_size_ids)
        if 0 < cfg.small_products < len(small):
            keep = np.sort(np.random.default_rng(cfg.seed).choice(len(small), cfg.small_products, replace=False))
            small = [small[i] for i in keep]
    return Records(
        small=small,
        catalog=catalog,
        photos=photos,
        train_products=[i for i, c in enumerate(catalog) if not is_test_id(c.id)],
        train_photos=[i for i, p in enumerate(photos) if p.sender in train_senders],
        heldout_photos=[i for i, p in enumerate(photos) if p.sender not in train_senders],
    )


# --- caches -----------------------------------------------------------------------------------------
def _eval_view(path: Path) -> Image.Image:
    """The image exactly as the registered extractor sees it (decode with draft, centre crop)."""
    return EVAL_PREPROCESS.resize(load_image(path, draft_size=EVAL_PREPROCESS.size).convert("RGB"))


def build_caches(
    cfg: TrainConfig,
    rec: Records,
    trunk: nn.Module,
    head: Head,
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> list[FeatureStore]:
    """[evaluation maps (every catalogue product, then every photo), augmented photo views, composited
    catalogue views]; the last two only when there are any. ``progress``: see :meth:`FeatureCache.build`."""
    onnx_path = cfg.cache_dir / f"backbone-split{cfg.head.split}.onnx"
    if not onnx_path.is_file():
        export_backbone(trunk, head, onnx_path)  # type: ignore[arg-type]
    cache = FeatureCache(cfg.cache_dir, onnx_path, threads=cfg.threads)
    shape = head_cfg_feat_shape(cfg.head)
    eval_paths = [c.path for c in rec.catalog] + [p.path for p in rec.photos]
    eval_meta = [{"kind": "catalog", "i": i} for i in range(len(rec.catalog))]
    eval_meta += [{"kind": "photo", "i": i} for i in range(len(rec.photos))]
    tag = f"n{cfg.max_images}" if cfg.max_images else "full"
    eval_store = cache.build(
        f"eval-{tag}-split{cfg.head.split}",
        len(eval_paths),
        lambda i, rng: _eval_view(eval_paths[i]),
        eval_meta,
        0,
        shape,
        log=log,
        progress=progress,
    )
    # a few training photos serve as real backgrounds for the composites
    bg_rng = np.random.default_rng(cfg.seed)
    bg_idx = bg_rng.choice(rec.train_photos, min(40, len(rec.train_photos)), replace=False) if rec.train_photos else []
    backgrounds = [load_image(rec.photos[int(i)].path, draft_size=256).convert("RGB") for i in bg_idx]
    small_views = [{"kind": "small", "i": i} for i in range(len(rec.small))]
    photo_views = [{"kind": "photo_aug", "i": i, "v": v} for v in range(cfg.photo_views) for i in rec.train_photos]
    composites = [{"kind": "composite", "i": i, "v": v} for v in range(cfg.composite_views) for i in rec.train_products]

    def make_photo(j: int, rng: np.random.Generator) -> Image.Image:
        path = rec.photos[photo_views[j]["i"]].path
        return A.photo_view(load_image(path, draft_size=448).convert("RGB"), rng)

    def make_composite(j: int, rng: np.random.Generator) -> Image.Image:
        img = load_image(rec.catalog[composites[j]["i"]].path).convert("RGB")
        return A.composite_view(img, rng, backgrounds)

    def make_small(j: int, rng: np.random.Generator) -> Image.Image:
        return _eval_view(rec.small[j].path)

    stores = [eval_store]
    for kind, views, make in (
        ("small", small_views, make_small),
        ("photo", photo_views, make_photo),
        ("composite", composites, make_composite),
    ):
        if views:
            name = f"train{kind}-{tag}-split{cfg.head.split}-s{cfg.seed}-{len(views)}"
            stores.append(cache.build(name, len(views), make, views, cfg.seed, shape, log=log, progress=progress))
    return stores


# --- targets ------------------------------------------------------------------------------------------
@dataclass
class Targets:
    """Per-sample label masks for every head, as tensors (n, classes)."""

    masks: dict[str, torch.Tensor]
    weight: torch.Tensor


def make_targets(cfg: TrainConfig, rec: Records, samples: list[dict]) -> tuple[Targets, dict[str, Vocab]]:
    """Label masks of every training sample; photos carry only their allowed types."""
    # classes come from the full-size training products only: classes that exist only in the 60 x 80 set
    # (measured: +66 types, +1,100 type+colour pairs) cost 0.03-0.04 held-out photo mP@10
    prods = [rec.catalog[i] for i in rec.train_products]
    vocabs = {
        "type": Vocab([c.article_type for c in prods]),
        "colour": Vocab([c.colour for c in prods]),
        "type_colour": Vocab([f"{c.article_type} / {c.colour}" for c in prods]),
        "gender": Vocab([c.gender for c in prods]),
    }
    n = len(samples)
    masks = {k: torch.zeros(n, len(v), dtype=torch.bool) for k, v in vocabs.items()}
    weight = torch.ones(n)
    photo_labels = [rec.photos[s["i"]].label for s in samples if s["kind"] in ("photo", "photo_aug")]
    label_weight = _balance(photo_labels, cfg.photo_balance)
    for j, s in enumerate(samples):
        if s["kind"] in ("catalog", "composite", "small"):
            c = rec.small[s["i"]] if s["kind"] == "small" else rec.catalog[s["i"]]
            for key, label in (
                ("type", c.article_type),
                ("colour", c.colour),
                ("type_colour", f"{c.article_type} / {c.colour}"),
                ("gender", c.gender),
            ):
                k = vocabs[key].encode(label)
                if k >= 0:
                    masks[key][j, k] = True
        else:
            for t in rec.photos[s["i"]].types:
                k = vocabs["type"].encode(t)
                if k >= 0:
                    masks["type"][j, k] = True
            weight[j] = cfg.photo_weight * label_weight[rec.photos[s["i"]].label]
    return Targets(masks, weight), vocabs


def _balance(labels: list[str], power: float) -> dict[str, float]:
    """Per-label weights ``(mean count / count) ** power``, scaled so the photos' mean weight stays 1
    (``power`` 0: all 1). The photo protocol's macro P@10 counts a rare garment as much as a T-shirt."""
    counts = Counter(labels)
    if not counts or power == 0:
        return dict.fromkeys(counts, 1.0)
    mean = len(labels) / len(counts)
    raw = {lab: (mean / c) ** power for lab, c in counts.items()}
    scale = len(labels) / sum(raw[lab] * c for lab, c in counts.items())
    return {lab: w * scale for lab, w in raw.items()}
