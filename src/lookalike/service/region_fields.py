"""The region of a search request: JSON, four numbers; multipart, one field ``"x0,y0,x1,y1"``.

A region is four fractions of the picture's width and height (0..1, origin top left). The schema states what it
can (four numbers, each in 0..1; the form field's pattern); that the box has an area (``x0 < x1``, ``y0 < y1``)
and at least 32 pixels a side is checked once the picture is read (:mod:`lookalike.catalog.region`): 422 then,
after the picture's own errors (400, 413, 415), so a request the schema allows fails for its picture first.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from lookalike.catalog.region import MIN_SIDE

__all__ = ["REGION_PATTERN", "RegionForm", "RegionJSON"]

_FRACTION = "(?:0(?:\\.[0-9]*)?|1(?:\\.0*)?|\\.[0-9]+)"
#: Four fractions separated by commas (spaces around them allowed), as a multipart field gives a region.
REGION_PATTERN = f"^\\s*{_FRACTION}\\s*,\\s*{_FRACTION}\\s*,\\s*{_FRACTION}\\s*,\\s*{_FRACTION}\\s*$"
_REGION_HELP = (
    "Search only this part of the picture: x0, y0, x1, y1 in fractions of its width and height (0..1, origin top "
    f"left, as shown after its EXIF orientation); x0 < x1, y0 < y1 and at least {MIN_SIDE} pixels a side (else "
    "422). Its colour is read inside it. With an image or url only."
)


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


RegionJSON = Annotated[
    Annotated[list[Annotated[float, Field(ge=0, le=1, strict=True)]], Field(min_length=4, max_length=4)] | None,
    Field(default=None, description=_REGION_HELP, examples=[[0.1, 0.2, 0.6, 0.9]]),
]
RegionForm = Annotated[
    str | None,
    BeforeValidator(_blank_is_none),
    Field(
        default=None,
        max_length=200,
        pattern=REGION_PATTERN,
        description=_REGION_HELP,
        examples=["0.1,0.2,0.6,0.9"],
        json_schema_extra={"pattern": REGION_PATTERN},  # pydantic leaves it out of a str | None's schema
    ),
]
