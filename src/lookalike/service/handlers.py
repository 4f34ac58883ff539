"""Exception handlers: every error leaves the API as JSON with a human-readable ``detail``."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from lookalike.errors import CatalogDamagedError, LookalikeError, StorageFullError
from lookalike.fsutil import full_disk_error, is_disk_full
from lookalike.store.health import damaged

__all__ = ["install_handlers", "validation_summary"]

log = logging.getLogger("lookalike.service")


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without their ``input`` (which may be a whole uploaded image) or ``ctx``."""
    cleaned = []
    for err in errors:
        loc = [part for part in err.get("loc", ()) if part not in ("body", "query", "path", "header", "form")]
        cleaned.append({"loc": [str(p) for p in loc], "msg": str(err.get("msg", "")), "type": err.get("type")})
    return cleaned


def validation_summary(errors: list[dict[str, Any]]) -> str:
    """One line a person can read: ``k: Input should be greater than or equal to 1; ...``."""
    parts = []
    for err in errors:
        where = ".".join(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid request"


async def _lookalike_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LookalikeError)
    status = exc.status_code
    if isinstance(exc, StorageFullError):  # an operator's problem, not a bug: one line, no traceback
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    elif status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    """SQLite errors that reach the boundary: a full disk (507), a damaged store (500, saying so), else 500."""
    if is_disk_full(exc):
        return await _lookalike_error(request, full_disk_error(exc, "writing to the product store"))
    if damaged(exc):
        problem = CatalogDamagedError(f"the catalogue's product store is damaged ({exc}); run lookalike check")
        return await _lookalike_error(request, problem)
    return await _unexpected(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_errors(exc.errors())
    return JSONResponse({"detail": validation_summary(errors), "errors": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names only the first route matching the path
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents for this request's path (HEAD with GET)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in item if m.upper() in _METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    """The client hung up before its request body arrived: one INFO line, no traceback (nobody hears the
    answer)."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "client"
    log.info("%s %s: %s disconnected before sending the whole request body", request.method, request.url.path, client)
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(LookalikeError, _lookalike_error)
    app.add_exception_handler(sqlite3.DatabaseError, _store_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(Exception, _unexpected)
