"""``GET /healthz``: the service is up and its catalogue readable."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.deps import CatalogDep
from lookalike.service.product_schemas import HealthOut

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=HealthOut, summary="Health check")
def healthz(catalog: CatalogDep) -> HealthOut:
    entry = catalog.manifest.get("extractor", {})
    return HealthOut(
        status="ok",
        products=len(catalog),
        extractor=catalog.extractor_name,
        model_sha256=entry.get("sha256"),
        generation=int(catalog.manifest.get("generation", 0)),
    )
