"""Catalogue products pasted onto procedural phone-photo scenes, with their exact masks (numpy + Pillow).

:func:`scene` draws a home surface: wood planks, tiles, a bed or blanket (gradients, stripes, checks,
knit-like noise, folds), a carpet, a wall; sometimes a hanger (rod and hook) and clutter (shapes and
other catalogue products at low opacity, which stay background). :func:`composite` cuts a product out
with its catalogue mask, jitters its aspect, scale, rotation, flip and position, casts a soft shadow,
and returns the picture after lighting gradients, white-balance casts, blur, noise and JPEG damage,
with the mask of where the product landed. Every function takes an explicit ``numpy.random.Generator``:
the same seed gives the same pictures. Never fed with the evaluation photos (clothing-photos-dev).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lookalike.garment.mask import erode

__all__ = ["Cutout", "composite", "cutout", "scene"]

Rng = np.random.Generator

_SURFACES = np.array(
    [
        (200, 190, 175), (160, 130, 100), (120, 90, 60), (90, 70, 50), (210, 210, 205), (150, 150, 150),
        (90, 90, 95), (60, 60, 65), (235, 232, 225), (180, 160, 140), (110, 120, 130), (170, 175, 160),
        (140, 100, 80), (200, 180, 150), (40, 40, 45), (225, 215, 200), (245, 245, 242), (120, 135, 160),
    ],
    dtype=np.float32,
)  # fmt: skip


class Cutout:
    """A product cropped to its mask's bounding box: RGB picture and 'L' mask of the same size."""

    def __init__(self, image: Image.Image, mask: Image.Image) -> None:
        self.image = image
        self.mask = mask


def cutout(image: Image.Image, mask: np.ndarray) -> Cutout | None:
    """The product of a catalogue picture and its mask (bool, same size), or None when the mask is empty."""
    m = Image.fromarray(erode(mask).astype(np.uint8) * 255)  # no light rim of studio background
    box = m.getbbox()
    if box is None:
        return None
    return Cutout(image.convert("RGB").crop(box), m.crop(box))


def _colour(rng: Rng) -> np.ndarray:
    r = rng.random()
    if r < 0.2:  # white and cream sheets, light walls and floors: light but not a garment
        return np.clip(rng.uniform(205, 250) + rng.normal(0, 6, 3), 0, 255)
    if r < 0.8:
        return np.clip(_SURFACES[rng.integers(len(_SURFACES))] + rng.normal(0, 15, 3), 0, 255)
    return rng.uniform(0, 255, 3)


