"""``/docs``: Swagger UI served from the app itself, so the API docs work with no internet access.

FastAPI's own ``/docs`` page loads Swagger UI's JavaScript and CSS from a CDN. Here they come from the
``fastapi-offline`` package (a copy of the ``swagger-ui-dist`` 5.x files, which read OpenAPI 3.1), mounted
at ``/docs-assets``. Without that package the app keeps FastAPI's CDN page and logs a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_URL", "assets_dir", "install_docs"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs-assets"
_REDIRECT_URL = "/docs/oauth2-redirect"
# The files the page loads.
_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")

log = logging.getLogger("lookalike.service")


def assets_dir() -> Path | None:
    """The folder holding Swagger UI's files, or ``None`` when ``fastapi-offline`` is not installed."""
    try:
        import fastapi_offline  # type: ignore[import-untyped]
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if all((folder / name).is_file() for name in _ASSETS) else None


def install_docs(app: FastAPI) -> bool:
    """Add ``/docs`` (build the app with ``docs_url=None``); ``False`` when the page has to use the CDN."""
    folder = assets_dir()
    if folder is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")
    else:
        log.warning("fastapi-offline is not installed: /docs loads Swagger UI from a CDN")
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = {}
        if folder is not None:
            assets = {
                "swagger_js_url": f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                "swagger_css_url": f"{root}{ASSETS_URL}/swagger-ui.css",
            }
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_favicon_url=f"{root}/static/favicon.svg",
            oauth2_redirect_url=f"{root}{_REDIRECT_URL}",
            **assets,
        )

    @router.get(_REDIRECT_URL)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.include_router(router)
    return folder is not None
