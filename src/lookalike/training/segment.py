"""Train ``lookalike-garment``: a tiny segmenter that finds the main garment in a shopper's photo.

Data: the catalogue shots of ``fashion-product-images-224`` give masks for free
(:func:`lookalike.garment.mask.catalogue_mask`); :mod:`lookalike.training.composite` pastes the products
onto procedural home scenes. Products whose id is not divisible by 5 are trained on; composites of the
test split (id % 5 == 0) measure the mask IoU. The model is a small U-Net-like encoder-decoder
(stride-2 stem, four stages, additive skips) whose logits come out at half the input resolution; it is
exported to ONNX (opset 17, dynamic batch) with a JSON sidecar. torch is imported inside the functions:
it is needed for training only.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import SourceError
from lookalike.garment.mask import catalogue_mask
from lookalike.training.composite import Cutout, composite, cutout

__all__ = ["MEAN", "MODEL_NAME", "STD", "build_model", "catalogue_cutouts", "make_composites", "train_segmenter"]

MODEL_NAME = "lookalike-garment"
CATALOG_DATASET = "fashion-product-images-224"
MEAN, STD = 127.5, 127.5  # x = (pixel - MEAN) / STD, every channel
WIDTHS = (16, 32, 48, 64)
MASK_VERSION = 2  # bump when catalogue_mask changes: cached masks of other versions are not reused


def build_model(widths: tuple[int, ...] = WIDTHS, head_conv: bool = True) -> Any:
    """The segmenter (a ``torch.nn.Module``): (n, 3, s, s) -> logits (n, 1, s/2, s/2)."""
    import torch
    from torch import nn

    def cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )

    class GarmentNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = widths
            chans = (3, *w)
            # stage 1 (half resolution) is one strided conv; the deeper stages have two convs
            self.enc = nn.ModuleList(
                cbr(3, w[0], 2) if i == 0 else nn.Sequential(cbr(chans[i], w[i], 2), cbr(w[i], w[i]))
                for i in range(len(w))
            )
            self.lat = nn.ModuleList(nn.Conv2d(w[i + 1], w[i], 1) for i in range(len(w) - 1))
            # decoder: upsample, project, add the skip, one 3 x 3 conv (none at half resolution)
            self.dec = nn.ModuleList(nn.ReLU(inplace=True) if i == 0 else cbr(w[i], w[i]) for i in range(len(w) - 1))
            self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(w[-1], w[-1], 1), nn.ReLU(inplace=True))
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.head = nn.Sequential(cbr(w[0], w[0]), nn.Conv2d(w[0], 1, 1)) if head_conv else nn.Conv2d(w[0], 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for stage in self.enc:
                x = stage(x)
                skips.append(x)
            y = skips[-1] + self.context(skips[-1])  # the whole picture's gist: is this big area the garment?
            for i in range(len(skips) - 2, -1, -1):
                y = self.dec[i](self.lat[i](self.up(y)) + skips[i])
            return self.head(y)

    return GarmentNet()


def _products(datasets_dir: Path, limit: int | None) -> list[tuple[int, Path]]:
    folder = datasets_dir / CATALOG_DATASET
    try:
        with (folder / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise SourceError(f"cannot read {folder / 'labels.csv'}: {exc}") from exc
    items = [(int(r["id"]), folder / r["image"]) for r in rows]
    if limit is not None:  # a spread of both splits: every k-th product
        step = max(1, len(items) // max(1, limit))
        items = items[::step][:limit]
    return items


def catalogue_cutouts(items: list[tuple[int, Path]], cache: Path | None = None) -> list[tuple[int, Cutout]]:
    """(product id, cut-out) of catalogue pictures, skipping those whose mask is almost empty or almost
    everything.

    ``cache``: an ``.npz`` of the masks (bit-packed, by product id), read when there and updated."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            known = {k: z[k] for k in z.files}
    out, changed = [], False
    for pid, path in items:
        img = Image.open(path).convert("RGB")
        key = f"{pid}_{img.width}x{img.height}_{MASK_VERSION}"
        if key in known:
            mask = np.unpackbits(known[key])[: img.width * img.height].reshape(img.height, img.width).astype(bool)
        else:
            mask = catalogue_mask(img)
            known[key], changed = np.packbits(mask), True
        if 0.02 <= mask.mean() <= 0.97 and (c := cutout(img, mask)) is not None:
            out.append((pid, c))
    if cache is not None and changed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, **known)
        os.replace(tmp, cache)
    return out


