"""Helpers shared by the routes: error response docs, request body parsing, hits to responses."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, UploadFile

from lookalike.catalog.query import SearchResult
from lookalike.colour import FAMILIES
from lookalike.errors import InvalidQueryError
from lookalike.service.kind_schemas import QueryKind
from lookalike.service.schemas import ErrorOut, HitOut, QueryColour, QueryInfo, SearchResponse

__all__ = [
    "DESCRIPTIONS",
    "FORM_NULL",
    "body_kind",
    "error_responses",
    "form_fields",
    "read_image_form",
    "read_upload",
    "search_response",
    "unsupported_body",
]

DESCRIPTIONS = {
    400: "Bad image, or the image URL could not be fetched",
    401: "Admin token missing or wrong",
    403: "Admin routes are disabled (no LOOKALIKE_ADMIN_TOKEN configured)",
    404: "Unknown product",
    413: "Upload or image too large",
    415: "Unsupported image format or content type",
    422: "Invalid parameters",
    503: "Too many image URL requests in progress; retry after the Retry-After header's seconds",
    504: "The image URL timed out",
    507: "The disk is full: nothing was written; free space and try again",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}


def body_kind(request: Request) -> str:
    """``"form"`` (multipart or urlencoded), ``"json"`` or ``""`` from the Content-Type header."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return "form"
    if ctype == "application/json" or ctype.endswith("+json"):
        return "json"
    return ""


def unsupported_body(expected: str) -> HTTPException:
    return HTTPException(415, f"unsupported request content type; send {expected}")


#: A multipart text field holding exactly this is a field not given (OpenAPI clients write a null this way; it
#: was stored as the text "null"). A title or category that really is "null" cannot be set through the API.
FORM_NULL = "null"


def form_fields(form: FormData, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """Form fields as a dict: repeated fields become lists, single ones plain values; ``files`` left out, and
    fields sent as the text ``null`` too (:data:`FORM_NULL`: not given)."""
    out: dict[str, Any] = {}
    for key in form:
        if key in files:
            continue
        values = [v for v in form.getlist(key) if v != FORM_NULL]
        if not values:
            continue
        if any(isinstance(v, UploadFile) for v in values):
            out[key] = "<file>"  # a file where text is expected: fails validation with a clear message
            continue
        out[key] = values[0] if len(values) == 1 else values
    return out


async def read_upload(form: FormData, name: str) -> tuple[bytes | None, str | None]:
    """The bytes and file name of the upload field ``name``; ``(None, None)`` when absent."""
    value = form.get(name)
    if value is None:
        return None, None
    if not isinstance(value, UploadFile):
        if not value or value == FORM_NULL:
            return None, None
        raise InvalidQueryError(f"{name} must be a file upload, not a text field")
    data = await value.read()
    return data, value.filename


async def read_image_form(request: Request, name: str = "image") -> tuple[bytes | None, str | None, dict[str, Any]]:
    """A multipart form with at most one file, ``name``: its bytes and file name, and the other fields."""
    form = await request.form(max_files=1, max_fields=320)  # 64 fields and up to 2 × 100 judged ids, repeated
    try:
        data, filename = await read_upload(form, name)
        fields = form_fields(form, files=(name,))
    finally:
        await form.close()
    return data, filename, fields


def search_response(query: QueryInfo, k: int, result: SearchResult, seconds: float) -> SearchResponse:
    detected = result.detected
    colour = QueryColour(
        ranked_by=result.colour,
        source=result.colour_source,  # type: ignore[arg-type]
        detected=None if detected is None else detected.family,
        detected_top=[] if detected is None else [(f, round(p, 4)) for f, p in detected.top(3)],
        families=list(FAMILIES),
    )
    return SearchResponse(
        query=query,
        k=k,
        count=len(result.hits),
        took_ms=round(seconds * 1000.0, 2),
        colour=colour,
        kind=QueryKind.from_seen(result.kind),
        hits=[HitOut.from_hit(rank, hit) for rank, hit in enumerate(result.hits, start=1)],
    )
