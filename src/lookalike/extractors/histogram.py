"""Region-based HSV colour histograms: the classic content-based image retrieval baseline.

The image is split into a centre ellipse and four corner regions (so the layout of colour counts, and
a garment in the middle is weighed apart from its background); each region gets a joint
hue x saturation x value histogram. The concatenation is square-rooted (Hellinger kernel) and
L2-normalised, so a dot product compares histograms sensibly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.extractors.base import Extractor, PreprocessCfg, l2_normalize

__all__ = ["ColourHistogramExtractor"]


class ColourHistogramExtractor(Extractor):
    def __init__(self, bins: tuple[int, int, int] = (8, 3, 3), size: int = 128) -> None:
        self.name = "colour-histogram"
        self.bins = bins
        self.preprocess_cfg = PreprocessCfg(size=size, resize_mode="squash", mean=(0, 0, 0), std=(1, 1, 1))
        self.batch_size = 64
        self._masks = self._region_masks(size)
        self.dim = len(self._masks) * int(np.prod(bins))

    @staticmethod
    def _region_masks(size: int) -> list[np.ndarray]:
        yy, xx = np.mgrid[0:size, 0:size]
        c = (size - 1) / 2.0
        ellipse = ((xx - c) / (size * 0.375)) ** 2 + ((yy - c) / (size * 0.375)) ** 2 <= 1.0
        masks = [ellipse]
        for top in (True, False):
            for left in (True, False):
                quad = ((yy < c) if top else (yy >= c)) & ((xx < c) if left else (xx >= c))
                masks.append(quad & ~ellipse)
        return masks

    def preprocess(self, img: Image.Image) -> np.ndarray:
        hsv = self.preprocess_cfg.resize(img.convert("RGB")).convert("HSV")
        arr = np.asarray(hsv, dtype=np.int32)
        hb, sb, vb = self.bins
        h = arr[..., 0] * hb // 256
        s = arr[..., 1] * sb // 256
        v = arr[..., 2] * vb // 256
        return (h * sb * vb + s * vb + v).astype(np.int32)

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        nbins = int(np.prod(self.bins))
        out = np.zeros((batch.shape[0], self.dim), dtype=np.float32)
        for i, codes in enumerate(batch):
            parts = []
            for mask in self._masks:
                hist = np.bincount(codes[mask], minlength=nbins).astype(np.float32)
                parts.append(hist / max(1.0, float(mask.sum())))
            out[i] = np.sqrt(np.concatenate(parts))
        return l2_normalize(out)

    def describe(self) -> dict:
        d = super().describe()
        d["bins"] = list(self.bins)
        return d