def _noise(rng: Rng, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]."""
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy / size, xx / size


def _rotated(rng: Rng, size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = _grid(size)
    a = rng.uniform(0, np.pi)
    return np.cos(a) * xx + np.sin(a) * yy, -np.sin(a) * xx + np.cos(a) * yy


def _surface(kind: str, rng: Rng, size: int) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    u, v = _rotated(rng, size)
    if kind == "wood":  # planks: bands of slightly different tone, grain, dark joints
        width = rng.uniform(0.08, 0.3)
        plank = np.floor(u / width)
        tone = (np.sin(plank * 12.9898) * 43758.5453) % 1.0
        grain = 0.5 + 0.5 * np.sin((v * rng.uniform(20, 60) + _noise(rng, size, 5) * 4) * 2 * np.pi)
        base = _SURFACES[rng.choice([1, 2, 3, 12, 13])] + rng.normal(0, 12, 3)
        out = base * (0.8 + 0.2 * tone[..., None] + 0.12 * grain[..., None])
        joint = (u / width) % 1.0 < rng.uniform(0.01, 0.04)
        out[joint] *= 0.6
    elif kind == "tiles":
        period = rng.uniform(0.1, 0.35)
        gu, gv = (u / period) % 1.0, (v / period) % 1.0
        grout = (gu < 0.04) | (gv < 0.04)
        out = np.broadcast_to(a, (size, size, 3)).copy() * (0.92 + 0.12 * _noise(rng, size, 8)[..., None])
        if rng.random() < 0.3:  # checkerboard tiles
            odd = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(bool)
            out[odd] = out[odd] * 0.5 + b * 0.5
        out[grout] = b * 0.4 + 80
    elif kind == "bed":  # sheets and blankets: soft gradient or pattern, knit, folds
        pattern = rng.choice(["plain", "stripes", "checks", "knit"])
        period = rng.uniform(0.03, 0.2)
        if pattern == "stripes":
            t = (np.floor(u / period) % 2).astype(np.float32)
        elif pattern == "checks":
            t = np.abs((np.floor(u / period) % 2) - (np.floor(v / period) % 2)).astype(np.float32)
        elif pattern == "knit":
            f = rng.uniform(30, 70)
            t = 0.5 + 0.25 * (np.sin(u * f * 2 * np.pi) + np.abs(np.sin(v * f * np.pi)))
        else:
            t = np.clip(u, 0, 1)
        mix = rng.uniform(0.2, 1.0)
        out = a * (1 - mix * t[..., None]) + b * mix * t[..., None]
        folds = _noise(rng, size, int(rng.integers(3, 7)))
        out = out * (0.75 + 0.4 * folds[..., None])
    elif kind == "carpet":
        fine = rng.random((size, size)).astype(np.float32)
        out = a * (0.8 + 0.25 * _noise(rng, size, 16)[..., None] + 0.15 * fine[..., None])
        if rng.random() < 0.3:
            blobs = _noise(rng, size, 5)[..., None] > 0.6
            out = np.where(blobs, b * (0.85 + 0.2 * fine[..., None]), out)
    else:  # wall: near-uniform paint, a gradient of light
        t = np.clip(u, 0, 1)[..., None]
        out = a * (1 - 0.3 * t) + a * 0.3 * t * rng.uniform(0.6, 1.2)
    return out.astype(np.float32)


def _hanger(canvas: Image.Image, rng: Rng, top: tuple[float, float], width: float) -> None:
    """A coat hanger whose shoulders end at ``top`` (x, y) with the given width; hook above."""
    draw = ImageDraw.Draw(canvas)
    cx, cy = top
    colour = tuple(int(c) for c in (_colour(rng) if rng.random() < 0.5 else rng.uniform(20, 240, 3)))
    thick = max(1, int(canvas.width * rng.uniform(0.008, 0.025)))
    hook_y = cy - width * rng.uniform(0.2, 0.35)
    draw.line([(cx - width / 2, cy), (cx, hook_y), (cx + width / 2, cy)], fill=colour, width=thick)
    r = width * 0.08
    draw.arc((cx - r, hook_y - 2 * r, cx + r, hook_y), 180, 90, fill=colour, width=thick)
    if rng.random() < 0.5:  # the rail it hangs from
        draw.line([(0, hook_y - 2 * r), (canvas.width, hook_y - 2 * r)], fill=colour, width=thick)


def _clutter(canvas: Image.Image, rng: Rng, others: list[Cutout] | None) -> Image.Image:
    """Random shapes and, faintly, other products: part of the background."""
    size = canvas.width
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 5))):
        x, y = rng.uniform(-0.1, 1.1, 2) * size
        w, h = rng.uniform(0.05, 0.4, 2) * size
        fill = tuple(int(c) for c in rng.uniform(0, 255, 3))
        shape = rng.integers(3)
        if shape == 0:
            draw.ellipse((x, y, x + w, y + h), fill=fill)
        elif shape == 1:
            draw.rectangle((x, y, x + w, y + h), fill=fill)
        else:
            draw.line([(x, y), (x + w, y + h)], fill=fill, width=max(1, int(size * rng.uniform(0.005, 0.03))))
    if others and rng.random() < 0.5:
        other = others[rng.integers(len(others))]
        scale = rng.uniform(0.3, 0.7) * size / max(other.image.size)
        sz = (max(1, int(other.image.width * scale)), max(1, int(other.image.height * scale)))
        img, m = other.image.resize(sz), other.mask.resize(sz)
        m = Image.fromarray((np.asarray(m, np.float32) * rng.uniform(0.2, 0.45)).astype(np.uint8))
        canvas.paste(img, (int(rng.uniform(-0.3, 0.9) * size), int(rng.uniform(-0.3, 0.9) * size)), m)
    return canvas


def scene(rng: Rng, size: int) -> np.ndarray:
    """A home background, (size, size, 3) float32 in 0..255."""
    kind = ["wood", "tiles", "bed", "bed", "carpet", "wall"][int(rng.integers(6))]
    out = _surface(kind, rng, size)
    out = out * (0.85 + 0.3 * _noise(rng, size, 3)[..., None])
    return np.clip(out, 0, 255)


def _photometric(img: Image.Image, rng: Rng) -> Image.Image:
    """Light falling off, exposure, white balance (warm or cool), blur, sensor noise, JPEG."""
    arr = np.asarray(img, dtype=np.float32)
    size = arr.shape[0]
    yy, xx = _grid(size)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)
    arr = arr * (1 + rng.uniform(0, 0.5) * ramp)[..., None] * rng.uniform(0.7, 1.2)
    temp = rng.uniform(-0.12, 0.12)
    arr = arr * np.array([1 + temp, 1 + rng.uniform(-0.03, 0.03), 1 - temp], dtype=np.float32)
    mean = arr.mean()
    arr = (arr - mean) * rng.uniform(0.75, 1.15) + mean
    arr = arr + rng.normal(0, rng.uniform(0, 7), (size, size, 1))
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * size / 128))
    if rng.random() < 0.8:
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=int(rng.integers(30, 92)))
        buf.seek(0)
        out = Image.open(buf).convert("RGB")
    return out


def composite(
    product: Cutout, rng: Rng, size: int = 128, others: list[Cutout] | None = None
) -> tuple[Image.Image, np.ndarray]:
    """``product`` photographed at home: (RGB picture size x size, bool mask of the product in it)."""
    w, h = product.image.size
    w = max(1, int(w * rng.uniform(0.7, 1.15)))  # the catalogue squashed 3:4 shots to squares
    # phone photos are framed on the garment: mostly large, often running off the edges
    scale = (rng.uniform(0.75, 1.35) if rng.random() < 0.6 else rng.uniform(0.35, 0.8)) * size / max(w, h)
    nw, nh = max(2, int(w * scale)), max(2, int(h * scale))
    img = product.image.resize((nw, nh), Image.Resampling.BILINEAR)
    m = product.mask.resize((nw, nh), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img, m = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), m.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = rng.uniform(-25, 25) if rng.random() < 0.8 else rng.uniform(-180, 180)
    img = img.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    m = m.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    # centre near the middle; a large product runs off the edges
    x0 = int(rng.uniform(0.25, 0.75) * size - img.width / 2)
    y0 = int(rng.uniform(0.25, 0.75) * size - img.height / 2)
    canvas = Image.fromarray(scene(rng, size).astype(np.uint8))
    if rng.random() < 0.2:
        _hanger(canvas, rng, (x0 + img.width / 2, y0 + img.height * 0.05), img.width * rng.uniform(0.5, 0.9))
    canvas = _clutter(canvas, rng, others)
    alpha = Image.new("L", (size, size), 0)
    alpha.paste(m, (x0, y0))
    layer = Image.new("RGB", (size, size))
    layer.paste(img, (x0, y0))
    bg = np.asarray(canvas, dtype=np.float32)
    if rng.random() < 0.7:  # soft shadow under the product
        dx, dy = (rng.uniform(-0.06, 0.06, 2) * size).astype(int)
        shadow = Image.new("L", (size, size), 0)
        shadow.paste(alpha, (int(dx), int(dy)))
        sh = np.asarray(shadow.filter(ImageFilter.GaussianBlur(rng.uniform(0.02, 0.07) * size)), np.float32)
        bg = bg * (1 - rng.uniform(0.2, 0.55) * sh[..., None] / 255.0)
    a = np.asarray(alpha.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.8))), dtype=np.float32) / 255.0
    out = np.asarray(layer, dtype=np.float32) * a[..., None] + bg * (1 - a[..., None])
    picture = _photometric(Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), rng)
    return picture, np.asarray(alpha) >= 128
