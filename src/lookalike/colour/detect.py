"""The colour of the garment in a picture: segment it, then read its pixels with the colour head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from lookalike.colour.families import FAMILIES
from lookalike.colour.model import ColourModel, default_colour_model

__all__ = ["ColourDetector", "ColourEstimate", "default_colour_detector"]

MaskFn = Callable[[Image.Image], np.ndarray]


@dataclass(frozen=True)
class ColourEstimate:
    """A garment's colour: ``probabilities`` over :data:`FAMILIES` and the most likely ``family``."""

    probabilities: np.ndarray

    @property
    def family(self) -> str:
        return FAMILIES[int(np.argmax(self.probabilities))]

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)[:n]
        return [(FAMILIES[int(i)], float(self.probabilities[i])) for i in order]


class ColourDetector:
    """``mask_fn(picture)`` finds the garment (None: a centre prior); ``model`` reads its colour."""

    def __init__(self, model: ColourModel | None = None, mask_fn: MaskFn | None = None) -> None:
        self.model = model or default_colour_model()
        self.mask_fn = mask_fn

    def detect(self, image: Image.Image) -> ColourEstimate:
        rgb = image.convert("RGB")
        mask = self.mask_fn(rgb) if self.mask_fn is not None else None
        return ColourEstimate(self.model.predict(rgb, mask))


@lru_cache(maxsize=1)
def default_colour_detector() -> ColourDetector:
    """The shipped colour head over the shipped garment segmenter's mask (:mod:`lookalike.garment`)."""
    return ColourDetector(default_colour_model(), _default_mask_fn())


def _default_mask_fn() -> MaskFn:
    from lookalike.garment import default_segmenter

    return default_segmenter().predict
