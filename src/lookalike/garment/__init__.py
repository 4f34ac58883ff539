"""Garment localisation: the mask of the main garment in a picture.

* :func:`catalogue_mask`: the product in a white-background catalogue shot (flood fill, numpy + Pillow);
* :class:`GarmentSegmenter` / :func:`default_segmenter`: the shipped ``lookalike-garment`` ONNX model for
  shoppers' photos (onnxruntime, loaded lazily).

Importing this package loads no model.
"""

from lookalike.garment.mask import catalogue_mask
from lookalike.garment.segmenter import DEFAULT_MODEL, GarmentSegmenter, default_segmenter, resize_mask

__all__ = ["DEFAULT_MODEL", "GarmentSegmenter", "catalogue_mask", "default_segmenter", "resize_mask"]
