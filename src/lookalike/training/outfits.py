"""Outfits for the garment detector: several catalogue cut-outs arranged in one picture, with their boxes.

:func:`outfit` draws one picture from pools of cut-outs by detector class (:data:`lookalike.garment.kinds.CLASSES`)
in one of four layouts: an outfit laid out as worn (hat, top / outerwear / dress, bottom, footwear from top to
bottom, a bag or an accessory beside), a scatter of two to four things, one garment filling a phone photo, and a
collage of pictures side by side. Backgrounds are the procedural home scenes of
:mod:`lookalike.training.composite`, plain white (catalogue pages, screenshots) or photographs (the empty part of
shoppers' photos: :func:`photo_backgrounds`). Each box is where its piece is still visible once the pieces
pasted after it cover it; a piece mostly hidden is left out. The picture is squashed to a square of ``size``
(boxes are fractions, so they do not change), then lit, tinted, blurred and JPEG-damaged as a phone would.
Every function takes an explicit ``numpy.random.Generator``: the same seed gives the same pictures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from lookalike.garment.kinds import CLASSES
from lookalike.training.composite import Cutout, _photometric, scene

__all__ = ["LAYOUTS", "Outfit", "Pools", "outfit", "photo_backgrounds"]

Rng = np.random.Generator
Pools = dict[int, list[Cutout]]  # detector class index -> cut-outs of that class
LAYOUTS = ("outfit", "scatter", "single", "collage")
_C = {name: i for i, name in enumerate(CLASSES)}
_MIN_VISIBLE = 0.4  # a piece less visible than this (share of its own pixels) is not labelled: it is clutter


@dataclass
class Outfit:
    """A picture (RGB, ``size`` x ``size``), its boxes (n, 4) float32 fractions x0, y0, x1, y1, their classes
    (n,) int64, the layout it was drawn in and the cut-out of each box (``sources``)."""

    image: Image.Image
    boxes: np.ndarray
    classes: np.ndarray
    layout: str
    sources: tuple[Cutout, ...] = ()


@dataclass
class _Placed:
    cut: Cutout
    cls: int
    image: Image.Image
    mask: Image.Image
    x: int
    y: int


def _pick(pools: Pools, cls: int, rng: Rng) -> Cutout | None:
    pool = pools.get(cls) or []
    return pool[int(rng.integers(len(pool)))] if pool else None


def _sized(
    cut: Cutout, rng: Rng, height: float, max_width: float, angle: float = 10.0
) -> tuple[Image.Image, Image.Image]:
    """``cut`` scaled to about ``height`` pixels high (no wider than ``max_width``), aspect jittered (the
    catalogue squashed 3:4 shots to squares), maybe mirrored and slightly turned."""
    w, h = cut.image.size
    aspect = rng.uniform(0.8, 1.15)
    scale = height / h
    if w * aspect * scale > max_width:
        scale = max_width / (w * aspect)
    nw, nh = max(2, int(w * aspect * scale)), max(2, int(h * scale))
    img = cut.image.resize((nw, nh), Image.Resampling.BILINEAR)
    m = cut.mask.resize((nw, nh), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img, m = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), m.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle and rng.random() < 0.7:
        a = rng.uniform(-angle, angle)
        img = img.rotate(a, Image.Resampling.BILINEAR, expand=True)
        m = m.rotate(a, Image.Resampling.BILINEAR, expand=True)
    return img, m


def _place(cut: Cutout, cls: int, sized: tuple[Image.Image, Image.Image], cx: float, cy: float) -> _Placed:
    img, m = sized
    return _Placed(cut, cls, img, m, int(cx - img.width / 2), int(cy - img.height / 2))


def _outfit_layout(pools: Pools, rng: Rng, w: int, h: int) -> list[_Placed]:
    """Hat, upper garment, bottom, footwear down a column; a bag, a hat or an accessory beside it."""
    dress = rng.random() < 0.2 and pools.get(_C["dress"])
    column: list[tuple[int, float]] = []  # (class, share of the height)
    if rng.random() < 0.15:
        column.append((_C["hat"], rng.uniform(0.1, 0.16)))
    if dress:
        column.append((_C["dress"], rng.uniform(0.45, 0.62)))
    else:
        column.append((_C["outerwear"] if rng.random() < 0.3 else _C["top"], rng.uniform(0.27, 0.38)))
        column.append((_C["bottom"], rng.uniform(0.3, 0.42)))
    if rng.random() < 0.85:
        column.append((_C["footwear"], rng.uniform(0.11, 0.18)))
    side = [c for c, p in ((_C["bag"], 0.45), (_C["outerwear"], 0.12), (_C["hat"], 0.12), (_C["other"], 0.3))
            if rng.random() < p]  # fmt: skip
    gaps = rng.uniform(-0.04, 0.05, len(column))
    total = sum(s for _, s in column) + float(gaps[1:].sum()) if len(column) > 1 else column[0][1]
    fit = min(1.0, 0.94 / total)
    cx = w * (rng.uniform(0.3, 0.7) if side else rng.uniform(0.4, 0.6))
    y = h * (1 - total * fit) / 2 * rng.uniform(0.3, 1.7)
    placed = []
    for i, (cls, share) in enumerate(column):
        cut = _pick(pools, cls, rng)
        if i:
            y += gaps[i] * h * fit
        hh = share * h * fit
        if cut is not None:
            sized = _sized(cut, rng, hh, 0.6 * w, angle=6)
            placed.append(_place(cut, cls, sized, cx + rng.normal(0, 0.02) * w, y + hh / 2))
        y += hh
    # the bottom goes under the upper garment's hem: paste it first
    placed.sort(key=lambda p: 0 if p.cls == _C["bottom"] else 1)
    for cls in side:
        cut = _pick(pools, cls, rng)
        if cut is None:
            continue
        hh = h * (rng.uniform(0.15, 0.28) if cls != _C["other"] else rng.uniform(0.1, 0.2))
        sized = _sized(cut, rng, hh, 0.35 * w, angle=20)
        left = cx < w / 2
        sx = cx + (1 if left else -1) * w * rng.uniform(0.22, 0.38)
        placed.append(_place(cut, cls, sized, sx, h * rng.uniform(0.2, 0.85)))
    return placed


def _scatter_layout(pools: Pools, rng: Rng, w: int, h: int) -> list[_Placed]:
    """Two to four things, each somewhere else, little overlap."""
    kinds = [c for c in range(len(CLASSES)) if pools.get(c)]
    weights = np.array([0.5 if CLASSES[c] == "other" else 1.0 for c in kinds])
    placed: list[_Placed] = []
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(2, 5))):
        cls = int(rng.choice(kinds, p=weights / weights.sum()))
        cut = _pick(pools, cls, rng)
        if cut is None:
            continue
        sized = _sized(cut, rng, min(w, h) * rng.uniform(0.28, 0.55), 0.55 * w, angle=25)
        for _try in range(20):
            cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
            b = (cx - sized[0].width / 2, cy - sized[0].height / 2, cx + sized[0].width / 2, cy + sized[0].height / 2)
            if all(_overlap(b, o) < 0.15 for o in boxes):
                boxes.append(b)
                placed.append(_place(cut, cls, sized, cx, cy))
                break
    return placed


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1e-9, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def _single_layout(pools: Pools, rng: Rng, w: int, h: int) -> list[_Placed]:
    """One garment framed as a phone photo frames it: large, often running off an edge."""
    garments = [c for c in (_C["top"], _C["bottom"], _C["dress"], _C["outerwear"], _C["footwear"], _C["bag"])
                if pools.get(c)]  # fmt: skip
    cls = int(rng.choice(garments))
    cut = _pick(pools, cls, rng)
    assert cut is not None
    sized = _sized(cut, rng, h * rng.uniform(0.55, 1.15), w * 1.2, angle=30)
    return [_place(cut, cls, sized, w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65))]


def _collage_layout(pools: Pools, rng: Rng, w: int, h: int) -> list[_Placed]:
    """Pictures side by side (or one above the other), each filling its cell."""
    kinds = [c for c in range(len(CLASSES)) if pools.get(c)]
    n = 2 if rng.random() < 0.75 else 3
    across = w >= h
    placed = []
    for i in range(n):
        cls = int(rng.choice(kinds))
        cut = _pick(pools, cls, rng)
        if cut is None:
            continue
        cw, ch = (w / n, h) if across else (w, h / n)
        fill = rng.uniform(0.6, 0.95)
        sized = _sized(cut, rng, ch * fill, cw * fill, angle=0)
        cx, cy = ((i + 0.5) * cw, h / 2) if across else (w / 2, (i + 0.5) * ch)
        placed.append(_place(cut, cls, sized, cx, cy))
    return placed


def _background(rng: Rng, w: int, h: int, kind: str, photos: Sequence[Image.Image] | None) -> np.ndarray:
    if kind == "photo" and photos:
        photo = photos[int(rng.integers(len(photos)))]
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.asarray(photo.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    if kind == "white":
        tone = rng.uniform(225, 255) if rng.random() < 0.6 else 255.0
        base = np.full((h, w, 3), tone, np.float32) + rng.normal(0, 3, 3).astype(np.float32)
        ramp = np.linspace(0, rng.uniform(-15, 15), h, dtype=np.float32)[:, None, None]
        return np.clip(base + ramp, 0, 255)
    side = max(w, h)
    return scene(rng, side)[:h, :w]


def outfit(
    pools: Pools,
    rng: Rng,
    size: int = 192,
    photos: Sequence[Image.Image] | None = None,
    layout: str | None = None,
    degrade: bool = True,
) -> Outfit:
    """One picture of several cut-outs of ``pools`` (``layout``: one of :data:`LAYOUTS`, default drawn); without
    ``degrade``, no phone damage (light ramp, tint, blur, noise, JPEG): a clean picture, as the evaluation's."""
    layout = layout or str(rng.choice(LAYOUTS, p=[0.45, 0.25, 0.15, 0.15]))
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.5)))) if layout != "collage" else rng.uniform(1.4, 2.2)
    if layout == "collage" and rng.random() < 0.3:
        aspect = 1 / aspect
    h = max(256, size)  # the pieces are laid out on a canvas this high, then squashed to size x size
    w = max(64, round(h * aspect))
    make: Callable[[Pools, Rng, int, int], list[_Placed]] = {
        "outfit": _outfit_layout, "scatter": _scatter_layout, "single": _single_layout, "collage": _collage_layout,
    }[layout]  # fmt: skip
    placed = make(pools, rng, w, h)
    r = rng.random()
    if layout == "collage":
        bg_kind = "white" if r < 0.7 else "scene"
    else:
        bg_kind = "scene" if r < 0.45 else "white" if r < 0.7 else "photo"
    canvas = _background(rng, w, h, bg_kind, photos)
    owner = np.full((h, w), -1, np.int32)
    full = np.zeros(len(placed), np.int64)
    for i, p in enumerate(placed):
        alpha = Image.new("L", (w, h), 0)
        alpha.paste(p.mask, (p.x, p.y))
        layer = Image.new("RGB", (w, h))
        layer.paste(p.image, (p.x, p.y))
        a = np.asarray(alpha, dtype=np.float32) / 255.0
        if bg_kind != "white" or rng.random() < 0.3:  # a soft shadow
            dx, dy = (rng.uniform(-0.03, 0.03, 2) * h).astype(int)
            shadow = Image.new("L", (w, h), 0)
            shadow.paste(alpha, (int(dx), int(dy)))
            sh = np.asarray(shadow.filter(ImageFilter.GaussianBlur(rng.uniform(0.01, 0.04) * h)), np.float32)
            canvas = canvas * (1 - rng.uniform(0.15, 0.45) * sh[..., None] / 255.0)
        canvas = np.asarray(layer, np.float32) * a[..., None] + canvas * (1 - a[..., None])
        mine = a >= 0.5
        full[i] = int(mine.sum())  # inside the canvas: a piece running off the edge is labelled by what shows
        owner[mine] = i
    boxes, classes, sources = [], [], []
    for i, p in enumerate(placed):
        ys, xs = np.nonzero(owner == i)
        if len(xs) == 0 or len(xs) < _MIN_VISIBLE * max(1, full[i]):
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        if min((x1 - x0) / w * size, (y1 - y0) / h * size) < 6:
            continue
        boxes.append((x0 / w, y0 / h, x1 / w, y1 / h))
        classes.append(p.cls)
        sources.append(p.cut)
    square = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    picture = _photometric(square, rng) if degrade else square
    return Outfit(
        picture,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(classes, np.int64),
        layout,
        tuple(sources),
    )


