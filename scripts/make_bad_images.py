#!/usr/bin/env python3
"""Write the awkward-image corpus in tests/data/bad/ (re-run to regenerate; the output is committed).

Every case is made by code, from a real catalogue photo where a real picture matters, and listed in
``cases.json`` with what lookalike must do with it: ``ok`` (decoded; ``size`` is the RGB size after
EXIF rotation) or an error class name from lookalike.errors.

    python scripts/make_bad_images.py
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "products" / "images" / "17831.jpg"
OUT = ROOT / "tests" / "data" / "bad"


def enc(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG header that declares a huge canvas, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int, photo: bytes) -> bytes:
    """A real JPEG whose SOF0 frame header is rewritten to declare another size."""
    data = bytearray(photo)
    i = data.find(b"\xff\xc0")
    if i < 0:
        raise RuntimeError("no baseline SOF0 marker in the source JPEG")
    struct.pack_into(">HH", data, i + 5, height, width)
    return bytes(data)


def build() -> list[dict[str, object]]:
    photo = Image.open(SOURCE).convert("RGB")
    photo_jpeg = SOURCE.read_bytes()
    rng = np.random.default_rng(20261124)
    cases: list[tuple[str, str, bytes, object]] = []  # name, kind, bytes, expected

    def ok(name: str, kind: str, data: bytes, size: tuple[int, int]) -> None:
        cases.append((name, kind, data, {"outcome": "ok", "size": list(size)}))

    def bad(name: str, kind: str, data: bytes, error: str) -> None:
        cases.append((name, kind, data, {"outcome": error}))

    # --- unreadable -------------------------------------------------------------------------------
    bad("zero-bytes.jpg", "zero bytes", b"", "ImageDecodeError")
    bad("truncated.jpg", "truncated JPEG", photo_jpeg[: len(photo_jpeg) // 2], "ImageDecodeError")
    png = enc(photo, "PNG")
    bad("truncated.png", "truncated PNG", png[: len(png) // 2], "ImageDecodeError")
    bad("random-bytes.jpg", "random bytes", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "ImageDecodeError")
    bad("text.jpg", "a text file named .jpg", b"Product list\nid,title\n1,shirt\n", "ImageDecodeError")
    bad("header-only.jpg", "JPEG start marker then garbage", b"\xff\xd8\xff\xe0" + b"\x00" * 200, "ImageDecodeError")
    bad_crc = bytearray(enc(Image.new("RGB", (16, 16), (10, 200, 30)), "PNG"))
    bad_crc[40] ^= 0xFF  # inside IDAT: the data no longer inflates
    bad("corrupt-idat.png", "PNG with corrupt compressed data", bytes(bad_crc), "ImageDecodeError")
    # --- not images, or not supported -------------------------------------------------------------
    bad("page.jpg", "HTML served as an image", b"<!DOCTYPE html><html><body>Not found</body></html>",
        "UnsupportedImageError")  # fmt: skip
    bad("vector.svg", "SVG", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
        b'height="10"><rect width="10" height="10" fill="red"/></svg>', "UnsupportedImageError")  # fmt: skip
    bad("document.jpg", "PDF named .jpg", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
        "UnsupportedImageError")  # fmt: skip
    # --- too large ----------------------------------------------------------------------------------
    bad("bomb.png", "decompression bomb (PNG declaring 50000x50000)", png_declaring(50000, 50000),
        "ImageTooLargeError")  # fmt: skip
    bad("bomb.jpg", "JPEG header declaring 30000x30000", jpeg_declaring(30000, 30000, photo_jpeg),
        "ImageTooLargeError")  # fmt: skip
    # --- odd but valid ----------------------------------------------------------------------------
    ok("one-pixel.png", "1x1 pixel", enc(Image.new("RGB", (1, 1), (200, 0, 0)), "PNG"), (1, 1))
    ok("very-wide.png", "extreme aspect ratio 2000x3", enc(photo.resize((2000, 3)), "PNG"), (2000, 3))
    ok("very-tall.jpg", "extreme aspect ratio 4x1500", enc(photo.resize((4, 1500)), "JPEG"), (4, 1500))
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok("animated.gif", "animated GIF (first frame used)", buf.getvalue(), photo.size)
    ok("cmyk.jpg", "CMYK JPEG", enc(photo.convert("CMYK"), "JPEG", quality=90), photo.size)
    deep = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    ok("sixteen-bit.png", "16-bit greyscale PNG", enc(deep, "PNG"), photo.size)
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.info["transparency"] = 0
    ok("palette-transparent.png", "palette PNG with transparency", enc(pal, "PNG", transparency=0), photo.size)
    ok("grey.jpg", "greyscale JPEG", enc(photo.convert("L"), "JPEG"), photo.size)
    wide = photo.resize((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    ok("exif-rotated.jpg", "EXIF orientation 6 (rotated 90)", enc(wide, "JPEG", exif=exif), (200, 300))
    ok("progressive.jpg", "progressive JPEG", enc(photo, "JPEG", progressive=True, quality=85), photo.size)
    ok("photo.webp", "WebP", enc(photo, "WEBP", quality=80), photo.size)
    ok("photo.tiff", "TIFF", enc(photo, "TIFF", compression="tiff_lzw"), photo.size)
    ok("photo.bmp", "BMP", enc(photo, "BMP"), photo.size)
    ok("icon.ico", "ICO", enc(photo.resize((64, 64)), "ICO", sizes=[(64, 64)]), (64, 64))
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.new("L", photo.size, 128))
    ok("alpha.png", "RGBA PNG with alpha", enc(rgba, "PNG"), photo.size)
    ok("grey-alpha.png", "greyscale + alpha PNG", enc(photo.convert("LA"), "PNG"), photo.size)
    ok("bilevel.bmp", "1-bit BMP", enc(photo.convert("1"), "BMP"), photo.size)
    ok("png-named.jpg", "PNG with a .jpg name", enc(photo, "PNG"), photo.size)
    ok("float.tiff", "32-bit float TIFF", enc(Image.fromarray(np.asarray(photo.convert("L"), np.float32)), "TIFF"),
       photo.size)  # fmt: skip

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name != "README.md":
            old.unlink()
    listing = []
    for name, kind, data, expected in cases:
        (OUT / name).write_bytes(data)
        listing.append({"file": name, "kind": kind, **expected})  # type: ignore[dict-item]
    (OUT / "cases.json").write_text(json.dumps(listing, indent=1) + "\n")
    return listing


if __name__ == "__main__":
    result = build()
    print(f"{len(result)} cases written to {OUT.relative_to(ROOT)}")
