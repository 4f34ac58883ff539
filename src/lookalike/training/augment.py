"""Augmentations with Pillow and numpy: catalogue shots made to look like shoppers' photos.

:func:`composite_view` cuts the product out of its white studio background (pixels far from white,
cleaned with a small morphological step, holes filled), undoes the catalogue's squashed aspect a little,
and pastes it, rotated and scaled, onto a procedural background (noise, gradients, stripes, checks,
wood- and fabric-like textures, colour blobs) or a crop of a real photo, with a soft shadow; then
lighting, colour temperature, blur, noise, resolution and JPEG damage. Hue is never rotated: colour is
a label. :func:`catalog_view` and :func:`photo_view` are the milder views of studio and phone pictures.
Every function takes an explicit ``numpy.random.Generator`` so a seed reproduces the views.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "SIZE",
    "background",
    "catalog_view",
    "composite_view",
    "foreground_mask",
    "photo_view",
    "photometric",
]

SIZE = 224
Rng = np.random.Generator

# Typical surfaces under a garment photographed at home: floors, beds, sofas, walls, tables.
_SURFACES = np.array(
    [
        (200, 190, 175),
        (160, 130, 100),
        (120, 90, 60),
        (90, 70, 50),
        (210, 210, 205),
        (150, 150, 150),
        (90, 90, 95),
        (60, 60, 65),
        (230, 225, 215),
        (180, 160, 140),
        (110, 120, 130),
        (170, 175, 160),
        (140, 100, 80),
        (200, 180, 150),
        (40, 40, 45),
        (225, 215, 200),
    ],
    dtype=np.float32,
)


def _colour(rng: Rng) -> np.ndarray:
    """A background colour: mostly household surfaces, sometimes anything."""
    if rng.random() < 0.7:
        return np.clip(_SURFACES[rng.integers(len(_SURFACES))] + rng.normal(0, 15, 3), 0, 255)
    return rng.uniform(0, 255, 3)


def foreground_mask(img: Image.Image, threshold: int = 22) -> Image.Image:
    """The product's mask ('L', 0/255) in a white-background catalogue image.

    A pixel is foreground when it is more than ``threshold`` away from white in some channel. The mask
    is opened and closed, and background regions that cannot be reached from the border (along rows,
    columns and a few growing steps) are filled.
    """
    arr = np.asarray(img.convert("RGB"), dtype=np.int16)
    fg = (255 - arr.min(axis=2)) > threshold
    mask = Image.fromarray((fg * 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))  # open
    mask = mask.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))  # close
    bg = np.asarray(mask) == 0
    # background reachable from the border along a row or column, then grown inside the background
    reach = (
        np.logical_and.accumulate(bg, axis=1)
        | np.logical_and.accumulate(bg[:, ::-1], axis=1)[:, ::-1]
        | np.logical_and.accumulate(bg, axis=0)
        | np.logical_and.accumulate(bg[::-1], axis=0)[::-1]
    )
    for _ in range(3):
        grown = Image.fromarray((reach * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(5))
        reach = (np.asarray(grown) > 0) & bg
    filled = ~reach
    return Image.fromarray((filled * 255).astype(np.uint8))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy / size, xx / size


def _smooth_noise(rng: Rng, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a random ``cells`` x ``cells`` grid upsampled bicubically."""
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def background(rng: Rng, size: int = SIZE, photos: list[Image.Image] | None = None) -> np.ndarray:
    """A random background, (size, size, 3) float32 in 0..255."""
    kinds = ["solid", "gradient", "stripes", "checks", "wood", "fabric", "blobs"]
    if photos:
        kinds += ["photo", "photo"]
    kind = kinds[rng.integers(len(kinds))]
    yy, xx = _grid(size)
    a, b = _colour(rng), _colour(rng)
    if kind == "photo" and photos:
        src = photos[rng.integers(len(photos))]
        side = int(min(src.size) * rng.uniform(0.3, 0.8))
        x0 = rng.integers(0, src.width - side + 1)
        y0 = rng.integers(0, src.height - side + 1)
        crop = src.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
        out = np.asarray(crop, dtype=np.float32)
    elif kind == "solid":
        out = np.broadcast_to(a, (size, size, 3)).copy()
    elif kind == "gradient":
        t = np.clip(np.cos(rng.uniform(0, np.pi)) * xx + np.sin(rng.uniform(0, np.pi)) * yy, 0, 1)
        out = a * (1 - t[..., None]) + b * t[..., None]
    elif kind in ("stripes", "checks"):
        period = rng.uniform(0.03, 0.2)
        angle = rng.uniform(0, np.pi)
        u = np.cos(angle) * xx + np.sin(angle) * yy
        pattern = (np.floor(u / period) % 2).astype(np.float32)
        if kind == "checks":
            v = -np.sin(angle) * xx + np.cos(angle) * yy
            pattern = np.abs(pattern - (np.floor(v / period) % 2))
        out = a * (1 - pattern[..., None]) + b * pattern[..., None]
    elif kind == "wood":
        warp = _smooth_noise(rng, size, 4) * rng.uniform(2, 6)
        rings = 0.5 + 0.5 * np.sin((yy * rng.uniform(10, 40) + warp) * 2 * np.pi)
        base = _SURFACES[rng.integers(1, 4)]
        out = base * (0.75 + 0.35 * rings[..., None])
    elif kind == "fabric":
        f = rng.uniform(25, 70)
        weave = 0.5 + 0.25 * (np.sin(xx * f * 2 * np.pi) + np.sin(yy * f * 2 * np.pi))
        out = a * (0.8 + 0.3 * weave[..., None]) + rng.normal(0, 6, (size, size, 1))
    else:  # blobs
        canvas = Image.fromarray(np.broadcast_to(a, (size, size, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(3, 12)):
            cx, cy, r = [*rng.uniform(0, size, 2).tolist(), rng.uniform(10, size / 2.5)]
            fill = tuple(int(c) for c in _colour(rng))
            draw.ellipse((cx - r, cy - r * rng.uniform(0.4, 1.6), cx + r, cy + r), fill=fill)
        out = np.asarray(canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0, 4))), dtype=np.float32)
    shade = 0.85 + 0.3 * _smooth_noise(rng, size, 3)[..., None]  # uneven light
    out = out * shade + rng.normal(0, rng.uniform(0, 8), (size, size, 1))
    return np.clip(out, 0, 255).astype(np.float32)


