"""``/api/products``: browse, read, "more like this", pictures; add/update and delete (admin token)."""

from __future__ import annotations

import mimetypes
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from lookalike.catalog import Catalog
from lookalike.errors import CatalogError, InvalidQueryError, ProductNotFoundError
from lookalike.product import Product
from lookalike.service.deps import (
    CatalogDep,
    FiltersDep,
    SettingsDep,
    URLPoolDep,
    check_k,
    require_admin,
    validated,
)
from lookalike.service.product_paths import product_id_param
from lookalike.service.product_schemas import DeleteOut, ProductForm, ProductPage, UpsertOut
from lookalike.service.routes.common import (
    body_kind,
    error_responses,
    read_image_form,
    search_response,
    unsupported_body,
)
from lookalike.service.schemas import ProductOut, QueryInfo, SearchResponse

__all__ = ["router"]

router = APIRouter(prefix="/api/products", tags=["catalogue"])

ProductId = Annotated[str, Depends(product_id_param)]  # any stored id, as one encoded segment (product_paths)

_UPSERT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ProductForm"}}},
    }
}


@router.get("", response_model=ProductPage, summary="Browse the catalogue", responses=error_responses(422))
def list_products(
    catalog: CatalogDep,
    filters: FiltersDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
) -> ProductPage:
    """A page of products (in catalogue order) matching the filters, and how many match in all."""
    items = catalog.products(filters, offset=offset, limit=limit)
    return ProductPage(
        total=catalog.count(filters),
        offset=offset,
        limit=limit,
        items=[ProductOut.from_product(p) for p in items],
    )


@router.get("/{product_id}", response_model=ProductOut, summary="One product", responses=error_responses(404))
def get_product(catalog: CatalogDep, product_id: ProductId) -> ProductOut:
    return ProductOut.from_product(catalog.get(product_id))


@router.get(
    "/{product_id}/similar",
    response_model=SearchResponse,
    summary="More like this product",
    responses=error_responses(404, 422),
)
def similar(
    catalog: CatalogDep,
    settings: SettingsDep,
    filters: FiltersDep,
    product_id: ProductId,
    k: Annotated[int | None, Query(ge=1)] = None,
) -> SearchResponse:
    """The products most like ``product_id`` (the product itself left out)."""
    k_used = check_k(k, settings)
    start = time.perf_counter()
    result = catalog.search_result(product_id=product_id, k=k_used, filters=filters)
    return search_response(QueryInfo(type="product", value=product_id), k_used, result, time.perf_counter() - start)


@router.get(
    "/{product_id}/image",
    response_class=FileResponse,
    summary="A product's stored picture",
    responses={**error_responses(404), 200: {"content": {"image/*": {}}, "description": "The picture."}},
)
def product_image(catalog: CatalogDep, product_id: ProductId) -> FileResponse:
    try:
        path = catalog.image_path(product_id)
    except CatalogError as exc:  # the product exists but its picture is gone
        raise ProductNotFoundError(f"product {product_id!r} has no stored picture") from exc
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


@router.get(
    "/{product_id}/images/{position}",
    response_class=FileResponse,
    summary="One of a product's pictures (0: the main one)",
    responses={**error_responses(404), 200: {"content": {"image/*": {}}, "description": "The picture."}},
)
def product_picture(
    catalog: CatalogDep, product_id: ProductId, position: Annotated[int, FastPath(ge=0, le=10_000)]
) -> FileResponse:
    try:
        path = catalog.image_path(product_id, position)
    except CatalogError as exc:  # the product exists but this picture's file is gone
        raise ProductNotFoundError(f"product {product_id!r} has no stored picture {position}") from exc
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


@router.post(
    "/{product_id}/images",
    response_model=ProductOut,
    status_code=201,
    summary="Add a picture to a product (admin)",
    dependencies=[Depends(require_admin)],
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {"image": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def add_picture(request: Request, catalog: CatalogDep, product_id: ProductId) -> ProductOut:
    """Multipart ``image``: added after the product's other pictures (the same picture again changes nothing)."""
    if body_kind(request) != "form":
        raise unsupported_body("multipart/form-data with an 'image' file")
    data, _, _ = await read_image_form(request)
    if data is None:
        raise InvalidQueryError("image: send the picture as a multipart 'image' file")
    await run_in_threadpool(catalog.add_picture, product_id, data)
    return ProductOut.from_product(catalog.get(product_id))


@router.delete(
    "/{product_id}/images/{position}",
    response_model=ProductOut,
    summary="Remove one of a product's pictures (admin)",
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 403, 404, 422),
)
def remove_picture(
    catalog: CatalogDep, product_id: ProductId, position: Annotated[int, FastPath(ge=0, le=10_000)]
) -> ProductOut:
    """The next picture becomes the main one when the main one goes; a product keeps at least one (422)."""
    catalog.remove_picture(product_id, position)
    return ProductOut.from_product(catalog.get(product_id))


@router.post(
    "",
    response_model=UpsertOut,
    summary="Add or update a product (admin)",
    dependencies=[Depends(require_admin)],
    responses={
        201: {"model": UpsertOut, "description": "Added"},
        **error_responses(400, 401, 403, 404, 413, 415, 422, 503, 504),
    },
    openapi_extra=_UPSERT_BODY,
)
async def upsert_product(request: Request, response: Response, catalog: CatalogDep, url_pool: URLPoolDep) -> UpsertOut:
    """Multipart fields: ``id`` and metadata, plus ``image`` (a file) or ``image_url``.

    A new product needs a picture; for an existing one, fields left out keep their value and a picture
    is optional (metadata-only update). Answers 201 when the product was added, 200 when updated.
    """
    if body_kind(request) != "form":
        raise unsupported_body("multipart/form-data with 'id', metadata fields and an 'image' file")
    data, _, fields = await read_image_form(request)
    if data is not None:
        fields["image"] = data
    item = validated(ProductForm, fields)
    if item.image is None and item.image_url is not None:  # a download: on the URL threads
        status, product = await url_pool.run(lambda: _upsert(catalog, item))
    else:
        status, product = await run_in_threadpool(_upsert, catalog, item)
    if status == "added":
        response.status_code = 201
    return UpsertOut(status=status, product=ProductOut.from_product(product))


def _upsert(catalog: Catalog, item: ProductForm) -> tuple[Literal["added", "updated"], Product]:
    try:
        existing: Product | None = catalog.get(item.id)
    except ProductNotFoundError:
        existing = None
    image = item.image if item.image is not None else item.image_url
    if existing is None and image is None:
        # 404, not 422: whether a picture is needed depends on the catalogue, which a schema cannot say
        raise ProductNotFoundError(
            f"no product with id {item.id!r}; a new product needs an 'image' file or an 'image_url'"
        )
    status = catalog.upsert(item.merged_into(existing), image)
    return ("added" if status == "added" else "updated"), catalog.get(item.id)


@router.delete(
    "/{product_id}",
    response_model=DeleteOut,
    summary="Delete a product (admin)",
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 403, 404),
)
def delete_product(catalog: CatalogDep, product_id: ProductId) -> DeleteOut:
    if catalog.delete([product_id]) == 0:
        raise ProductNotFoundError(f"no product with id {product_id!r}")
    return DeleteOut(id=product_id, deleted=True)
