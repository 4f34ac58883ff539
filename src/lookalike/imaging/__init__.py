"""Turning bytes, files and URLs into RGB images, safely."""

from lookalike.imaging.decode import (
    DecodeLimits,
    image_format,
    load_image,
    open_image_bytes,
    read_image_bytes,
)
from lookalike.imaging.fetch import FetchSettings, fetch_image_bytes

__all__ = [
    "DecodeLimits",
    "FetchSettings",
    "fetch_image_bytes",
    "image_format",
    "load_image",
    "open_image_bytes",
    "read_image_bytes",
]
