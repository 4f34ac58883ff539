"""Run the frozen backbone once per image view and keep its maps (float16) for many training epochs.

The frozen part of the network is exported to ONNX and run with onnxruntime (several times faster
than torch on a CPU). For every view it stores three 7x7 maps:

* ``feat``: the input of the trainable blocks (block ``split - 1`` output, 192 channels);
* ``top``: the frozen backbone's final map (``conv_head`` output, 1280 channels), for head-only training
  (its mean is exactly the ImageNet Lite0 embedding);
* ``low``: the low-level colour maps (155 channels).

Views are made in a thread pool while onnxruntime embeds the previous batch. Arrays live in ``.npy``
memory maps under the cache folder, so an interrupted or repeated run reuses what it has.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from lookalike.training.model import GRID, LOW_CHANNELS, HeadCfg, Trunk

__all__ = ["FeatureCache", "FeatureStore", "Progress", "export_backbone"]

ViewFn = Callable[[int, np.random.Generator], Image.Image]
Progress = Callable[[str, int, int, str], None]
"""``progress(label, done, total, info)``: how far a long step is (a progress bar's food)."""


class _Backbone(nn.Module):
    """Frozen trunk + frozen tail: x -> (feat, top, low)."""

    def __init__(self, trunk: Trunk, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat, low = self.trunk(x)
        return feat, self.head.tail(feat), low


def export_backbone(trunk: Trunk, head: nn.Module, path: Path) -> Path:
    """Export the frozen network (trunk and the head's pretrained tail) to ONNX with three outputs."""
    module = _Backbone(trunk, head).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            module,
            (torch.zeros(1, 3, 224, 224),),
            str(tmp),
            input_names=["x"],
            output_names=["feat", "top", "low"],
            dynamic_axes={name: {0: "n"} for name in ("x", "feat", "top", "low")},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


@dataclass
class FeatureStore:
    """Cached maps of ``n`` views (float16 memory maps) and what each view was."""

    feat: np.ndarray
    top: np.ndarray
    low: np.ndarray
    meta: list[dict]

    def __len__(self) -> int:
        return len(self.meta)


class FeatureCache:
    """Named sets of cached views in ``root`` (one folder per set)."""

    def __init__(self, root: Path, onnx_path: Path, threads: int = 2, workers: int = 2) -> None:
        import onnxruntime as ort

        self.root = root
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.workers = workers

    def build(
        self,
        name: str,
        n: int,
        make_view: ViewFn,
        meta: Sequence[dict],
        seed: int,
        feat_shape: tuple[int, int, int],
        batch: int = 32,
        log: Callable[[str], None] = print,
        progress: Progress | None = None,
    ) -> FeatureStore:
        """Compute (or reuse) the maps of views ``0 .. n-1``; ``make_view(i, rng)`` draws view i. With
        ``progress``, it is told ``("cache NAME", done, n, "")`` after every batch, instead of a log line
        every 20 batches."""
        folder = self.root / name
        done_file = folder / "done.json"
        if done_file.is_file():
            info = json.loads(done_file.read_text())
            if info.get("n") == n and info.get("seed") == seed and info.get("meta") == list(meta):
                log(f"[cache] {name}: {n} views reused from {folder}")
                return self._open(folder, info["meta"])
        folder.mkdir(parents=True, exist_ok=True)
        shapes = {"feat": (n, *feat_shape), "top": (n, 1280, GRID, GRID), "low": (n, LOW_CHANNELS, GRID, GRID)}
        key = {"n": n, "seed": seed, "meta": list(meta)}
        progress_file = folder / "progress.json"
        first = 0
        if progress_file.is_file() and all((folder / f"{k}.npy").is_file() for k in shapes):
            info = json.loads(progress_file.read_text())
            if {k: info.get(k) for k in key} == key:
                first = int(info["done"])
                log(f"[cache] {name}: resuming after {first} views")
        arrays = {
            k: np.lib.format.open_memmap(folder / f"{k}.npy", mode="r+" if first else "w+", dtype=np.float16, shape=s)
            for k, s in shapes.items()
        }

        def save_progress(done: int) -> None:
            for a in arrays.values():
                a.flush()
            tmp = folder / "progress.json.tmp"
            tmp.write_text(json.dumps({**key, "done": done}))
            os.replace(tmp, progress_file)

        def prepare(i: int) -> np.ndarray:
            rng = np.random.default_rng([seed, i])
            img = make_view(i, rng)
            arr = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
            return arr.transpose(2, 0, 1)

        started = time.perf_counter()

        def chunk(start: int) -> list[np.ndarray]:
            return [prepare(i) for i in range(start, min(n, start + batch))]

        with ThreadPoolExecutor(self.workers) as pool:
            ahead = 2  # batches prepared ahead of the model
            futures = [pool.submit(chunk, s) for s in range(first, min(n, first + ahead * batch), batch)]
            next_start = first + ahead * batch
            for start in range(first, n, batch):
                x = np.stack(futures.pop(0).result())
                if next_start < n:
                    futures.append(pool.submit(chunk, next_start))
                    next_start += batch
                feat, top, low = self.session.run(None, {"x": x})
                end = start + len(x)
                arrays["feat"][start:end] = feat
                arrays["top"][start:end] = top
                arrays["low"][start:end] = low
                if ((start - first) // batch) % 20 == 19 or end == n:
                    save_progress(end)
                    if progress is None:
                        rate = (end - first) / (time.perf_counter() - started)
                        log(f"[cache] {name}: {end}/{n} views, {rate:.1f} views/s")
                if progress is not None:
                    progress(f"cache {name}", end, n, "")
        save_progress(n)
        done_file.write_text(json.dumps(key))
        return self._open(folder, list(meta))

    @staticmethod
    def _open(folder: Path, meta: list[dict]) -> FeatureStore:
        load = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("feat", "top", "low")}
        return FeatureStore(load["feat"], load["top"], load["low"], meta)


def head_cfg_feat_shape(cfg: HeadCfg) -> tuple[int, int, int]:
    """Shape of the cached ``feat`` map for a head split."""
    channels = {11: 112, 12: 192, 13: 192, 14: 192, 15: 192, 16: 320}[cfg.split]
    side = 14 if cfg.split <= 11 else GRID
    return channels, side, side
