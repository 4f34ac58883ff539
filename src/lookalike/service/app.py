"""The FastAPI app: the catalogue and its model are loaded once, in the lifespan; routes are thin."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from lookalike import __version__
from lookalike.catalog import Catalog
from lookalike.imaging import DecodeLimits, FetchSettings
from lookalike.service.handlers import install_handlers
from lookalike.service.live import follow
from lookalike.service.middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from lookalike.service.openapi_extra import document_limits
from lookalike.service.product_paths import ProductPathMiddleware
from lookalike.service.product_schemas import ProductForm
from lookalike.service.routes import facets, garments, health, pages, products, search
from lookalike.service.routes.common import DESCRIPTIONS as _DESCRIPTIONS
from lookalike.service.routes.docs import install_docs
from lookalike.service.routes.pages import STATIC_DIR
from lookalike.service.schemas import ErrorOut, SearchRequest, SearchUpload
from lookalike.service.settings import ServiceSettings
from lookalike.service.urlpool import URLPool

__all__ = ["create_app", "open_catalog"]

# Multipart framing and the small text fields that travel with an upload.
FORM_OVERHEAD_BYTES = 64 * 1024
# Request bodies parsed by hand (one route takes two content types); documented in the schema here.
_BODY_MODELS = (SearchUpload, SearchRequest, ProductForm, *garments.BODY_MODELS)


def open_catalog(path: str | os.PathLike[str], settings: ServiceSettings) -> Catalog:
    """Open the catalogue with the service's limits and load its model (and run it once, to warm up)."""
    backend: dict[str, object] = {}
    if settings.backend != "embedded":
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        backend = {"backend": settings.backend, "uri": settings.milvus_uri, "token": token}
    catalog = Catalog.open(
        path,
        **backend,  # type: ignore[arg-type]
        decode_limits=DecodeLimits(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels),
        fetch_settings=FetchSettings(
            allow_private=settings.allow_private_urls,
            max_bytes=settings.max_upload_bytes,
            total_timeout=settings.url_timeout,
            read_timeout=min(10.0, settings.url_timeout),
        ),
        query_flip=settings.query_flip,
        colour_rank=settings.colour_rank,
        collapse_duplicates=settings.collapse_duplicates,
    )
    catalog.kind_rank = settings.kind_rank
    try:
        from PIL import Image

        catalog.extractor.embed([Image.new("RGB", (64, 64), "white")])
    except BaseException:
        catalog.close()
        raise
    return catalog


def create_app(catalog_path: str | os.PathLike[str], settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app for the catalogue at ``catalog_path`` (opened when the app starts)."""
    settings = settings or ServiceSettings()
    path = Path(catalog_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.catalog = await run_in_threadpool(open_catalog, path, settings)
        except Exception as exc:  # `lookalike serve` reports it in one line (cli/serve_migrate.py)
            app.state.startup_error = exc
            raise
        _check_in_background(app.state.catalog)
        # follows `lookalike reindex` switches without a restart (live.py): the generation pointer, a Milvus alias
        reopen, keep = partial(open_catalog, settings=settings), partial(setattr, app.state, "catalog")
        live = app.state.live = follow(path, app.state.catalog, reopen, keep)
        app.state.url_pool = URLPool(settings.url_workers, retry_after=settings.url_timeout)
        try:
            yield
        finally:
            app.state.url_pool.close()
            await run_in_threadpool(live.close)

    app = FastAPI(
        title="lookalike",
        version=__version__,
        summary="Visual search for fashion catalogues: find the products that look like a photo.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: Swagger UI from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_handlers(app)
    for module in (search, garments, products, facets, health, pages):
        app.include_router(module.router)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Outermost last: the byte cap sees the request before anything else reads it.
    app.add_middleware(ProductPathMiddleware)  # ids with '/' and the like: their segment routed encoded
    app.add_middleware(SecurityHeadersMiddleware)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-Admin-Token", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        body_timeout=settings.body_timeout,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _check_in_background(catalog: Catalog) -> None:
    """Log a warning when the product store's pages are damaged (SQLite's quick_check reads the whole store, 1.5 s
    for 60 MB from a cold disk, so it runs beside the server, not before it answers; ``lookalike check`` says more)."""

    def run() -> None:
        check = getattr(catalog.backend, "quick_check", None)  # the embedded backend's store
        try:
            problems = check() if check is not None else []
        except Exception as exc:  # closed meanwhile, or damaged beyond reading
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            logging.getLogger("lookalike.service").warning(
                "catalogue %s is not sound (lookalike check lists it): %s", catalog.path, "; ".join(problems)
            )

    threading.Thread(target=run, name="lookalike-check", daemon=True).start()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the hand-parsed request bodies, so /docs shows every request."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
            description=app.description,
        )
        _, defs = models_json_schema(
            [(m, "validation") for m in _BODY_MODELS], ref_template="#/components/schemas/{model}"
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model_schema in defs.get("$defs", {}).items():
            components.setdefault(name, model_schema)
        _document_real_422(schema)
        document_limits(schema, app.state.settings)  # k's maximum, 507 on writes (openapi_extra.py)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_real_422(schema: dict[str, Any]) -> None:
    """Every 422 is the service's own ``ErrorOut`` (``detail`` and ``errors``), not FastAPI's default body."""
    error_out = {"$ref": "#/components/schemas/ErrorOut"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            response["description"] = _DESCRIPTIONS[422]
            response["content"] = {"application/json": {"schema": error_out}}
    components = schema.get("components", {}).get("schemas", {})
    components.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
