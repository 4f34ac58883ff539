"""The optimisation: CosFace classifiers over the cached views, the training loop, embedding the views."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lookalike.training.cache import FeatureStore, Progress
from lookalike.training.config import TrainConfig
from lookalike.training.model import Head
from lookalike.training.targets import Targets

__all__ = ["CosineClassifier", "baseline_embed", "embed_store", "pooled_features", "train_head"]


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
    progress: Progress | None = None,
) -> list[float]:
    """Train ``head`` on the cached samples ``index`` = [(store, row)]; returns the mean loss per epoch.

    Without ``progress`` it logs a line per epoch; with it, it reports ``("train", step, steps, "epoch E
    loss L")`` after every step and logs one line at the end."""
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
            if progress is not None:
                progress("train", step, total, f"epoch {epoch + 1} loss {running / count:.4f}")
        epoch += 1
        mean = running / max(1, count)
        losses.append(mean)
        if progress is None:
            log(f"[train] epoch {epoch} step {step}/{total} loss {mean:.4f} ({time.perf_counter() - started:.0f} s)")
        if on_epoch is not None:
            on_epoch(epoch)
    if progress is not None and losses:
        log(
            f"[train] {epoch} epochs, {step} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )
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
