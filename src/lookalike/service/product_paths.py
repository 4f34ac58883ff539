"""Every stored product id reachable as one path segment: ``/api/products/{id}``, ``/{id}/image``,
``/{id}/similar``, ``/{id}/images/{n}``, whatever the id holds (``a/b``, ``../x``, ``/etc/passwd``, ``x y``).

The API writes an id as one percent-encoded segment (:func:`~lookalike.service.schemas.id_segment`: ``a/b`` is
``a%2Fb``). Starlette routes on the *decoded* path, where ``/api/products/a%2Fb/image`` has become
``/api/products/a/b/image`` and no route matches (or, for an id ``x/image``, the wrong one does). So
:class:`ProductPathMiddleware` hands the router the path with the id's segment still encoded, exactly as the
client sent it (from the ASGI ``raw_path``), and :func:`product_id_param` decodes it once: the id segment
is the first segment after ``/api/products/`` on the wire, and only a ``/`` sent as ``/`` separates the
sub-route. A client that sends a raw ``/`` inside an id (unencoded) gets 404, as before.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Path, Request
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PREFIX", "ProductPathMiddleware", "product_id_param"]

PREFIX = "/api/products/"
_ENCODED = "lookalike.encoded_product_id"  # scope key: the id segment reaches the route still encoded


class ProductPathMiddleware:
    """Keep the product id's path segment percent-encoded for routing (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(PREFIX):
            scope = _encoded_id(scope)
        await self.app(scope, receive, send)


def _encoded_id(scope: Scope) -> Scope:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes | bytearray):
        return scope
    try:
        wire = bytes(raw).decode("ascii")
    except UnicodeDecodeError:  # not sent percent-encoded: route on the decoded path
        return scope
    if not wire.startswith(PREFIX) or unquote(wire) != scope["path"]:  # a proxy prefix or another rewrite
        return scope
    segment, sep, rest = wire[len(PREFIX) :].partition("/")
    if "%" not in segment:  # nothing encoded: the decoded path is the same
        return scope
    return {**scope, "path": PREFIX + segment + sep + unquote(rest), _ENCODED: True}


def product_id_param(
    request: Request,
    product_id: Annotated[
        str, Path(min_length=1, description="The product id, as one percent-encoded path segment ('a/b' is a%2Fb).")
    ],
) -> str:
    """The product id of the request's path, decoded once."""
    return unquote(product_id) if request.scope.get(_ENCODED) else product_id