def photometric(img: Image.Image, rng: Rng, strength: float = 1.0) -> Image.Image:
    """Lighting, colour temperature, saturation, blur, sensor noise, resolution and JPEG damage.

    Hue is never rotated and the colour shifts stay small (colour is a label).
    """
    arr = np.asarray(img, dtype=np.float32)
    s = strength
    gain = rng.uniform(1 - 0.25 * s, 1 + 0.15 * s)
    contrast = rng.uniform(1 - 0.2 * s, 1 + 0.1 * s)
    temp = rng.uniform(-0.07, 0.07) * s  # warm (+) or cool (-) light
    sat = rng.uniform(1 - 0.2 * s, 1 + 0.1 * s)
    mean = arr.mean()
    arr = (arr - mean) * contrast + mean
    arr = arr * gain * np.array([1 + temp, 1.0, 1 - temp], dtype=np.float32)
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + (arr - grey) * sat
    if rng.random() < 0.5 * s:  # light falling off towards one side
        yy, xx = _grid(arr.shape[0])
        ang = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)
        arr = arr * (1 + rng.uniform(0.1, 0.35) * s * ramp)[..., None]
    if rng.random() < 0.5:
        arr = arr + rng.normal(0, rng.uniform(1, 6) * s, (*arr.shape[:2], 1))
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5 * s:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.4)))
    if rng.random() < 0.4 * s:
        small = int(SIZE * rng.uniform(0.4, 0.8))
        out = out.resize((small, small), Image.Resampling.BILINEAR).resize(out.size, Image.Resampling.BILINEAR)
    if rng.random() < 0.7:
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=int(rng.integers(35, 92)))
        buf.seek(0)
        out = Image.open(buf).convert("RGB")
    return out


