"""Point at the garment: a region of the query picture, the garments found in a photo, and 'shop the look'.

* :func:`region_picture`: the part of a picture (path, bytes, PIL image or URL) that a
  :class:`~lookalike.catalog.region.Region` points at, widened to a square around its centre where the picture
  allows, decoded once within the catalogue's limits (a JPEG at the size that leaves the region the model's input
  size), after its EXIF orientation. A search with a region searches this crop as a picture: its views (the crop
  and its mirror image), its colour, words, filters and every ranking stage as usual.
* :func:`garments`: the garments the shipped detector (:mod:`lookalike.garment.detector`) finds in a photo.
* :func:`shop_the_look`: each garment found with the products that look like it (one search of its box each).

:class:`LookMixin` gives :class:`~lookalike.catalog.Catalog` its ``garments`` and ``shop_the_look`` methods
and its ``garment_detector``; the facade only passes ``region`` through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

from lookalike.catalog.query import ImageInput, QueryHost, SearchResult, image_bytes
from lookalike.catalog.region import Region, RegionInput, draft_side
from lookalike.errors import InvalidQueryError
from lookalike.imaging import open_image_bytes
from lookalike.product import Filters

if TYPE_CHECKING:
    from lookalike.garment.detector import Garment, GarmentDetector

__all__ = [
    "Look",
    "LookMixin",
    "RegionInput",
    "decode_picture",
    "garments",
    "region_picture",
    "shop_the_look",
    "with_region",
]


def decode_picture(host: QueryHost, image: ImageInput | None, url: str | None, draft: int | None) -> Image.Image:
    """The picture of ``image`` or ``url``, decoded within the host's limits (a JPEG at ``draft`` pixels or more
    on each side; None: as large as the limits keep it), EXIF orientation applied."""
    if url is not None:
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidQueryError("url must start with http:// or https://")
        image = url
    if image is None:
        raise InvalidQueryError("give an image or an image url")
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    name = "image" if isinstance(image, bytes | bytearray | memoryview) else Path(os.fspath(image)).name
    return open_image_bytes(image_bytes(host, image), host.decode_limits, draft_size=draft, name=name)


def _model_side(host: QueryHost) -> int | None:
    cfg = host.extractor.preprocess_cfg
    return int(cfg.size) if cfg is not None else None


def region_picture(host: QueryHost, image: ImageInput | None, url: str | None, region: RegionInput) -> Image.Image:
    """The part of the picture that ``region`` points at (fractions of the picture as shown: after its EXIF
    orientation), widened to a square around its centre where the picture allows
    (:meth:`~lookalike.catalog.region.Region.square_pixels`: the model centre-crops what it is given to a square, and
    would cut the ends off a tall or wide region); :class:`InvalidQueryError` for a bad region or one under 32 pixels
    on a side."""
    try:
        box = Region.parse(region)
    except InvalidQueryError:
        # the picture's own errors come first, as for a search without a region (the REST schema cannot say
        # x0 < x1: a request it allows must fail for its picture before its region)
        decode_picture(host, image, url, _model_side(host))
        raise
    img = decode_picture(host, image, url, draft_side(_model_side(host), box))
    return box.square_crop(img)


def with_region(
    host: QueryHost, image: ImageInput | None, url: str | None, region: RegionInput | None
) -> tuple[ImageInput | None, str | None]:
    """The (image, url) a search runs on: as given without a region, else the region's crop (and no url). With the
    host's ``auto_region`` on, a picture searched without a region is searched as its first garment's box (the whole
    picture when the detector finds none)."""
    if region is None:
        if not getattr(host, "auto_region", False) or (image is None and url is None):
            return image, url
        img = decode_picture(host, image, url, None)
        found = cast(Any, host).garment_detector.detect(img, limit=1)
        if not found:
            return img, None
        try:
            return Region.parse(found[0].box).square_crop(img), None
        except InvalidQueryError:  # a box under the minimum: the whole picture
            return img, None
    if image is None and url is None:
        raise InvalidQueryError("a region goes with a picture: give an image or an image url")
    return region_picture(host, image, url, region), None


def garments(
    host: QueryHost, detector: GarmentDetector, image: ImageInput | None, url: str | None = None
) -> list[Garment]:
    """The garments ``detector`` finds in the picture, best first (an empty list when it finds none)."""
    return detector.detect(decode_picture(host, image, url, detector.size))


@dataclass
class Look:
    """A garment found in a photo and the products that look like it (its box searched as a region)."""

    garment: Garment
    result: SearchResult


def shop_the_look(
    host: QueryHost,
    detector: GarmentDetector,
    image: ImageInput | None,
    url: str | None = None,
    k: int = 5,
    filters: Filters | None = None,
    limit: int = 6,
    search: Any = None,
) -> list[Look]:
    """Each garment found in the picture (at most ``limit``, best first) with the ``k`` products most like its box;
    a box under 32 pixels a side is left out. The picture is decoded once; ``search(image, region=..., **kw)`` is
    the host's ``search_result`` (default: a picture search of :mod:`lookalike.catalog.query`, the host's stages)."""
    from lookalike.catalog import query

    img = decode_picture(host, image, url, None)
    looks = []
    for g in detector.detect(img)[:limit]:
        try:
            crop = Region.parse(g.box).square_crop(img)
        except InvalidQueryError:  # a box under the minimum: too small to search
            continue
        if search is not None:
            result = search(img, region=g.box, k=k, filters=filters)
        else:
            stages = getattr(host, "ranking_stages", None) or query.DEFAULT_STAGES
            result = query.search(host, crop, k=k, filters=filters, stages=stages)
        looks.append(Look(g, result))
    return looks


class LookMixin:
    """What :class:`~lookalike.catalog.Catalog` adds for garments: :meth:`garments`, :meth:`shop_the_look` and the
    detector (the shipped ``lookalike-detector``, loaded on first use; assign another to replace it)."""

    _garment_detector: GarmentDetector | None = None
    #: Search a picture given without a region as its first garment's box (docs/quality.md measures both).
    auto_region: bool = False

    @property
    def garment_detector(self) -> GarmentDetector:
        if self._garment_detector is None:
            from lookalike.garment.detector import default_detector

            self._garment_detector = default_detector()
        return self._garment_detector

    @garment_detector.setter
    def garment_detector(self, detector: GarmentDetector) -> None:
        self._garment_detector = detector

    def garments(self, image: ImageInput | None = None, *, url: str | None = None) -> list[Garment]:
        """The garments found in a photo (path, bytes, PIL image, or ``url``), best first: each a ``box`` (x0, y0,
        x1, y1 in fractions of the picture's width and height, origin top left, as ``region`` takes it), a
        ``kind`` (top, bottom, dress, outerwear, footwear, bag, hat, or None) and a ``score``; none found: []."""
        return garments(cast(QueryHost, self), self.garment_detector, image, url)

    def shop_the_look(
        self,
        image: ImageInput | None = None,
        *,
        url: str | None = None,
        k: int = 5,
        filters: Filters | None = None,
        limit: int = 6,
    ) -> list[Look]:
        """Each garment found in a photo with the ``k`` products most like its box (a region search each)."""
        search = getattr(self, "search_result", None)
        return shop_the_look(cast(QueryHost, self), self.garment_detector, image, url, k, filters, limit, search)