def photo_backgrounds(
    photos: Sequence[Image.Image], garment_mask: Callable[[Image.Image], np.ndarray], min_share: float = 0.2
) -> list[Image.Image]:
    """The empty part of each photo: the largest band (left, right, top or bottom) outside the box of its
    garment (``garment_mask``: probabilities at any resolution), when it holds at least ``min_share`` of the
    photo. Floors, beds and walls as phones see them, without the garment."""
    out = []
    for photo in photos:
        prob = garment_mask(photo)
        ys, xs = np.nonzero(prob >= 0.3)
        if len(xs) == 0:
            continue
        gh, gw = prob.shape
        x0, x1 = xs.min() / gw, (xs.max() + 1) / gw
        y0, y1 = ys.min() / gh, (ys.max() + 1) / gh
        bands = [(0.0, 0.0, x0, 1.0), (x1, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, y0), (0.0, y1, 1.0, 1.0)]
        best = max(bands, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        if (best[2] - best[0]) * (best[3] - best[1]) < min_share or min(best[2] - best[0], best[3] - best[1]) < 0.1:
            continue
        W, H = photo.size
        box = (math.floor(best[0] * W), math.floor(best[1] * H), math.ceil(best[2] * W), math.ceil(best[3] * H))
        out.append(photo.crop(box).convert("RGB"))
    return out