def _cutouts(items: list[tuple[int, Path]], cache: Path | None = None) -> list[Cutout]:
    return [c for _, c in catalogue_cutouts(items, cache)]


def make_composites(cutouts: list[Cutout], seed: int, size: int, views: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``views`` composites of each cut-out: pictures (n, size, size, 3) uint8 and masks (n, size, size) bool.
    The same seed gives the same arrays."""
    rng = np.random.default_rng(seed)
    n = len(cutouts) * views
    x = np.zeros((n, size, size, 3), np.uint8)
    y = np.zeros((n, size, size), bool)
    for i in range(n):
        pic, mask = composite(cutouts[i % len(cutouts)], rng, size, cutouts)
        x[i], y[i] = np.asarray(pic), mask
    return x, y


def _to_tensor(x: np.ndarray) -> Any:
    import torch

    return (torch.from_numpy(x).permute(0, 3, 1, 2).float() - MEAN) / STD


def _half(y: np.ndarray) -> Any:
    """Soft targets at half resolution: the fraction of each 2 x 2 block that is garment."""
    import torch

    n, h, w = y.shape
    return torch.from_numpy(y.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4), dtype=np.float32)[:, None])


def _predict(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Full-resolution garment probabilities (n, s, s) float32."""
    import torch
    import torch.nn.functional as F

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(_to_tensor(x[i : i + batch]))
            out.append(torch.sigmoid(F.interpolate(logits, size=x.shape[1:3], mode="bilinear")).numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros((0, *x.shape[1:3]), np.float32)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean per-picture IoU and pooled IoU of bool masks (n, h, w); an empty union counts as 1."""
    inter = (pred & truth).sum(axis=(1, 2)).astype(np.float64)
    union = (pred | truth).sum(axis=(1, 2)).astype(np.float64)
    per = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return {"mean_iou": float(per.mean()), "pooled_iou": float(inter.sum() / max(union.sum(), 1.0))}


def export_onnx(model: Any, size: int, path: Path, outputs: Sequence[str] = ("logits",)) -> float:
    """``model`` (input ``x``: (n, 3, size, size)) as ONNX (opset 17, dynamic batch, its outputs named
    ``outputs``), written atomically; returns the max |torch - onnxruntime| output."""
    import warnings

    import onnxruntime as ort
    import torch

    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(2, 3, size, size),),
                tmp,
                input_names=["x"],
                output_names=list(outputs),
                dynamic_axes={name: {0: "n"} for name in ("x", *outputs)},
                opset_version=17,
                dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is for everyone to read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, 3, size, size)).astype(np.float32))
    with torch.no_grad():
        out = model(x)
    ref = [out.numpy()] if isinstance(out, torch.Tensor) else [t.numpy() for t in out]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    got = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    return float(max(np.abs(r - g).max() for r, g in zip(ref, got, strict=True)))


def write_sidecar(
    onnx_path: Path, size: int, mean: float, std: float, output: dict[str, Any], report: dict[str, Any]
) -> None:
    """The model's JSON sidecar (``<model>.json``): its square input (``size``, ``mean`` and ``std`` of every
    channel), its ``output`` and the training ``report``."""
    sidecar = {
        "input": {"name": "x", "size": size, "mean": [mean] * 3, "std": [std] * 3, "resize": "squash"},
        "output": output,
        "training": report,
    }
    onnx_path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def train_segmenter(
    datasets_dir: Path,
    out_dir: Path,
    *,
    size: int = 128,
    epochs: int = 8,
    seed: int = 0,
    threads: int = 1,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
    views: int = 2,
    refresh: float = 0.5,
    test_views: int = 1,
    batch_size: int = 32,
    lr: float = 3e-3,
    widths: tuple[int, ...] = WIDTHS,
    command: str | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Train the garment segmenter; writes ``out_dir/lookalike-garment.onnx`` and its ``.json`` sidecar.

    ``views`` composites per training product make the pool; after every epoch a ``refresh`` fraction of
    it is drawn anew. ``limit``: use only that many catalogue products (both splits). ``cache_dir``: where
    the catalogue masks are kept between runs. ``command``: how the run was started, for the sidecar
    (default: this process's argv). Returns the report: IoU on held-out composites, times, sizes.
    """
    import torch
    import torch.nn.functional as F

    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    if size % (2 ** len(widths)):
        raise ValueError(f"size must be a multiple of {2 ** len(widths)}")
    items = _products(Path(datasets_dir), limit)
    train_items = [it for it in items if it[0] % 5 != 0]
    test_items = [it for it in items if it[0] % 5 == 0]
    cache = Path(cache_dir) / "garment-masks.npz" if cache_dir is not None else None
    train_cuts, test_cuts = _cutouts(train_items, cache), _cutouts(test_items, cache)
    t_masks = time.perf_counter() - t_start
    say(f"masks: {len(train_cuts)} train / {len(test_cuts)} test cut-outs of {len(items)} products ({t_masks:.0f}s)")
    if not train_cuts or not test_cuts:
        raise SourceError("no usable catalogue cut-outs (both splits are needed)")
    xs, ys = make_composites(train_cuts, seed, size, views)
    xt, yt = make_composites(test_cuts, seed + 10_000, size, test_views)
    t_data = time.perf_counter() - t_start - t_masks
    say(f"composites: {len(xs)} train, {len(xt)} test ({t_data:.0f}s)")

    model = build_model(widths)
    n_params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = max(1, len(xs) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    rng = np.random.default_rng(seed + 1)
    t_train0 = time.perf_counter()
    history = []
    t_refresh = 0.0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(xs))
        total = 0.0
        for step in range(steps_per_epoch):
            idx = np.sort(order[step * batch_size : (step + 1) * batch_size])
            xb, yb = xs[idx], ys[idx]
            if rng.random() < 0.5:  # cheap extra variety: flips
                xb, yb = xb[:, :, ::-1], yb[:, :, ::-1]
            x, target = _to_tensor(np.ascontiguousarray(xb)), _half(np.ascontiguousarray(yb))
            logits = model(x)
            prob = torch.sigmoid(logits)
            inter = (prob * target).sum(dim=(1, 2, 3))
            dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
            loss = F.binary_cross_entropy_with_logits(logits, target) + dice.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        iou = mask_iou(_predict(model, xt) >= 0.5, yt)
        history.append({"epoch": epoch + 1, "loss": total / steps_per_epoch, **iou})
        say(
            f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f}, test IoU {iou['mean_iou']:.4f} "
            f"(pooled {iou['pooled_iou']:.4f}), {time.perf_counter() - t_train0:.0f}s"
        )
        if refresh > 0 and epoch + 1 < epochs:  # draw part of the pool anew
            t0 = time.perf_counter()
            k = int(len(xs) * refresh)
            which = rng.choice(len(xs), k, replace=False)
            fresh = [train_cuts[i % len(train_cuts)] for i in which]
            xs[which], ys[which] = make_composites(fresh, seed + 100 * (epoch + 1), size)
            t_refresh += time.perf_counter() - t0
    t_train = time.perf_counter() - t_train0
    final = mask_iou(_predict(model, xt) >= 0.5, yt)

    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    max_diff = export_onnx(model, size, onnx_path)
    report = {
        "model": MODEL_NAME,
        "architecture": f"U-Net-like, widths {list(widths)}, global context, logits at half resolution",
        "parameters": n_params,
        "size": size,
        "epochs": epochs,
        "views": views,
        "refresh": refresh,
        "seed": seed,
        "threads": threads,
        "train_cutouts": len(train_cuts),
        "test_cutouts": len(test_cuts),
        "train_composites": len(xs),
        "test_composites": len(xt),
        "test_iou": final,
        "history": history,
        "seconds": {
            "masks": round(t_masks, 1),
            "composites": round(t_data, 1),
            "training": round(t_train, 1),
            "of_which_refresh": round(t_refresh, 1),
            "total": round(time.perf_counter() - t_start, 1),
        },
        "onnx_bytes": onnx_path.stat().st_size,
        "max_abs_diff_torch_onnx": max_diff,
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    write_sidecar(onnx_path, size, MEAN, STD, {"name": "logits", "stride": 2}, report)
    say(f"exported {onnx_path} ({report['onnx_bytes'] / 1e6:.2f} MB), test IoU {final['mean_iou']:.4f}")
    return report
