"""``lookalike train``: metric learning on cached backbone maps, evaluation, ONNX export.

Steps (each prints progress and timings):

1. records and splits: catalogue products with id % 5 != 0; shopper's photos of a seeded half of the
   contributors (the other half is held out for evaluation);
2. the frozen backbone (ONNX, onnxruntime) embeds every evaluation image once (catalogue gallery and
   photos, preprocessed exactly like the registered extractor) and the augmented training views
   (crops of the training contributors' photos; optionally catalogue products composited onto
   backgrounds, ``composite_views``);
3. the head trains on the cached maps with cosine-softmax (CosFace) losses over article type, base
   colour, type+colour and gender; a photo's label allows several types, so its loss is the
   probability of the allowed set;
4. the dev protocol of EVALUATION.md is scored on the cached evaluation maps;
5. the whole model is exported to ONNX and checked against torch.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lookalike.extractors.base import PreprocessCfg
from lookalike.imaging.decode import load_image
from lookalike.training import augment as A
from lookalike.training.cache import FeatureCache, FeatureStore, export_backbone, head_cfg_feat_shape
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
from lookalike.training.model import FashionEmbedder, Head, HeadCfg, build_model

__all__ = ["EVAL_PREPROCESS", "TrainConfig", "run_training"]

#: The preprocessing the trained model is served with (and evaluated with here).
EVAL_PREPROCESS = PreprocessCfg(size=224, resize_mode="center_crop", mean=(127.0,) * 3, std=(128.0,) * 3)


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    datasets: Path
    out: Path
    cache_dir: Path
    seed: int = 0
    epochs: int = 6
    steps: int | None = None  # overrides epochs when set
    batch_size: int = 256
    lr: float = 2e-3
    backbone_lr: float = 2e-4
    weight_decay: float = 1e-4
    composite_views: int = 0  # composited views per training product (measured: they did not help)
    photo_views: int = 3  # augmented views per training photo
    small_products: int = 0  # products of the 60 x 80 full catalogue to add (-1: every one allowed)
    photo_weight: float = 2.0
    photo_balance: float = 0.0  # photos of rare labels weigh more: (mean count / label count) ** this
    scale: float = 24.0
    margin: float = 0.2
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"type": 1.0, "colour": 0.5, "type_colour": 1.0, "gender": 0.2}
    )
    max_images: int | None = None  # tiny runs: at most this many products and photos
    head: HeadCfg = field(default_factory=HeadCfg)
    threads: int = 2  # onnxruntime threads (caching, export check, speed comparison)
    torch_threads: int = 1  # torch threads for the head (small matrices: one thread is fastest on a busy CPU)
    evaluate: bool = True
    benchmark: bool = True  # images/s vs ImageNet Lite0 after export


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
    cfg: TrainConfig, rec: Records, trunk: nn.Module, head: Head, log: Callable[[str], None] = print
) -> list[FeatureStore]:
    """[evaluation maps (every catalogue product, then every photo), augmented photo views, composited
    catalogue views]; the last two only when there are any."""
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
            stores.append(cache.build(name, len(views), make, views, cfg.seed, shape, log=log))
    return stores


# --- losses -------------------------------------------------------------------------------------------
class CosineClassifier(nn.Module):
    """Normalised-softmax proxies with an additive cosine margin (CosFace)."""

    def __init__(self, dim: int, n_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, z: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """Per-sample loss; ``positives`` is a (n, classes) bool mask (several allowed); rows without
        any positive get loss 0."""
        cos = z @ F.normalize(self.weight, dim=1).T
        logits = self.scale * (cos - self.margin * positives.float())
        pos = logits.masked_fill(~positives, -1e4).logsumexp(dim=1)
        loss = logits.logsumexp(dim=1) - pos
        return torch.where(positives.any(dim=1), loss, torch.zeros_like(loss))


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


# --- training -------------------------------------------------------------------------------------------
def _gather(store: FeatureStore, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(feat, low) maps of ``rows`` as float32 tensors (read in file order)."""
    order = np.argsort(rows)
    back = np.argsort(order)
    sel = rows[order]
    feat = torch.from_numpy(np.asarray(store.feat[sel], dtype=np.float32)[back])
    low = torch.from_numpy(np.asarray(store.low[sel], dtype=np.float32)[back])
    return feat, low


