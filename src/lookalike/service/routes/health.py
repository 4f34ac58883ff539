"""``GET /healthz``: the service is up and its catalogue readable."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.deps import CatalogDep
from lookalike.service.product_schemas import HealthOut

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=HealthOut, summary="Health check")
def healthz(catalog: CatalogDep) -> HealthOut:
    return HealthOut(status="ok", products=len(catalog), extractor=catalog.extractor_name)
