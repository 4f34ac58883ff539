"""A region of a picture: four fractions of its width and height (origin top left), checked once.

``Region.parse`` takes ``"x0,y0,x1,y1"``, four numbers or a :class:`Region`; every value is a fraction in
0..1 and the box must have an area (``x0 < x1``, ``y0 < y1``). Fractions refer to the picture as shown,
after its EXIF orientation (the decoder applies it first). :meth:`Region.pixels` turns the fractions into a
pixel box of a decoded picture and refuses one under :data:`MIN_SIDE` pixels on a side, and
:meth:`Region.square_pixels` widens it to the square a search embeds;
:func:`draft_side` says how large a JPEG must be decoded for the crop still to fill the model's input.
Pure functions: no model, no catalogue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from lookalike.errors import InvalidQueryError

__all__ = ["MIN_SIDE", "Region", "RegionInput", "draft_side", "parse_region"]

MIN_SIDE = 32  # pixels, on each side of the decoded picture's region
_FORMAT = "a region is four fractions x0,y0,x1,y1 of the picture's width and height (0..1, origin top left)"


@dataclass(frozen=True)
class Region:
    """A box in fractions of a picture's width and height: ``x0 < x1`` and ``y0 < y1``, all in 0..1."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def parse(cls, value: RegionInput) -> Region:
        """``value`` as a region: ``"x0,y0,x1,y1"``, a sequence of four numbers, or a :class:`Region`;
        :class:`~lookalike.errors.InvalidQueryError` saying what is wrong otherwise."""
        if isinstance(value, Region):
            return value
        if isinstance(value, str):
            parts: Sequence[object] = [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
        elif isinstance(value, Sequence):
            parts = value
        else:
            raise InvalidQueryError(f"{_FORMAT}; got {type(value).__name__}")
        if len(parts) != 4:
            raise InvalidQueryError(f"{_FORMAT}; got {len(parts)} value(s)")
        nums = []
        for p in parts:
            try:
                if isinstance(p, bool):
                    raise ValueError
                nums.append(float(p))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidQueryError(f"{_FORMAT}; {p!r} is not a number") from None
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in nums):
            raise InvalidQueryError(f"{_FORMAT}; every value must be between 0 and 1")
        x0, y0, x1, y1 = nums
        if x1 <= x0 or y1 <= y0:
            raise InvalidQueryError(f"{_FORMAT}; it needs x0 < x1 and y0 < y1 (an area), got {value!r}")
        return cls(x0, y0, x1, y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def is_whole(self) -> bool:
        """The whole picture (0, 0, 1, 1)."""
        return self.as_tuple() == (0.0, 0.0, 1.0, 1.0)

    def pixels(self, size: tuple[int, int], min_side: int = MIN_SIDE) -> tuple[int, int, int, int]:
        """The region as a pixel box (left, top, right, bottom) of a picture of ``size`` (width, height),
        rounded to the nearest pixel; :class:`InvalidQueryError` when it is under ``min_side`` pixels on a side."""
        w, h = size
        box = (round(self.x0 * w), round(self.y0 * h), round(self.x1 * w), round(self.y1 * h))
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bw < min_side or bh < min_side:
            raise InvalidQueryError(
                f"the region is {bw} x {bh} pixels of the {w} x {h} picture; "
                f"the minimum is {min_side} pixels on each side"
            )
        return box

    def crop(self, image: Image.Image, min_side: int = MIN_SIDE) -> Image.Image:
        """The region of ``image`` (the image itself for the whole picture)."""
        box = self.pixels(image.size, min_side)
        return image if box == (0, 0, *image.size) else image.crop(box)

    def square_pixels(self, size: tuple[int, int], min_side: int = MIN_SIDE) -> tuple[int, int, int, int]:
        """:meth:`pixels` widened to a square around the region's centre, its side the region's longer side, moved
        back inside the picture where it would cross an edge and cut to the picture's width or height where it is
        longer. A model that looks at a square centre-crops the picture it is given: it sees all of this one."""
        x0, y0, x1, y1 = self.pixels(size, min_side)
        w, h = size
        side = max(x1 - x0, y1 - y0)
        sw, sh = min(side, w), min(side, h)
        left = min(max(0, (x0 + x1 - sw) // 2), w - sw)
        top = min(max(0, (y0 + y1 - sh) // 2), h - sh)
        return (left, top, left + sw, top + sh)

    def square_crop(self, image: Image.Image, min_side: int = MIN_SIDE) -> Image.Image:
        """``image`` cut to :meth:`square_pixels` (the image itself when that is all of it)."""
        box = self.square_pixels(image.size, min_side)
        return image if box == (0, 0, *image.size) else image.crop(box)


RegionInput = Region | str | Sequence[float]


def parse_region(value: RegionInput | None) -> Region | None:
    """:meth:`Region.parse`, passing None through."""
    return None if value is None else Region.parse(value)


def draft_side(model_side: int | None, region: Region) -> int | None:
    """The side a JPEG is decoded at (at least) so that ``region`` of it is still ``model_side`` pixels: the
    model's side over the region's smaller fraction (None: decode as the picture is)."""
    if model_side is None:
        return None
    return math.ceil(model_side / max(1e-6, min(region.width, region.height)))
