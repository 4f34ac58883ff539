"""What the OpenAPI schema must say beyond FastAPI's own, so it matches the server (Schemathesis ST201/ST202):
the service's limits (``k`` at most ``LOOKALIKE_MAX_K``) and the statuses every write can answer (507 when the
disk is full)."""

from __future__ import annotations

from typing import Any

from lookalike.service.schemas import ErrorOut
from lookalike.service.settings import ServiceSettings

__all__ = ["FULL_DISK", "document_limits"]

FULL_DISK = "The disk is full: nothing was written; free space and try again"
_WRITES = ("post", "put", "patch", "delete")
_READ_ONLY_POSTS = ("/api/search", "/api/garments")  # a search changes nothing


def _cap_integers(schema: Any, maximum: int) -> None:
    """Set ``maximum`` on the integer branch(es) of a property schema (``int | None`` is an ``anyOf``)."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "integer":
        schema["maximum"] = maximum
    for branch in schema.get("anyOf", []):
        _cap_integers(branch, maximum)


def document_limits(schema: dict[str, Any], settings: ServiceSettings) -> None:
    """Add to ``schema`` (in place) the ``k`` maximum of ``settings`` and a 507 answer on every write."""
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        k = component.get("properties", {}).get("k")
        if k is not None and name != "SearchResponse":
            _cap_integers(k, settings.max_k)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "k" and parameter.get("in") == "query":
                    _cap_integers(parameter.get("schema"), settings.max_k)
            if method in _WRITES and path not in _READ_ONLY_POSTS:
                operation.setdefault("responses", {}).setdefault("507", {"description": FULL_DISK, "content": error})
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    )
