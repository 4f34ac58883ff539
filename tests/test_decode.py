from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageDecodeError, ImageTooLargeError, UnsupportedImageError
from lookalike.imaging import DecodeLimits, load_image, open_image_bytes

from .conftest import PHOTOS, PRODUCTS_DIR

REAL = PRODUCTS_DIR / "images" / "13466.jpg"


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_real_jpeg_decodes_to_rgb():
    img = load_image(REAL)
    assert img.mode == "RGB" and img.size == (224, 224)


def test_empty_file_is_refused():
    with pytest.raises(ImageDecodeError, match="empty"):
        open_image_bytes(b"")


def test_truncated_jpeg_is_refused():
    data = REAL.read_bytes()
    with pytest.raises(ImageDecodeError):
        open_image_bytes(data[: len(data) // 2])


def test_text_named_jpg_is_refused(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture")
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        load_image(p)


def test_svg_and_html_are_unsupported():
    with pytest.raises(UnsupportedImageError, match="SVG"):
        open_image_bytes(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    with pytest.raises(UnsupportedImageError, match="HTML"):
        open_image_bytes(b"<!DOCTYPE html><html><body>hi</body></html>")


def test_decompression_bomb_is_refused_before_decoding():
    # a tiny PNG that declares 20000 x 20000 pixels
    img = Image.new("L", (20000, 20000))
    data = _encode(img, "PNG", optimize=True)
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLargeError, match="pixel"):
        open_image_bytes(data, DecodeLimits(max_pixels=10_000_000))


def test_byte_cap(tmp_path):
    with pytest.raises(ImageTooLargeError, match="byte"):
        load_image(REAL, DecodeLimits(max_bytes=1000))


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(ImageDecodeError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_exif_orientation_is_applied():
    base = Image.new("RGB", (40, 20), (255, 0, 0))
    base.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    data = _encode(base, "JPEG", exif=exif, quality=95)
    img = open_image_bytes(data)
    assert img.size == (20, 40)
    top = np.asarray(img)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the blue half is now on top


def test_cmyk_palette_16bit_and_alpha_become_rgb():
    cmyk = _encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG")
    assert open_image_bytes(cmyk).getpixel((4, 4))[0] > 200  # red

    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.info["transparency"] = 0
    out = open_image_bytes(_encode(pal, "PNG"))
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (255, 255, 255)  # transparent -> white

    deep = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    assert open_image_bytes(_encode(deep, "PNG")).getpixel((0, 0)) == (255, 255, 255)

    rgba = Image.new("RGBA", (8, 8), (0, 0, 255, 0))
    assert open_image_bytes(_encode(rgba, "PNG")).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    px = open_image_bytes(buf.getvalue()).getpixel((4, 4))
    assert px[0] > 200 and px[1] < 50


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_decode(fmt):
    img = load_image(PHOTOS / "shoes.jpg")
    out = open_image_bytes(_encode(img, fmt))
    assert out.mode == "RGB" and out.size == img.size


def test_draft_decodes_big_jpegs_smaller():
    big = Image.new("RGB", (2000, 1600), (10, 20, 30))
    out = open_image_bytes(_encode(big, "JPEG"), draft_size=224)
    assert 224 <= min(out.size) < 1600
