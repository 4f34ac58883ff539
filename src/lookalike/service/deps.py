"""Shared route dependencies: the catalogue, the settings, filters from the query string, admin auth."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from lookalike.catalog import Catalog
from lookalike.errors import InvalidQueryError
from lookalike.product import Filters
from lookalike.service.schemas import FiltersIn, filter_list_schema
from lookalike.service.settings import ServiceSettings
from lookalike.service.urlpool import URLPool

__all__ = ["CatalogDep", "FiltersDep", "SettingsDep", "URLPoolDep", "check_k", "filter_query", "get_catalog",
           "get_settings", "get_url_pool", "require_admin", "validated"]  # fmt: skip

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, where: str = "body") -> M:
    """``model.model_validate(data)``, failing as a 422 like FastAPI's own parameter validation."""
    try:
        if isinstance(data, str | bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors]) from None


def get_catalog(request: Request) -> Catalog:
    """The catalogue opened in the lifespan: the generation serving now (``service/live.py``)."""
    live = getattr(request.app.state, "live", None)
    return live.current() if live is not None else request.app.state.catalog  # type: ignore[no-any-return]


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_url_pool(request: Request) -> URLPool:
    """The threads that run URL fetches (made in the lifespan)."""
    return request.app.state.url_pool  # type: ignore[no-any-return]


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
URLPoolDep = Annotated[URLPool, Depends(get_url_pool)]


def check_k(k: int | None, settings: ServiceSettings) -> int:
    """``k`` or the default, refused (422) above the configured maximum."""
    if k is None:
        return settings.default_k
    if k < 1 or k > settings.max_k:
        raise InvalidQueryError(f"k must be between 1 and {settings.max_k}")
    return k


def filter_query(
    category: Annotated[
        list[str] | None, Query(description="Repeat for any of several values.", json_schema_extra=filter_list_schema)
    ] = None,
    subcategory: Annotated[list[str] | None, Query(json_schema_extra=filter_list_schema)] = None,
    article_type: Annotated[list[str] | None, Query(json_schema_extra=filter_list_schema)] = None,
    gender: Annotated[list[str] | None, Query(json_schema_extra=filter_list_schema)] = None,
    colour: Annotated[list[str] | None, Query(json_schema_extra=filter_list_schema)] = None,
    brand: Annotated[list[str] | None, Query(json_schema_extra=filter_list_schema)] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    in_stock: Annotated[
        bool | None, Query(description="true: leave out products known to be out of stock; false: only those.")
    ] = None,
) -> Filters:
    """Filters from query parameters (validated like the JSON ``filters`` object)."""
    return validated(
        FiltersIn,
        {
            "category": category,
            "subcategory": subcategory,
            "article_type": article_type,
            "gender": gender,
            "colour": colour,
            "brand": brand,
            "min_price": min_price,
            "max_price": max_price,
            "in_stock": in_stock,
        },
        where="query",
    ).to_filters()


FiltersDep = Annotated[Filters, Depends(filter_query)]

_bearer = HTTPBearer(auto_error=False, description="The admin token (LOOKALIKE_ADMIN_TOKEN).")
_header = APIKeyHeader(name="X-Admin-Token", auto_error=False, description="The admin token, another way.")


def require_admin(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    header_token: Annotated[str | None, Security(_header)] = None,
) -> None:
    """403 when no admin token is configured; 401 when the request's token is missing or wrong."""
    expected = settings.admin_token_value
    if expected is None:
        raise HTTPException(403, "admin routes are disabled; set LOOKALIKE_ADMIN_TOKEN to enable them")
    supplied = bearer.credentials if bearer is not None else header_token
    challenge = {"WWW-Authenticate": "Bearer"}
    if not supplied:
        raise HTTPException(
            401, "admin token required: send 'Authorization: Bearer <token>' or 'X-Admin-Token'", challenge
        )
    if not hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(401, "wrong admin token", challenge)
