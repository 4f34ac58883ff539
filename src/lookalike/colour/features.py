"""Colour features of a garment: a histogram of hue, saturation and value over the garment's pixels.

The picture is shrunk to ``size`` × ``size``; each pixel votes with its mask weight (the garment's mask from
:mod:`lookalike.garment`, a catalogue shot's non-background pixels, or a centre prior when no mask is known)
into ``hue_bins × sat_bins × val_bins`` cells; the histogram is normalised and square-rooted, so a dot
product of two features is their Bhattacharyya coefficient and a linear head reads it well.

One histogram per entry of ``white_points``: 0 reads the pixels as they are; a percentile p first scales the
channels so the picture's p-th percentile becomes white (white-patch balance: under a dim indoor light a
white shirt is the brightest thing in the photo and reads as white again, while a grey one on a white bed
stays grey). The default, both, measured best on the training contributors' photos (docs/quality.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["ColourFeatureCfg", "centre_prior", "colour_features", "pixels_hsv"]


@dataclass(frozen=True)
class ColourFeatureCfg:
    """How features are computed; travels with the colour head's weights."""

    size: int = 64
    hue_bins: int = 12
    sat_bins: int = 4
    val_bins: int = 4
    white_points: tuple[float, ...] = (0.0, 95.0)  # one histogram each: 0 as is, p: p-th percentile made white

    @property
    def cells(self) -> int:
        return self.hue_bins * self.sat_bins * self.val_bins

    @property
    def dim(self) -> int:
        return self.cells * len(self.white_points)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["white_points"] = list(self.white_points)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourFeatureCfg:
        known = {k: data[k] for k in ("size", "hue_bins", "sat_bins", "val_bins") if k in data}
        if "white_points" in data:
            known["white_points"] = tuple(float(p) for p in data["white_points"])
        return cls(**known)


def centre_prior(size: int, sigma: float = 0.2) -> np.ndarray:
    """A Gaussian weight centred on the picture (where a shopper puts the garment), shape (size, size)."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    return np.exp(-(xx**2 + yy**2) / (2 * sigma**2)).astype(np.float32)


def pixels_hsv(rgb: Image.Image, white_point: float) -> np.ndarray:
    """An RGB picture as HSV floats in [0, 1], shape (h, w, 3); ``white_point`` > 0: after scaling the channels so
    that percentile of the picture becomes white."""
    if white_point > 0:
        arr = np.asarray(rgb, dtype=np.float32)
        ref = np.percentile(arr.reshape(-1, 3), white_point, axis=0)
        arr = np.clip(arr * (255.0 / np.maximum(ref, 40.0)), 0, 255).astype(np.uint8)
        rgb = Image.fromarray(arr)
    return np.asarray(rgb.convert("HSV"), dtype=np.float32) / 255.0


def colour_features(image: Image.Image, mask: np.ndarray | None, cfg: ColourFeatureCfg) -> np.ndarray:
    """The feature vector (float32, ``cfg.dim``) of ``image`` weighted by ``mask`` (any shape; resized to the
    feature grid; ``None``: the centre prior)."""
    rgb = image.convert("RGB").resize((cfg.size, cfg.size), Image.BILINEAR)
    if mask is None:
        weights = centre_prior(cfg.size)
    else:
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != (cfg.size, cfg.size):
            m = np.asarray(Image.fromarray(m).resize((cfg.size, cfg.size), Image.BILINEAR), dtype=np.float32)
        weights = np.clip(m, 0.0, 1.0)
        if float(weights.sum()) < 1e-3 * weights.size:  # an empty mask says nothing: fall back to the prior
            weights = centre_prior(cfg.size)
    parts = []
    for point in cfg.white_points:
        hsv = pixels_hsv(rgb, point)
        h = np.minimum((hsv[..., 0] * cfg.hue_bins).astype(np.int64), cfg.hue_bins - 1)
        s = np.minimum((hsv[..., 1] * cfg.sat_bins).astype(np.int64), cfg.sat_bins - 1)
        v = np.minimum((hsv[..., 2] * cfg.val_bins).astype(np.int64), cfg.val_bins - 1)
        cells = (h * cfg.sat_bins + s) * cfg.val_bins + v
        hist = np.bincount(cells.ravel(), weights=weights.ravel(), minlength=cfg.cells)
        hist /= max(float(hist.sum()), 1e-6)
        parts.append(np.sqrt(hist))
    return np.concatenate(parts).astype(np.float32)
