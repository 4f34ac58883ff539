"""The colour head: colour features → a distribution over the 12 families.

A softmax-linear head whose weights and feature settings live in one small JSON file (shipped:
``models/lookalike-colour.json``, made by ``lookalike train-colour``); it runs in numpy, no runtime needed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.colour.families import FAMILIES
from lookalike.colour.features import ColourFeatureCfg, colour_features
from lookalike.errors import ModelLoadError

__all__ = ["DEFAULT_COLOUR_MODEL", "ColourModel", "default_colour_model"]

DEFAULT_COLOUR_MODEL = Path(__file__).resolve().parent.parent / "models" / "lookalike-colour.json"


@dataclass
class ColourModel:
    """``probabilities(features)`` = softmax(features @ weights + bias) over :data:`FAMILIES`."""

    weights: np.ndarray  # (dim, 12)
    bias: np.ndarray  # (12,)
    cfg: ColourFeatureCfg = field(default_factory=ColourFeatureCfg)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32)
        if self.weights.shape != (self.cfg.dim, len(FAMILIES)) or self.bias.shape != (len(FAMILIES),):
            raise ModelLoadError(
                f"colour head shapes {self.weights.shape} / {self.bias.shape} do not fit {self.cfg.dim} features "
                f"x {len(FAMILIES)} families"
            )

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, 12) family probabilities of (n, dim) features (or (12,) of one)."""
        x = np.asarray(features, dtype=np.float32)
        logits = x @ self.weights + self.bias
        logits = logits - logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)

    def predict(self, image: Image.Image, mask: np.ndarray | None = None) -> np.ndarray:
        """The family distribution (12,) of the garment in ``image`` (``mask``: where it is; None: centre)."""
        return self.probabilities(colour_features(image, mask, self.cfg))

    def save(self, path: str | os.PathLike[str]) -> None:
        doc = {
            "families": list(FAMILIES),
            "features": self.cfg.to_dict(),
            "weights": np.round(self.weights, 6).tolist(),
            "bias": np.round(self.bias, 6).tolist(),
            "info": self.info,
        }
        Path(path).write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ColourModel:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the colour head {path}: {exc}") from exc
        if tuple(doc.get("families", ())) != FAMILIES:
            raise ModelLoadError(f"{path}: the colour head was made for other families: {doc.get('families')}")
        return cls(doc["weights"], doc["bias"], ColourFeatureCfg.from_dict(doc["features"]), doc.get("info", {}))


@lru_cache(maxsize=1)
def default_colour_model() -> ColourModel:
    """The shipped colour head (loaded once)."""
    return ColourModel.load(DEFAULT_COLOUR_MODEL)
