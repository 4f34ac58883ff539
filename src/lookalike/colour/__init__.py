"""Colour understanding: the 12 families, a garment's colour distribution from its pixels, colour-aware
ranking. Lower than the catalogue: imports only numpy, Pillow and :mod:`lookalike.errors`."""

from lookalike.colour.detect import ColourDetector, ColourEstimate, default_colour_detector
from lookalike.colour.families import FAMILIES, MULTI, family_index, family_of, nearest_names
from lookalike.colour.features import ColourFeatureCfg, colour_features
from lookalike.colour.model import DEFAULT_COLOUR_MODEL, ColourModel, default_colour_model
from lookalike.colour.ranking import (
    DEFAULT_COLOUR_WEIGHT,
    PREFERENCE_WEIGHT,
    agreement,
    preference_distribution,
    rerank_order,
)

__all__ = [
    "DEFAULT_COLOUR_MODEL",
    "DEFAULT_COLOUR_WEIGHT",
    "FAMILIES",
    "MULTI",
    "PREFERENCE_WEIGHT",
    "ColourDetector",
    "ColourEstimate",
    "ColourFeatureCfg",
    "ColourModel",
    "agreement",
    "colour_features",
    "default_colour_detector",
    "default_colour_model",
    "family_index",
    "family_of",
    "nearest_names",
    "preference_distribution",
    "rerank_order",
]