def _fit(img: Image.Image, size: int = SIZE) -> Image.Image:
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BILINEAR)


def composite_view(
    img: Image.Image, rng: Rng, photos: list[Image.Image] | None = None, size: int = SIZE
) -> Image.Image:
    """A catalogue product on a random background, as if photographed at home."""
    img = _fit(img.convert("RGB"), size)
    mask = foreground_mask(img)
    box = mask.getbbox()
    if box is None or np.asarray(mask).mean() < 0.05 * 255:  # white on white: no reliable cut-out
        return photometric(img, rng)
    # catalogue images are 3:4 originals squashed to a square: narrow them back a little
    prod, pmask = img.crop(box), mask.crop(box)
    w, h = prod.size
    w = max(1, int(w * rng.uniform(0.72, 1.0)))
    angle = rng.uniform(-18, 18) if rng.random() < 0.7 else 0.0
    scale = rng.uniform(0.55, 1.0) * size / max(w, h)
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    prod = prod.resize((nw, nh), Image.Resampling.BILINEAR)
    pmask = pmask.resize((nw, nh), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        prod, pmask = prod.transpose(Image.Transpose.FLIP_LEFT_RIGHT), pmask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle:
        prod = prod.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        pmask = pmask.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    bg = background(rng, size, photos)
    x0 = int(rng.uniform(min(0, size - prod.width), max(0, size - prod.width) + 1))
    y0 = int(rng.uniform(min(0, size - prod.height), max(0, size - prod.height) + 1))
    layer = Image.new("RGB", (size, size))
    alpha = Image.new("L", (size, size), 0)
    layer.paste(prod, (x0, y0))
    alpha.paste(pmask, (x0, y0))
    alpha = alpha.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    a = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
    if rng.random() < 0.6:  # soft shadow under the product
        dx, dy = rng.integers(-8, 9, 2)
        shadow = Image.new("L", (size, size), 0)
        shadow.paste(alpha, (int(dx), int(dy)))
        sh = np.asarray(shadow.filter(ImageFilter.GaussianBlur(rng.uniform(3, 9))), np.float32)[..., None]
        bg = bg * (1 - rng.uniform(0.2, 0.5) * sh / 255.0)
    out = np.asarray(layer, dtype=np.float32) * a + bg * (1 - a)
    return photometric(Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), rng)


def catalog_view(img: Image.Image, rng: Rng, size: int = SIZE) -> Image.Image:
    """A mild view of a studio shot: random crop of 75-100 %, flip, slight lighting change."""
    img = _fit(img.convert("RGB"), size)
    side = int(size * np.sqrt(rng.uniform(0.75, 1.0)))
    x0, y0 = rng.integers(0, size - side + 1, 2)
    out = img.crop((int(x0), int(y0), int(x0) + side, int(y0) + side)).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return photometric(out, rng, strength=0.35)


def photo_view(img: Image.Image, rng: Rng, size: int = SIZE) -> Image.Image:
    """A view of a phone photo: a square crop near the centre (60-100 % of the short side), flip,
    small rotation, mild photometric changes."""
    img = img.convert("RGB")
    w, h = img.size
    side = int(min(w, h) * rng.uniform(0.6, 1.0))
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    cy = h / 2 + rng.uniform(-0.12, 0.12) * h
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side / 2, 0, h - side))
    out = img.crop((x0, y0, x0 + side, y0 + side))
    if rng.random() < 0.5:
        out = out.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR)
    out = out.resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return photometric(out, rng, strength=0.5)
