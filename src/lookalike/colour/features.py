"""Colour features of a garment: a histogram of hue, saturation and value over the garment's pixels.

The picture is shrunk to ``size`` × ``size``; each pixel votes with its mask weight (the garment's mask from
:mod:`lookalike.garment`, a catalogue shot's non-background pixels, or a centre prior when no mask is known)
into ``hue_bins × sat_bins × val_bins`` cells; the histogram is normalised and square-rooted, so a dot
product of two features is their Bhattacharyya coefficient and a linear head reads it well.
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
    white_patch: float = 0.0  # > 0: scale channels so this percentile of the picture becomes white

    @property
    def dim(self) -> int:
        return self.hue_bins * self.sat_bins * self.val_bins

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourFeatureCfg:
        return cls(**{k: data[k] for k in ("size", "hue_bins", "sat_bins", "val_bins", "white_patch") if k in data})


def centre_prior(size: int, sigma: float = 0.2) -> np.ndarray:
    """A Gaussian weight centred on the picture (where a shopper puts the garment), shape (size, size)."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    return np.exp(-(xx**2 + yy**2) / (2 * sigma**2)).astype(np.float32)


def pixels_hsv(image: Image.Image, cfg: ColourFeatureCfg) -> np.ndarray:
    """The picture shrunk to ``cfg.size`` squared, as HSV floats in [0, 1], shape (size, size, 3)."""
    rgb = image.convert("RGB").resize((cfg.size, cfg.size), Image.BILINEAR)
    if cfg.white_patch > 0:
        arr = np.asarray(rgb, dtype=np.float32)
        ref = np.percentile(arr.reshape(-1, 3), cfg.white_patch, axis=0)
        arr = np.clip(arr * (255.0 / np.maximum(ref, 40.0)), 0, 255).astype(np.uint8)
        rgb = Image.fromarray(arr)
    return np.asarray(rgb.convert("HSV"), dtype=np.float32) / 255.0


def colour_features(image: Image.Image, mask: np.ndarray | None, cfg: ColourFeatureCfg) -> np.ndarray:
    """The feature vector (float32, ``cfg.dim``) of ``image`` weighted by ``mask`` (any shape; resized to the
    feature grid; ``None``: the centre prior)."""
    hsv = pixels_hsv(image, cfg)
    if mask is None:
        weights = centre_prior(cfg.size)
    else:
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != (cfg.size, cfg.size):
            m = np.asarray(Image.fromarray(m).resize((cfg.size, cfg.size), Image.BILINEAR), dtype=np.float32)
        weights = np.clip(m, 0.0, 1.0)
        if float(weights.sum()) < 1e-3 * weights.size:  # an empty mask says nothing: fall back to the prior
            weights = centre_prior(cfg.size)
    h = np.minimum((hsv[..., 0] * cfg.hue_bins).astype(np.int64), cfg.hue_bins - 1)
    s = np.minimum((hsv[..., 1] * cfg.sat_bins).astype(np.int64), cfg.sat_bins - 1)
    v = np.minimum((hsv[..., 2] * cfg.val_bins).astype(np.int64), cfg.val_bins - 1)
    cells = (h * cfg.sat_bins + s) * cfg.val_bins + v
    hist = np.bincount(cells.ravel(), weights=weights.ravel(), minlength=cfg.dim)
    hist /= max(float(hist.sum()), 1e-6)
    return np.sqrt(hist).astype(np.float32)
