"""Schemas of ``POST /api/garments``: the garments found in a photo, each with its products on request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lookalike.catalog.look import Look
from lookalike.garment.detector import Garment
from lookalike.garment.kinds import KINDS
from lookalike.service.schemas import HitOut

__all__ = ["GarmentOut", "GarmentsRequest", "GarmentsResponse", "GarmentsUpload"]


class GarmentOut(BaseModel):
    """A garment found in the photo: where (``box``, as a search's ``region`` takes it), what kind, how sure; with
    ``k``, the products most like it."""

    box: list[float] = Field(description="x0, y0, x1, y1 in fractions of the picture's width and height.")
    kind: str | None = Field(description=f"One of {', '.join(KINDS)}; null: another thing worn or carried.")
    score: float = Field(ge=0, le=1, description="The detector's confidence.")
    hits: list[HitOut] | None = Field(default=None, description="With k: the products most like this garment.")

    @classmethod
    def from_garment(cls, garment: Garment, look: Look | None = None) -> GarmentOut:
        hits = None
        if look is not None:
            hits = [HitOut.from_hit(rank, hit) for rank, hit in enumerate(look.result.hits, start=1)]
        out = garment.to_dict()
        return cls(box=out["box"], kind=out["kind"], score=min(1.0, max(0.0, out["score"])), hits=hits)


class GarmentsResponse(BaseModel):
    """The garments found in a photo, best first (none found: an empty list)."""

    count: int
    took_ms: float
    garments: list[GarmentOut]


_K_HELP = "With k >= 1, each garment comes with its k best products ('shop the look'); 0 (default): boxes only."


class GarmentsRequest(BaseModel):
    """JSON: the photo at an image URL."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        description="An http(s) image URL to fetch.",
        json_schema_extra={"pattern": "^\\s*[Hh][Tt][Tt][Pp][Ss]?://"},
    )
    k: int = Field(default=0, ge=0, description=_K_HELP)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.strip().lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value.strip()


class GarmentsUpload(BaseModel):
    """Multipart: an uploaded photo."""

    model_config = ConfigDict(extra="forbid")

    image: bytes = Field(description="The photo: JPEG, PNG, WebP, GIF, BMP, TIFF (HEIC/AVIF when supported).")
    k: int = Field(default=0, ge=0, description=_K_HELP)

    @field_validator("k", mode="before")
    @classmethod
    def _blank_k(cls, value: Any) -> Any:
        return 0 if isinstance(value, str) and not value.strip() else value
