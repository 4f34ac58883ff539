"""``GET /api/facets``: distinct values and counts of the filter fields."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.deps import CatalogDep
from lookalike.service.schemas import FILTER_NAMES, FacetsOut, FacetValue, PriceRange

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["catalogue"])


@router.get("/facets", response_model=FacetsOut, summary="Filter values and counts")
def facets(catalog: CatalogDep) -> FacetsOut:
    """Every filter field's distinct values (most common first) with counts, and the price range."""
    raw = catalog.facets(FILTER_NAMES)
    price = dict(raw.get("price", []))
    return FacetsOut(
        total=catalog.count(),
        fields={name: [FacetValue(value=str(v), count=n) for v, n in raw[name]] for name in FILTER_NAMES},
        price=PriceRange(min=price["min"], max=price["max"]) if price.get("min") is not None else None,
    )
