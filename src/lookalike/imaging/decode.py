"""Decode image bytes into an RGB :class:`PIL.Image.Image` with size and pixel caps.

Every image that enters lookalike (catalogue files, uploads, URL bodies) goes through
:func:`open_image_bytes`, so the rules live in one place:

* a byte cap and a pixel cap (decompression bombs are refused before any pixel is decoded);
* EXIF orientation applied;
* CMYK, palette, 16-bit, grey and alpha images converted to 8-bit RGB; transparent areas become white,
  like a catalogue background;
* animated images give their first frame;
* JPEGs are decoded at reduced size (``draft``) when only a small image is needed;
* memory stays bounded: the pixel buffer a decode will hold (``w * h`` times the bytes per pixel Pillow
  stores) is checked against :attr:`DecodeLimits.decoded_bytes_cap` before any pixel is decoded, big
  decodes wait for one of a few slots (:mod:`lookalike.imaging.slots`), and a picture far larger than any
  model needs (shorter side at least twice :data:`MIN_KEEP_SIDE`) is reduced by a whole factor at once,
  converted and reduced band by band, so no full-size copy is made (no EXIF copy, no RGB conversion, no
  mirror image at full size). Ordinary pictures come out exactly as before.
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
from lookalike.imaging.slots import decode_slot

__all__ = [
    "MIN_KEEP_SIDE",
    "DecodeLimits",
    "decoded_bytes",
    "image_format",
    "load_image",
    "open_image_bytes",
    "read_image_bytes",
]

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
    max_decoded_bytes: int | None = None  # None: max_pixels pixels of 4 bytes (RGB, RGBA)

    @property
    def decoded_bytes_cap(self) -> int:
        """The most bytes one decoded pixel buffer may hold."""
        return self.max_decoded_bytes if self.max_decoded_bytes is not None else self.max_pixels * 4


# A picture whose shorter side is at least twice this (or 6x the draft size) is reduced on decoding;
# it keeps a shorter side of at least this (3x the draft size), more than any preprocessing resizes from.
MIN_KEEP_SIDE = 1024
_BAND_ROWS = 256  # rows converted at a time when reducing a big picture
# Bytes per pixel as Pillow holds a mode in memory (RGB, LA, CMYK, I, F...: 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_DEEP_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


DEFAULT_LIMITS = DecodeLimits()


def read_image_bytes(path: str | os.PathLike[str], limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a local image file, refusing files over the byte cap before reading them."""
    p = Path(path)
    if "\x00" in str(p):  # os.stat would raise ValueError ("embedded null byte")
        raise ImageDecodeError(f"{str(p)!r}: a path cannot hold a NUL character")
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
            if fmt == "JPEG":
                side = draft_size or MIN_KEEP_SIDE
                img.draft("RGB", (side, side))
            img.seek(0)
            held = decoded_bytes(img.mode, img.size)
            if held > limits.decoded_bytes_cap:
                raise ImageTooLargeError(
                    f"{name}: {width}x{height} {img.mode} pixels would take {held:,} bytes decoded, "
                    f"over the {limits.decoded_bytes_cap:,}-byte limit"
                )
            with decode_slot(held):
                img.load()
                return _to_rgb(img, _reduce_factor(img.size, draft_size))
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


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """Bytes Pillow holds for a decoded picture of this mode and size."""
    return size[0] * size[1] * _PIXEL_BYTES.get(mode, 4)


def _reduce_factor(size: tuple[int, int], draft_size: int | None) -> int:
    """The whole factor a picture is reduced by on decoding: 1 unless its shorter side is at least twice
    what is kept (:data:`MIN_KEEP_SIDE`, or 3x ``draft_size``: the preprocessing's own reducing gap)."""
    keep = max(MIN_KEEP_SIDE, 3 * (draft_size or 0))
    return max(1, min(size) // keep)


def _orientation(img: Image.Image) -> int:
    with contextlib.suppress(Exception):  # a broken EXIF block must not lose an otherwise good picture
        return int(img.getexif().get(0x0112, 1))
    return 1


def _to_rgb(img: Image.Image, factor: int = 1) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB (alpha composited on white), reduced by
    ``factor``. No full-size copy is made when nothing needs changing."""
    orientation = _orientation(img)
    if factor > 1:
        out = _reduced(img, factor)
        method = _TRANSPOSE.get(orientation)
        return out.transpose(method) if method is not None else out
    if orientation in _TRANSPOSE:
        with contextlib.suppress(Exception):
            img = ImageOps.exif_transpose(img)
    return _rgb(img)


def _reduced(img: Image.Image, factor: int) -> Image.Image:
    """``img`` as RGB reduced by ``factor`` (box average), converted a band of rows at a time: the same
    pixels as converting the whole picture and then reducing it, without the full-size RGB copy."""
    if img.mode == "RGB":
        return img.reduce(factor)
    extrema = img.getextrema() if img.mode in _DEEP_MODES else None
    w, h = img.size
    out = Image.new("RGB", (-(-w // factor), -(-h // factor)))
    rows = factor * max(1, _BAND_ROWS // factor)
    for top in range(0, h, rows):
        band = _rgb(img.crop((0, top, w, min(h, top + rows))), extrema)  # type: ignore[arg-type]
        out.paste(band.reduce(factor), (0, top // factor))
    return out


def _rgb(img: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Any mode as 8-bit RGB (alpha composited on white). ``extrema``: the whole picture's (min, max),
    when ``img`` is one band of a 16-bit or float picture."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(extrema[1]) if extrema is not None else (float(arr.max()) if arr.size else 0.0)
        scale = 255.0 / 65535.0 if hi > 255 else 1.0
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if extrema is not None:
            lo, hi = float(extrema[0]), float(extrema[1])
        else:
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
