"""``POST /api/search``: by uploaded photo (multipart), or by image URL, product id or words (JSON); words
may also move a photo's, URL's or product's search."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lookalike.errors import InvalidQueryError
from lookalike.service.deps import CatalogDep, SettingsDep, URLPoolDep, check_k, validated
from lookalike.service.routes.common import (
    body_kind,
    error_responses,
    read_image_form,
    search_response,
    unsupported_body,
)
from lookalike.service.schemas import QueryInfo, SearchRequest, SearchResponse, SearchUpload

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["search"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SearchUpload"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
        },
    }
}


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search by photo, image URL, product or words",
    responses=error_responses(400, 404, 413, 415, 422, 503, 504),
    openapi_extra=_BODY,
)
async def search(request: Request, catalog: CatalogDep, settings: SettingsDep, url_pool: URLPoolDep) -> SearchResponse:
    """Products that look like the query, best first.

    * ``multipart/form-data``: an ``image`` file, optional ``text`` (words that move the search: "in red"),
      ``k``, ``prefer_colour``, ``colour_rank``, ``collapse`` and filter fields (repeat a filter field for "any
      of" these values); a blank field counts as absent;
    * ``application/json``: ``{"url": ...}``, ``{"product_id": ...}`` or ``{"text": "navy blue shirt"}``
      (``text`` may also go with ``url`` or ``product_id``), optional ``k``, ``colour`` (a colour
      preference), ``colour_rank``, ``collapse`` and ``filters``. Text: at most 500 characters, no control characters.
    * Feedback, in either: ``positive`` / ``negative``, ids of liked / disliked products (multipart: repeat the
      field), also ``positive`` alone ("more like these"); unknown ids: 404 naming them, unless ``ignore_missing``
      (then listed in ``ignored``).
    * ``region``: search a part of the photo or URL's picture, x0, y0, x1, y1 in fractions of its width and height
      (JSON: four numbers; multipart: ``"x0,y0,x1,y1"``); its colour is read inside it.

    Results are re-ranked by agreement with the query's colour (seen in the picture, or the product's own),
    unless ``colour_rank`` is false; a colour preference ranks by that colour instead. ``colour`` in the
    response says which colour was used and what was seen. A picture's kind (the kind head) ranks its kind up,
    each likely kind keeping places on the first page; ``kind`` (JSON and multipart) ranks by a kind of the
    catalogue's instead, and ``kind`` in the response names the kinds seen and the one used. Products with the
    very same picture show once (the best-ranked, its ``duplicates`` listing the others' ids) unless ``collapse``
    is false. Misspelt words are corrected against the catalogue's words first; ``understood`` then gives the
    words as searched.
    """
    kind = body_kind(request)
    if kind == "form":
        data, filename, fields = await read_image_form(request)
        if data is None:
            raise InvalidQueryError("image: upload a photo in the 'image' field")
        upload = validated(SearchUpload, {**fields, "image": data})
        k = check_k(upload.k, settings)
        filters = upload.filters_in().to_filters()
        query = QueryInfo(type="image", value=filename, text=upload.text)
        start = time.perf_counter()
        result = await run_in_threadpool(
            lambda: catalog.search_result(
                upload.image,
                k=k,
                filters=filters,
                colour=upload.prefer_colour,
                colour_rank=upload.colour_rank,
                text=upload.text,
                collapse=upload.collapse,
                positive=upload.positive,
                negative=upload.negative,
                ignore_missing=upload.ignore_missing,
                region=upload.region,
                kind=upload.kind,
            )
        )
    elif kind == "json":
        body = validated(SearchRequest, await request.body())
        k = check_k(body.k, settings)
        filters = body.filters.to_filters()
        start = time.perf_counter()
        colour = {"colour": body.colour, "colour_rank": body.colour_rank, "text": body.text, "collapse": body.collapse}
        colour.update(positive=body.positive, negative=body.negative, ignore_missing=body.ignore_missing)
        colour["region"] = body.region  # with url only (the schema; else 422)
        colour["kind"] = body.kind
        if body.url is not None:
            query = QueryInfo(type="url", value=body.url, text=body.text)
            result = await url_pool.run(lambda: catalog.search_result(url=body.url, k=k, filters=filters, **colour))
        elif body.product_id is not None:
            query = QueryInfo(type="product", value=body.product_id, text=body.text)
            result = await run_in_threadpool(
                lambda: catalog.search_result(product_id=body.product_id, k=k, filters=filters, **colour)
            )
        else:
            query = QueryInfo(type="text", value=body.text) if body.text is not None else QueryInfo(type="feedback")
            result = await run_in_threadpool(lambda: catalog.search_result(k=k, filters=filters, **colour))
    else:
        raise unsupported_body("multipart/form-data with an 'image' file, or JSON with 'url', 'product_id' or 'text'")
    response = search_response(query, k, result, time.perf_counter() - start)
    response.understood = result.understood  # the words as corrected, when a misspelt word was
    response.ignored = list(result.ignored)  # judged ids no product has now (ignore_missing)
    return response
