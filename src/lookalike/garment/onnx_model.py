"""What the garment models served with onnxruntime share: the JSON sidecar, a square normalised input and a
session created lazily, once, on the CPU with at most 2 intra-op threads."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from lookalike.errors import ModelLoadError

__all__ = ["SquareOnnxModel"]


class SquareOnnxModel:
    """An onnxruntime model whose one input is a picture squashed to ``size`` × ``size`` and normalised with the
    sidecar's (``<model>.json``) ``input`` mean and std; :attr:`meta` is the whole sidecar (empty without one)."""

    #: the input settings used where the sidecar gives none
    DEFAULTS: ClassVar[dict[str, Any]] = {"size": 128, "mean": [127.5] * 3, "std": [127.5] * 3}
    #: what the model is, in error messages
    WHAT = "garment model"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        self.path = Path(path)
        self.threads = max(1, min(2, int(threads)))
        self.meta: dict[str, Any] = {}
        sidecar = self.path.with_suffix(".json")
        if sidecar.is_file():
            try:
                self.meta = dict(json.loads(sidecar.read_text()))
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"cannot read {sidecar}: {exc}") from exc
        cfg = {**self.DEFAULTS, **self.meta.get("input", {})}
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
                        raise ModelLoadError(f"{self.WHAT} not found: {self.path}")
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = self.threads
                    opts.inter_op_num_threads = 1
                    opts.log_severity_level = 3
                    try:
                        sess = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
                    except Exception as exc:  # onnxruntime raises its own exception types
                        raise ModelLoadError(f"cannot load {self.WHAT} {self.path}: {exc}") from exc
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

    def run(self, image: Image.Image) -> list[Any]:
        """The model's outputs for ``image``."""
        return list(self._sess().run(None, {self._input: self.preprocess(image)}))
