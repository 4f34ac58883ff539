"""Serve ``lookalike-garment``: the garment mask of a shopper's photo with onnxruntime.

The picture is squashed to the model's square input (the sidecar's ``input.size``), normalised with
its mean and std, and the logits (at half resolution) go through a sigmoid. The session is created
lazily, once, with at most 2 intra-op threads.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.garment.onnx_model import SquareOnnxModel

__all__ = ["DEFAULT_MODEL", "GarmentSegmenter", "default_segmenter", "resize_mask"]

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "lookalike-garment.onnx"
_DEFAULTS = {"size": 128, "mean": [127.5] * 3, "std": [127.5] * 3}


class GarmentSegmenter(SquareOnnxModel):
    """The garment mask of a picture: :meth:`predict` (model resolution) or :meth:`mask` (any size)."""

    DEFAULTS = _DEFAULTS
    WHAT = "garment model"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        """``threads``: onnxruntime intra-op threads, 1 or 2 (one is faster on a busy machine: a second
        thread that has to be woken for every small picture costs more than it saves)."""
        super().__init__(path, threads)

    def predict(self, image: Image.Image) -> np.ndarray:
        """Garment probability, float32 in [0, 1], at the model's output resolution (half its input)."""
        logits = self.run(image)[0][0, 0]
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def mask(self, image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
        """Garment probability resized to ``size`` (width, height; default: the image's own size)."""
        prob = self.predict(image)
        w, h = size or image.size
        return resize_mask(prob, (w, h))


def resize_mask(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float mask (h, w) resized bilinearly to ``size`` (width, height), float32 in [0, 1]."""
    img = Image.fromarray(np.asarray(prob, dtype=np.float32), mode="F")
    return np.clip(np.asarray(img.resize(size, Image.Resampling.BILINEAR), dtype=np.float32), 0.0, 1.0)


_default: GarmentSegmenter | None = None
_default_lock = threading.Lock()


def default_segmenter() -> GarmentSegmenter:
    """The shipped ``lookalike-garment`` model (one instance per process; loads on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = GarmentSegmenter(DEFAULT_MODEL)
        return _default
