"""The one interface every feature extractor implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

__all__ = ["Extractor", "PreprocessCfg", "l2_normalize", "with_mirror"]

ResizeMode = Literal["squash", "center_crop", "pad"]


@dataclass(frozen=True)
class PreprocessCfg:
    """How an image becomes the model's input tensor; travels with the weights.

    Pixel values are in 0..255 before ``(x - mean) / std``: EfficientNet-Lite uses mean 127, std 128;
    CLIP-style models use ImageNet statistics times 255.
    """

    size: int = 224
    resize_mode: ResizeMode = "center_crop"
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    pad_colour: tuple[int, int, int] = field(default=(255, 255, 255))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessCfg:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std", "pad_colour"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def resize(self, img: Image.Image) -> Image.Image:
        """Resize (and crop or pad) ``img`` to ``size`` x ``size``."""
        resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        s = self.size
        w, h = img.size
        if self.resize_mode == "squash":
            return img.resize((s, s), resample, reducing_gap=3.0)
        if self.resize_mode == "pad":
            scale = s / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            canvas = Image.new("RGB", (s, s), self.pad_colour)
            canvas.paste(img.resize((nw, nh), resample, reducing_gap=3.0), ((s - nw) // 2, (s - nh) // 2))
            return canvas
        # centre square of the source, then one resize: cheap even for a 2000x3 strip
        side = min(w, h)
        left, top = (w - side) / 2.0, (h - side) / 2.0
        return img.resize((s, s), resample, box=(left, top, left + side, top + side), reducing_gap=3.0)

    def to_array(self, img: Image.Image) -> np.ndarray:
        """One preprocessed float32 array, CHW (or HWC) for the model."""
        arr = np.asarray(self.resize(img.convert("RGB")), dtype=np.float32)
        arr = (arr - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        if self.layout == "NCHW":
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation, float32; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def with_mirror(img: Image.Image) -> list[Image.Image]:
    """A query picture and its mirror image: a search ranks products by the better of the two
    similarities (:attr:`lookalike.Catalog.query_flip`), so a garment photographed facing the other way
    than the catalogue's shots is still found, and the picture itself still scores 1."""
    return [img, ImageOps.mirror(img)]


class Extractor(abc.ABC):
    """Turns images into L2-normalised float32 embeddings of a fixed dimension.

    Subclasses implement :meth:`embed_batch`; :meth:`embed` adds batching. ``preprocess`` is public so
    ingest can run it in worker threads or processes, away from the model.
    """

    name: str
    dim: int
    preprocess_cfg: PreprocessCfg | None = None
    batch_size: int = 32

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """Image -> model input array (the extractor's own preprocessing)."""
        if self.preprocess_cfg is None:
            raise NotImplementedError
        return self.preprocess_cfg.to_array(img)

    @abc.abstractmethod
    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Embed a stacked batch of :meth:`preprocess` outputs; returns (n, dim) L2-normalised."""

    def embed(self, images: Iterable[Image.Image], batch_size: int | None = None) -> np.ndarray:
        """Embed images in batches; returns an (n, dim) float32 array, rows L2-normalised."""
        bs = batch_size or self.batch_size
        out: list[np.ndarray] = []
        buf: list[np.ndarray] = []
        for img in images:
            buf.append(self.preprocess(img))
            if len(buf) >= bs:
                out.append(self.embed_preprocessed(np.stack(buf)))
                buf = []
        if buf:
            out.append(self.embed_preprocessed(np.stack(buf)))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def bulk(self) -> Extractor:
        """The extractor to run long batch jobs with (an ingest), beside other work on the same cores:
        the same model, tuned for throughput with company rather than for one query's latency.
        Default: ``self``."""
        return self

    def embed_one(self, img: Image.Image) -> np.ndarray:
        """Embed one image; returns a (dim,) vector."""
        return self.embed([img])[0]

    def describe(self) -> dict[str, Any]:
        """What a catalogue manifest records about this extractor."""
        return {
            "name": self.name,
            "dim": self.dim,
            "preprocess": self.preprocess_cfg.to_dict() if self.preprocess_cfg else None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"
