"""``POST /api/garments``: the garments found in a photo (multipart) or at an image URL (JSON), each a box, a kind
and a score, best first; with ``k``, each with the products most like it ('shop the look')."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lookalike.errors import InvalidQueryError
from lookalike.service.deps import CatalogDep, SettingsDep, URLPoolDep, check_k, validated
from lookalike.service.garment_schemas import GarmentOut, GarmentsRequest, GarmentsResponse, GarmentsUpload
from lookalike.service.routes.common import body_kind, error_responses, read_image_form, unsupported_body

__all__ = ["BODY_MODELS", "router"]

router = APIRouter(prefix="/api", tags=["search"])
BODY_MODELS = (GarmentsUpload, GarmentsRequest)  # parsed by hand: documented in the schema by the app

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/GarmentsUpload"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/GarmentsRequest"}},
        },
    }
}


@router.post(
    "/garments",
    response_model=GarmentsResponse,
    summary="The garments in a photo (and shop the look)",
    responses=error_responses(400, 413, 415, 422, 503, 504),
    openapi_extra=_BODY,
)
async def garments(
    request: Request, catalog: CatalogDep, settings: SettingsDep, url_pool: URLPoolDep
) -> GarmentsResponse:
    """The garments the detector finds in the photo, best first: each a ``box`` (x0, y0, x1, y1 in fractions of
    the picture's width and height, origin top left: the ``region`` a search takes), a ``kind`` (top, bottom,
    dress, outerwear, footwear, bag, hat, or null) and a ``score``. A photo with no garment found gives an empty
    list. With ``k`` >= 1, each garment also comes with the ``k`` products most like it (its box searched).

    * ``multipart/form-data``: an ``image`` file and optional ``k``;
    * ``application/json``: ``{"url": ...}`` and optional ``k``.
    """
    kind = body_kind(request)
    if kind == "form":
        data, _filename, fields = await read_image_form(request)
        if data is None:
            raise InvalidQueryError("image: upload a photo in the 'image' field")
        upload = validated(GarmentsUpload, {**fields, "image": data})
        image, url, k = upload.image, None, upload.k
    elif kind == "json":
        body = validated(GarmentsRequest, await request.body())
        image, url, k = None, body.url, body.k
    else:
        raise unsupported_body("multipart/form-data with an 'image' file, or JSON with 'url'")
    if k:
        k = check_k(k, settings)
    start = time.perf_counter()

    def find() -> list[GarmentOut]:
        if k:
            return [GarmentOut.from_garment(look.garment, look) for look in catalog.shop_the_look(image, url=url, k=k)]
        return [GarmentOut.from_garment(g) for g in catalog.garments(image, url=url)]

    found = await (url_pool.run(find) if url is not None else run_in_threadpool(find))
    return GarmentsResponse(count=len(found), took_ms=round((time.perf_counter() - start) * 1000, 2), garments=found)
