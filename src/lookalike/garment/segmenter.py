"""Serve ``lookalike-garment``: the garment mask of a shopper's photo with onnxruntime.

The picture is squashed to the model's square input (the sidecar's ``input.size``), normalised with
its mean and std, and the logits (at half resolution) go through a sigmoid. The session is created
lazily, once, with at most 2 intra-op threads.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import ModelLoadError

__all__ = ["DEFAULT_MODEL", "GarmentSegmenter", "default_segmenter", "resize_mask"]

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "lookalike-garment.onnx"
_DEFAULTS = {"size": 128, "mean": [127.5] * 3, "std": [127.5] * 3}


class GarmentSegmenter:
    """The garment mask of a picture: :meth:`predict` (model resolution) or :meth:`mask` (any size)."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        """``threads``: onnxruntime intra-op threads, 1 or 2 (one is faster on a busy machine: a second
        thread that has to be woken for every small picture costs more than it saves)."""
        self.path = Path(path)
        self.threads = max(1, min(2, int(threads)))
        cfg = dict(_DEFAULTS)
        sidecar = self.path.with_suffix(".json")
        if sidecar.is_file():
            try:
                cfg.update(json.loads(sidecar.read_text()).get("input", {}))
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"cannot read {sidecar}: {exc}") from exc
        self.size = int(cfg["size"])
        self._mean = np.asarray(cfg["mean"], np.float32)
        self._inv_std = 1.0 / np.asarray(cfg["std"], np.float32)
        self._session: Any = None
        self._lock = threading.Lock()

    def _sess(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    if not self.path.is_file():
                        raise ModelLoadError(f"garment model not found: {self.path}")
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = self.threads
                    opts.inter_op_num_threads = 1
                    opts.log_severity_level = 3
                    try:
                        sess = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
                    except Exception as exc:  # onnxruntime raises its own exception types
                        raise ModelLoadError(f"cannot load garment model {self.path}: {exc}") from exc
                    self._input = sess.get_inputs()[0].name
                    self._session = sess
        return self._session

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """(1, 3, size, size) float32 input of ``image`` (squashed to a square)."""
        img = image if image.mode == "RGB" else image.convert("RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        x = (np.asarray(img, dtype=np.float32) - self._mean) * self._inv_std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def predict(self, image: Image.Image) -> np.ndarray:
        """Garment probability, float32 in [0, 1], at the model's output resolution (half its input)."""
        sess = self._sess()
        logits = sess.run(None, {self._input: self.preprocess(image)})[0][0, 0]
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
