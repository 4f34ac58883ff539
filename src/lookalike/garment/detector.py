"""Serve ``lookalike-detector``: the garments in a photo, each a box, a coarse kind and a score (onnxruntime).

The picture is squashed to the model's square input (the sidecar's ``input.size``; boxes are fractions of
the width and height, so they map back onto the picture as they are) and normalised with its mean and std.
The model gives, on a grid of cells (``output.stride`` pixels each), a heat map per class (the garment's
centre: sigmoid scores) and the distances from each cell's centre to its box's four sides (fractions of the
picture). :func:`decode` keeps each local peak of the heat map above the threshold, reads its box there and
drops a box that mostly repeats a better one (non-maximum suppression, any class). The session is created
lazily, once, with at most 2 intra-op threads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.garment.kinds import CLASSES, OTHER
from lookalike.garment.onnx_model import SquareOnnxModel

__all__ = ["DEFAULT_DETECTOR", "Garment", "GarmentDetector", "box_iou", "decode", "default_detector"]

DEFAULT_DETECTOR = Path(__file__).resolve().parent.parent / "models" / "lookalike-detector.onnx"
_DEFAULTS: dict[str, Any] = {"size": 192, "mean": [127.0] * 3, "std": [128.0] * 3}
THRESHOLD = 0.3  # a peak scoring less is not a garment
NMS_IOU = 0.5  # a box overlapping a better one this much (any class) is the same garment
MAX_GARMENTS = 8


@dataclass(frozen=True)
class Garment:
    """A garment found in a picture: ``box`` (x0, y0, x1, y1 in fractions of the picture's width and height,
    origin top left), ``kind`` (one of :data:`lookalike.garment.kinds.KINDS`, or None for another worn or
    carried thing) and ``score`` (0..1, the detector's confidence)."""

    box: tuple[float, float, float, float]
    kind: str | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"box": [round(v, 4) for v in self.box], "kind": self.kind, "score": round(self.score, 4)}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), as (n, m); boxes x0, y0, x1, y1."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def decode(
    heat: np.ndarray,
    dist: np.ndarray,
    threshold: float = THRESHOLD,
    nms_iou: float = NMS_IOU,
    limit: int = MAX_GARMENTS,
    classes: tuple[str, ...] = CLASSES,
) -> list[Garment]:
    """Garments from one picture's outputs: ``heat`` (C, g, g) scores in 0..1 and ``dist`` (4, g, g), the
    distances (fractions) from each cell's centre to the left, top, right and bottom sides of its box."""
    _, gh, gw = heat.shape
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    peak = np.max(
        np.stack([padded[:, 1 + dy : 1 + dy + gh, 1 + dx : 1 + dx + gw] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]),
        axis=0,
    )
    best = heat.max(axis=0)  # a cell counts once, for its best class
    keep = (heat >= peak) & (heat >= threshold) & (heat >= best[None])
    cls, ys, xs = np.nonzero(keep)
    if len(cls) == 0:
        return []
    scores = heat[cls, ys, xs]
    cx, cy = (xs + 0.5) / gw, (ys + 0.5) / gh
    left, top, right, bottom = (dist[i, ys, xs] for i in range(4))
    boxes = np.clip(np.stack([cx - left, cy - top, cx + right, cy + bottom], axis=1), 0.0, 1.0)
    order = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    for i in order:
        b = boxes[i]
        if b[2] - b[0] <= 0 or b[3] - b[1] <= 0:
            continue
        if chosen and box_iou(b[None], boxes[chosen]).max() > nms_iou:
            continue
        chosen.append(int(i))
        if len(chosen) >= limit:
            break
    out = []
    for i in chosen:
        name = classes[int(cls[i])]
        box = tuple(float(v) for v in boxes[i])
        out.append(Garment(box, None if name == OTHER else name, float(scores[i])))  # type: ignore[arg-type]
    return out


class GarmentDetector(SquareOnnxModel):
    """The garments in a picture, best first: :meth:`detect`."""

    DEFAULTS = _DEFAULTS
    WHAT = "garment detector"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1, threshold: float | None = None) -> None:
        """``threads``: onnxruntime intra-op threads, 1 or 2; ``threshold``: the lowest score kept (default: the
        sidecar's, else :data:`THRESHOLD`)."""
        super().__init__(path, threads)
        out = self.meta.get("output", {})
        self.classes = tuple(out.get("classes", CLASSES))
        self.threshold = float(threshold if threshold is not None else out.get("threshold", THRESHOLD))

    def outputs(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """The model's heat map (C, g, g) and box distances (4, g, g) for ``image``."""
        heat, dist = self.run(image)
        return heat[0], dist[0]

    def detect(self, image: Image.Image, limit: int = MAX_GARMENTS) -> list[Garment]:
        """The garments in ``image``, best first (an empty list when none scores :attr:`threshold`)."""
        heat, dist = self.outputs(image)
        return decode(heat, dist, self.threshold, NMS_IOU, limit, self.classes)


_default: GarmentDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> GarmentDetector:
    """The shipped ``lookalike-detector`` model (one instance per process; loads on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = GarmentDetector(DEFAULT_DETECTOR)
        return _default
