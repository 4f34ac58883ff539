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

The data (records, caches, targets) is in :mod:`~lookalike.training.targets`, the optimisation in
:mod:`~lookalike.training.loop`, the settings in :mod:`~lookalike.training.config`, the export in
:mod:`~lookalike.training.export`; this module scores the protocol and runs the whole thing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lookalike.training.cache import Progress
from lookalike.training.config import EVAL_PREPROCESS, TrainConfig
from lookalike.training.data import is_test_id
from lookalike.training.loop import baseline_embed, embed_store, train_head
from lookalike.training.model import FashionEmbedder, build_model
from lookalike.training.targets import Records, build_caches, load_records, make_targets
from lookalike.training.targets import _balance as _balance  # re-exported (tests)

__all__ = ["EVAL_PREPROCESS", "TrainConfig", "run_training"]


# --- the dev protocol on cached embeddings ------------------------------------------------------------
def protocol_scores(cfg: TrainConfig, rec: Records, emb: np.ndarray, k: int = 10) -> dict[str, float]:
    """EVALUATION.md on cached embeddings: catalogue test split, photos (held-out and all contributors)."""
    from lookalike.evaluate.ranking import rank_exact, score_ranking

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
def run_training(
    cfg: TrainConfig, log: Callable[[str], None] = print, progress: Progress | None = None
) -> dict[str, Any]:
    """Train, evaluate and export; returns a summary (also written to ``out/summary.json``). ``log`` gets
    the milestones; ``progress(label, done, total, info)``, when given, the caching and training progress
    (instead of a line every so often)."""
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
    stores = build_caches(cfg, rec, trunk, head, log, progress)
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
    losses = train_head(cfg, head, stores, index, targets, log, progress=progress)
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
