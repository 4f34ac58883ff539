"""``GET /api/facets``: distinct values and counts of the filter fields, following the active filters."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.deps import CatalogDep, FiltersDep
from lookalike.service.product_schemas import FacetsOut, FacetValue, PriceRange
from lookalike.service.routes.common import error_responses
from lookalike.service.schemas import FILTER_NAMES

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["catalogue"])


@router.get("/facets", response_model=FacetsOut, summary="Filter values and counts", responses=error_responses(422))
def facets(catalog: CatalogDep, filters: FiltersDep) -> FacetsOut:
    """Every filter field's distinct values (most common first) with counts, and the price range.

    Takes the filters of ``GET /api/products``. Each field's counts are over the products that match every
    filter but that field's own (picking one colour still shows how many products the other colours have);
    ``total`` and ``price`` are over the products that match all of them.
    """
    raw = catalog.facets(FILTER_NAMES, filters)
    price = dict(raw.get("price", []))
    return FacetsOut(
        total=catalog.count(filters),
        fields={name: [FacetValue(value=str(v), count=n) for v, n in raw[name]] for name in FILTER_NAMES},
        price=PriceRange(min=price["min"], max=price["max"]) if price.get("min") is not None else None,
        in_stock=[(bool(v), int(n)) for v, n in raw.get("in_stock", [])],
    )
