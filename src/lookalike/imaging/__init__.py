"""Turning bytes, files and URLs into RGB images, safely."""

from lookalike.imaging.decode import (
    DecodeLimits,
    image_format,
    load_image,
    open_image_bytes,
    read_image_bytes,
)
from lookalike.imaging.fetch import FetchSettings, fetch_image_bytes
from lookalike.imaging.slots import decode_concurrency, set_decode_concurrency

__all__ = [
    "DecodeLimits",
    "FetchSettings",
    "decode_concurrency",
    "fetch_image_bytes",
    "image_format",
    "load_image",
    "open_image_bytes",
    "read_image_bytes",
    "set_decode_concurrency",
]
