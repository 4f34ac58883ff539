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
        """HSV pixels in bin coordinates, (3, size, size) float32."""
        hsv = self.preprocess_cfg.resize(img.convert("RGB")).convert("HSV")
        arr = np.asarray(hsv, dtype=np.float32).transpose(2, 0, 1)
        hb, sb, vb = self.bins
        # bin centres at integer positions: value v in [0, 256) maps to v * bins / 256 - 0.5
        scale = np.array([hb, sb, vb], dtype=np.float32)[:, None, None] / 256.0
        return arr * scale - 0.5

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Soft-binned histograms: each pixel splits its weight between the two nearest bins on
        each axis (hue wraps around), so near-identical colours land in overlapping bins."""
        hb, sb, vb = self.bins
        nbins = hb * sb * vb
        out = np.zeros((batch.shape[0], self.dim), dtype=np.float32)
        for i, coords in enumerate(batch):
            axes = []
            for axis, n, circular in ((0, hb, True), (1, sb, False), (2, vb, False)):
                x = coords[axis]
                lo = np.floor(x)
                frac = x - lo
                lo_i, hi_i = lo.astype(np.int64), lo.astype(np.int64) + 1
                if circular:
                    lo_i, hi_i = lo_i % n, hi_i % n
                else:
                    lo_i, hi_i = np.clip(lo_i, 0, n - 1), np.clip(hi_i, 0, n - 1)
                axes.append(((lo_i, 1.0 - frac), (hi_i, frac)))
            parts = []
            for mask in self._masks:
                hist = np.zeros(nbins, dtype=np.float64)
                for h_idx, h_w in axes[0]:
                    for s_idx, s_w in axes[1]:
                        for v_idx, v_w in axes[2]:
                            code = (h_idx * sb + s_idx) * vb + v_idx
                            hist += np.bincount(code[mask], weights=(h_w * s_w * v_w)[mask], minlength=nbins)
                parts.append(hist / max(1.0, float(mask.sum())))
            out[i] = np.sqrt(np.concatenate(parts))
        return l2_normalize(out)

    def describe(self) -> dict:
        d = super().describe()
        d["bins"] = list(self.bins)
        return d
