"""Decode image bytes into an RGB :class:`PIL.Image.Image` with size and pixel caps.

Every image that enters lookalike (catalogue files, uploads, URL bodies) goes through
:func:`open_image_bytes`, so the rules live in one place:

* a byte cap and a pixel cap (decompression bombs are refused before any pixel is decoded);
* EXIF orientation applied;
* CMYK, palette, 16-bit, grey and alpha images converted to 8-bit RGB; transparent areas become white,
  like a catalogue background;
* animated images give their first frame;
* JPEGs are decoded at reduced size (``draft``) when only a small image is needed.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lookalike.errors import ImageDecodeError, ImageTooLargeError, UnsupportedImageError

__all__ = ["DecodeLimits", "image_format", "load_image", "open_image_bytes", "read_image_bytes"]

# Never decode a truncated file silently as a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

try:  # HEIC / AVIF when the optional decoder is installed.
    import pillow_heif  # type: ignore[import-not-found]

    pillow_heif.register_heif_opener()
    with contextlib.suppress(AttributeError):  # newer pillow-heif: AVIF is Pillow's own
        pillow_heif.register_avif_opener()
except ImportError:  # pragma: no cover - optional
    pass

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "HEIF", "AVIF", "ICO", "PPM"})


@dataclass(frozen=True)
class DecodeLimits:
    """Caps applied to every decoded image."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 1


DEFAULT_LIMITS = DecodeLimits()


def read_image_bytes(path: str | os.PathLike[str], limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a local image file, refusing files over the byte cap before reading them."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"{p}: no such file") from exc
    except OSError as exc:
        raise ImageDecodeError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if not p.is_file():
        raise ImageDecodeError(f"{p}: not a file")
    if size > limits.max_bytes:
        raise ImageTooLargeError(f"{p}: {size:,} bytes is over the {limits.max_bytes:,}-byte limit")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{p}: cannot read ({exc.strerror or exc})") from exc


def load_image(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    limits: DecodeLimits = DEFAULT_LIMITS,
    draft_size: int | None = None,
) -> Image.Image:
    """Load a path, bytes or a binary file object as an 8-bit RGB image."""
    if isinstance(source, bytes | bytearray | memoryview):
        return open_image_bytes(bytes(source), limits=limits, draft_size=draft_size)
    if isinstance(source, str | os.PathLike):
        data = read_image_bytes(source, limits)
        return open_image_bytes(data, limits=limits, draft_size=draft_size, name=str(source))
    data = source.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"image is over the {limits.max_bytes:,}-byte limit")
    return open_image_bytes(data, limits=limits, draft_size=draft_size)


def _sniff(data: bytes) -> str | None:
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower()):
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if head.startswith(b"%pdf"):
        return "PDF"
    return None


def image_format(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """The container format and size from the header alone (no pixel decoding); (None, None) if unknown."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return (img.format or "").upper() or None, img.size
    except Exception:
        return None, None


def open_image_bytes(
    data: bytes,
    limits: DecodeLimits = DEFAULT_LIMITS,
    draft_size: int | None = None,
    name: str = "image",
) -> Image.Image:
    """Decode ``data`` into an RGB image, enforcing ``limits``.

    Raises :class:`ImageDecodeError`, :class:`UnsupportedImageError` or :class:`ImageTooLargeError`,
    never a Pillow exception.
    """
    if len(data) == 0:
        raise ImageDecodeError(f"{name}: empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"{name}: {len(data):,} bytes is over the {limits.max_bytes:,}-byte limit")
    sniffed = _sniff(data)
    if sniffed is not None:
        raise UnsupportedImageError(f"{name}: {sniffed} is not a supported image format")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = (img.format or "").upper()
            if fmt not in SUPPORTED_FORMATS:
                raise UnsupportedImageError(f"{name}: {fmt or 'unknown'} images are not supported")
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImageTooLargeError(
                    f"{name}: {width}x{height} pixels is over the {limits.max_pixels:,}-pixel limit"
                )
            if min(width, height) < limits.min_side:
                raise ImageDecodeError(f"{name}: image has no pixels ({width}x{height})")
            if draft_size and fmt == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.seek(0)
            img.load()
            return _to_rgb(img)
    except (ImageTooLargeError, UnsupportedImageError, ImageDecodeError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{name}: image declares too many pixels (decompression bomb)") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{name}: not a recognised image file") from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise ImageDecodeError(f"{name}: corrupt or truncated image ({exc})") from exc
    except MemoryError as exc:
        raise ImageTooLargeError(f"{name}: image too large to decode") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB (alpha composited on white)."""
    with contextlib.suppress(Exception):  # a broken EXIF block must not lose an otherwise good picture
        img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / 65535.0 if hi > 255 else 1.0
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr8 = ((arr - lo) / (hi - lo) * 255.0) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.nan_to_num(arr8).astype(np.uint8), mode="L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    if mode == "1":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")  # L, CMYK, YCbCr, LAB, HSV