@torch.no_grad()
def pooled_features(head: Head, store: FeatureStore, batch: int = 512) -> np.ndarray:
    """The head's fixed pooling of every cached view (frozen backbone), float32 (n, features)."""
    out = np.zeros((len(store), head.n_features), dtype=np.float32)
    for s in range(0, len(store), batch):
        top = torch.from_numpy(np.asarray(store.top[s : s + batch], dtype=np.float32))
        low = torch.from_numpy(np.asarray(store.low[s : s + batch], dtype=np.float32))
        out[s : s + len(top)] = head.features(top, low).numpy()
    return out


class _Inputs:
    """Training inputs of cached views: pooled vectors (head only) or maps (fine-tuning)."""

    def __init__(self, head: Head, stores: list[FeatureStore], finetune: bool) -> None:
        self.head, self.stores, self.finetune = head, stores, finetune
        self.vectors = None if finetune else [pooled_features(head, st) for st in stores]

    def pooled(self, stores: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Pooled features of the views ``(stores[i], rows[i])``, in that order, as one batch (through
        the trainable tail when fine-tuning)."""
        out_feat, out_low, out_vec, order = [], [], [], []
        for s_idx in np.unique(stores):
            where = np.flatnonzero(stores == s_idx)
            order.append(where)
            if self.vectors is not None:
                out_vec.append(torch.from_numpy(self.vectors[s_idx][rows[where]]))
            else:
                feat, low = _gather(self.stores[s_idx], rows[where])
                out_feat.append(feat)
                out_low.append(low)
        back = torch.from_numpy(np.argsort(np.concatenate(order)))
        if self.vectors is not None:
            return torch.cat(out_vec)[back]
        low = torch.cat(out_low)[back]
        return self.head.features(self.head.tail(torch.cat(out_feat)[back]), low)

    def embed(self, stores: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of the views ``(stores[i], rows[i])``."""
        return self.head.project(self.pooled(stores, rows))


def train_head(
    cfg: TrainConfig,
    head: Head,
    stores: list[FeatureStore],
    index: list[tuple[int, int]],
    targets: Targets,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``head`` on the cached samples ``index`` = [(store, row)]; returns the mean loss per epoch."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    dim = cfg.head.dim
    t0 = time.perf_counter()
    inputs = _Inputs(head, stores, cfg.head.finetune)
    if not cfg.head.finetune:
        log(f"[train] pooled {sum(len(st) for st in stores)} cached views in {time.perf_counter() - t0:.0f} s")
    classifiers = nn.ModuleDict(
        {
            f"by_{k}": CosineClassifier(
                cfg.head.colour_dim if k == "colour" and cfg.head.colour_dim else dim, m.shape[1], cfg.scale, cfg.margin
            )
            for k, m in targets.masks.items()
        }
    )
    groups: list[dict[str, Any]] = [
        {"params": head.new_parameters() + list(classifiers.parameters()), "lr": cfg.lr},
    ]
    if cfg.head.finetune:
        groups.append({"params": head.backbone_parameters(), "lr": cfg.backbone_lr})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    n = len(index)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    base_lrs = [g["lr"] for g in opt.param_groups]
    store_of = np.array([s for s, _ in index])
    row_of = np.array([r for _, r in index])
    losses: list[float] = []
    step, epoch, started = 0, 0, time.perf_counter()
    while step < total:
        perm = rng.permutation(n)
        running, count = 0.0, 0
        head.train()
        if cfg.head.finetune:  # pretrained batch-norm statistics stay as they are
            for m in [*head.blocks.modules(), head.bn1]:
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        for b in range(steps_per_epoch):
            if step >= total:
                break
            sel = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(sel) < 2:
                continue
            order = sel
            main, colour = head.project_parts(inputs.pooled(store_of[sel], row_of[sel]))
            z = head.combine(main, colour)
            w = targets.weight[order]
            loss = torch.zeros(())
            for key in targets.masks:
                emb = colour if key == "colour" and colour is not None else z
                per = classifiers[f"by_{key}"](emb, targets.masks[key][order])
                loss = loss + cfg.loss_weights.get(key, 0.0) * (per * w).sum() / w.sum()
            warm = min(1.0, (step + 1) / max(1, total // 20))
            cos = 0.5 * (1 + math.cos(math.pi * step / total))
            for g, base in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = base * warm * cos
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            count += 1
            step += 1
        epoch += 1
        mean = running / max(1, count)
        losses.append(mean)
        log(f"[train] epoch {epoch} step {step}/{total} loss {mean:.4f} ({time.perf_counter() - started:.0f} s)")
        if on_epoch is not None:
            on_epoch(epoch)
    head.eval()
    return losses


# --- evaluation on the cached evaluation maps ----------------------------------------------------------
@torch.no_grad()
def embed_store(head: Head, store: FeatureStore, finetune: bool, batch: int = 256) -> np.ndarray:
    """Embeddings of every cached view with the (trained) head."""
    head.eval()
    inputs = _Inputs(head, [store], finetune)
    return np.concatenate(
        [
            inputs.embed(
                np.zeros(min(batch, len(store) - s), dtype=np.int64), np.arange(s, min(len(store), s + batch))
            ).numpy()
            for s in range(0, len(store), batch)
        ]
    )


def baseline_embed(store: FeatureStore, batch: int = 512) -> np.ndarray:
    """The ImageNet Lite0 embedding (mean of the final map, L2-normalised) of every cached view."""
    out = []
    for s in range(0, len(store), batch):
        g = np.asarray(store.top[s : s + batch], dtype=np.float32).mean(axis=(2, 3))
        out.append(g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out)


def protocol_scores(cfg: TrainConfig, rec: Records, emb: np.ndarray, k: int = 10) -> dict[str, float]:
    """EVALUATION.md on cached embeddings: catalogue test split, photos (held-out and all contributors)."""
    from lookalike.evaluate.harness import rank_exact, score_ranking

    nc = len(rec.catalog)
    cat_emb, photo_emb = emb[:nc], emb[nc:]
    out: dict[str, float] = {}
    test = [i for i, c in enumerate(rec.catalog) if is_test_id(c.id)]
    if len(test) > 1:
        from lookalike.evaluate.datasets import Criterion

        q = cat_emb[test]
        top, _ = rank_exact(q, q, k, exclude=list(range(len(test))))
        types = tuple(rec.catalog[i].article_type for i in test)
        tc = tuple(f"{rec.catalog[i].article_type} / {rec.catalog[i].colour}" for i in test)
        for name, labels in (("type", types), ("type+colour", tc)):
            crit = Criterion(name, labels, tuple(frozenset([t]) for t in labels))
            r = score_ranking(top, crit, types, list(range(len(test))), k)
            out[f"catalog {name} mP@{k}"] = r.metrics[f"mP@{k}"]
            if name == "type":
                out[f"catalog {name} mP@1"] = r.metrics["mP@1"]
                out[f"catalog {name} mAP@{k}"] = r.metrics[f"mAP@{k}"]
    gallery_types = tuple(c.article_type for c in rec.catalog)
    for subset, idx in (("heldout", rec.heldout_photos), ("all", list(range(len(rec.photos))))):
        if not idx:
            continue
        from lookalike.evaluate.datasets import Criterion

        top, _ = rank_exact(photo_emb[idx], cat_emb, k)
        crit = Criterion("type", gallery_types, tuple(frozenset(rec.photos[i].types) for i in idx))
        r = score_ranking(top, crit, [rec.photos[i].label for i in idx], [-1] * len(idx), k)
        for m in (f"mP@{k}", "mP@1", f"macroP@{k}"):
            out[f"photo[{subset}] {m}"] = r.metrics[m]
    return out


def format_scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


# --- the whole run --------------------------------------------------------------------------------------
def run_training(cfg: TrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, evaluate and export; returns a summary (also written to ``out/summary.json``)."""
    torch.set_num_threads(cfg.torch_threads)
    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    rec = load_records(cfg)
    log(
        f"[data] {len(rec.catalog)} products ({len(rec.train_products)} for training), {len(rec.photos)} photos "
        f"({len(rec.train_photos)} from training contributors, {len(rec.heldout_photos)} held out), "
        f"{len(rec.small)} extra products at 60 x 80"
    )
    trunk, head = build_model(cfg.head, cfg.seed)
    stores = build_caches(cfg, rec, trunk, head, log)
    eval_store = stores[0]
    t_cache = time.perf_counter() - t0
    log(f"[cache] ready in {t_cache:.0f} s")

    nc = len(rec.catalog)
    samples = [{"kind": "catalog", "i": i} for i in rec.train_products]
    samples += [{"kind": "photo", "i": i} for i in rec.train_photos]
    index = [(0, i) for i in rec.train_products] + [(0, nc + i) for i in rec.train_photos]
    for s_idx, store in enumerate(stores[1:], start=1):
        samples += store.meta
        index += [(s_idx, j) for j in range(len(store))]
    targets, vocabs = make_targets(cfg, rec, samples)
    log(f"[train] {len(index)} samples; classes: " + ", ".join(f"{k} {len(v)}" for k, v in vocabs.items()))

    summary: dict[str, Any] = {"config": _jsonable(asdict(cfg))}
    summary["samples"] = dict(sorted(Counter(str(sm["kind"]) for sm in samples).items()))
    if cfg.evaluate:
        before = protocol_scores(cfg, rec, baseline_embed(eval_store))
        log(f"[eval] ImageNet Lite0: {format_scores(before)}")
        summary["before"] = before
    t1 = time.perf_counter()
    losses = train_head(cfg, head, stores, index, targets, log)
    t_train = time.perf_counter() - t1
    summary.update(losses=losses, seconds={"cache": round(t_cache, 1), "train": round(t_train, 1)})
    if cfg.evaluate:
        after = protocol_scores(cfg, rec, embed_store(head, eval_store, cfg.head.finetune))
        log(f"[eval] trained: {format_scores(after)}")
        summary["after"] = after

    from lookalike.training.export import export_embedder

    model = FashionEmbedder(trunk, head).eval()
    onnx_path, cosine = export_embedder(model, cfg.out / "lookalike-fashion.onnx", EVAL_PREPROCESS, summary)
    summary["export"] = {"path": str(onnx_path), "min_cosine_torch_onnx": cosine}
    if cfg.benchmark:
        from lookalike.extractors.builtin import efficientnet_onnx_path
        from lookalike.training.export import compare_speed

        speed = compare_speed(
            {"efficientnet-lite0": efficientnet_onnx_path("efficientnet-lite0"), "lookalike-fashion": onnx_path},
            threads=cfg.threads,
        )
        speed["ratio"] = speed["lookalike-fashion"] / speed["efficientnet-lite0"]
        summary["speed_images_per_s"] = speed
        log(
            f"[speed] onnxruntime, batch 32, {cfg.threads} threads: Lite0 {speed['efficientnet-lite0']:.1f} img/s, "
            f"lookalike-fashion {speed['lookalike-fashion']:.1f} img/s (ratio {speed['ratio']:.2f})"
        )
    summary["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    total = summary["seconds"]["total"]
    log(f"[export] {onnx_path} (torch vs onnxruntime cosine >= {cosine:.6f}); total {total:.0f} s")
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
