"""A Milvus catalogue as an alias (issue 26): its name names the collection of the generation that serves.

``lookalike reindex NAME --backend milvus`` builds each generation in a collection of its own, ``NAME__g<n>``,
and switches by pointing the alias ``NAME`` at it (``alter_alias``, atomic on the Milvus side); the alias
``NAME__previous`` names the collection a rollback returns to. A catalogue made before (a plain collection named
``NAME``) is adopted by its first reindex (:func:`adopt`): its errors collection and then the collection are
renamed (``NAME__g0__lookalike_errors``, ``NAME__g0``) and the alias ``NAME`` is created, so every open by name
finds the same rows again. Milvus refuses an alias named like a collection, so there is no other way in place.
Each generation's collection carries the property ``lookalike.generation_of = NAME``: :func:`generation_collections`
lists only those (a user's own collection that happens to be called ``NAME__g1`` is never taken, nor dropped).

A catalogue opened by name is bound to the collection the name resolved to (:func:`resolve`), never to the alias:
a process that opened it before a switch keeps searching with the vectors of the model it loaded. Its writes first
check that the name still resolves to that collection (:class:`GuardedMilvusBackend`: one ``describe_collection``
per write) and fail with :class:`~lookalike.errors.CatalogSwitchedError` (HTTP 503, exit 75) once it does not.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from lookalike.backends.base import UpsertItem
from lookalike.backends.milvus_backend import MilvusBackend
from lookalike.backends.milvus_client import calling
from lookalike.backends.milvus_schema import ERRORS_SUFFIX, MANIFEST_PROPERTY
from lookalike.errors import CatalogError, CatalogNotFoundError, CatalogSwitchedError

__all__ = [
    "GENERATION_OF",
    "PREVIOUS_SUFFIX",
    "GuardedMilvusBackend",
    "adopt",
    "alias_target",
    "collection_manifest",
    "generation_collection",
    "generation_collections",
    "generation_of",
    "mark_generation",
    "point",
    "previous_alias",
    "resolve",
]

PREVIOUS_SUFFIX = "__previous"
GENERATION_OF = "lookalike.generation_of"  # collection property: the catalogue a generation belongs to


def generation_collection(name: str, n: int) -> str:
    """The collection of generation ``n`` of catalogue ``name``."""
    return f"{name}__g{int(n)}"


def previous_alias(name: str) -> str:
    """The alias naming the collection ``reindex --rollback`` returns to."""
    return name + PREVIOUS_SUFFIX


def generation_of(name: str, collection: str) -> int:
    """The generation number of ``collection`` (0 for a plain collection called ``name``)."""
    found = re.fullmatch(re.escape(name) + r"__g(\d+)", collection)
    return int(found.group(1)) if found else 0


def _missing(client: Any, name: str) -> bool:
    with calling(f"has_collection {name!r}"):
        return not client.has_collection(name)


def resolve(client: Any, name: str) -> str | None:
    """The collection ``name`` names: itself (a plain collection), an alias's target, None when there is neither."""
    from pymilvus.exceptions import MilvusException

    try:
        return str(client.describe_collection(name).get("collection_name") or name)
    except MilvusException:
        if _missing(client, name):
            return None
        with calling(f"describe_collection {name!r}"):
            raise


def alias_target(client: Any, alias: str) -> str | None:
    """The collection the alias ``alias`` names (None: no such alias; asked first, so that pymilvus logs no
    error for it)."""
    with calling("list_aliases"):
        if alias not in (client.list_aliases().get("aliases") or []):
            return None
    with calling(f"describe_alias {alias!r}"):
        return str(client.describe_alias(alias)["collection_name"])


def point(client: Any, alias: str, collection: str) -> None:
    """Make ``alias`` name ``collection`` (created, or moved in one step: ``alter_alias``)."""
    with calling(f"alias {alias!r} -> {collection!r}"):
        if alias_target(client, alias) is None:
            client.create_alias(collection, alias)
        else:
            client.alter_alias(collection, alias)


def _properties(client: Any, collection: str) -> dict[str, Any]:
    with calling(f"describe_collection {collection!r}"):
        return dict(client.describe_collection(collection).get("properties") or {})


def collection_manifest(client: Any, collection: str) -> dict[str, Any]:
    """The lookalike manifest a collection carries (``{}`` when it has none, or one that cannot be read)."""
    try:
        return dict(json.loads(_properties(client, collection).get(MANIFEST_PROPERTY) or "{}"))
    except (ValueError, TypeError):
        return {}


def mark_generation(client: Any, name: str, collection: str, n: int) -> dict[str, Any]:
    """Record in ``collection`` that it is generation ``n`` of catalogue ``name`` (the property
    :data:`GENERATION_OF`, and ``generation`` in its manifest, which ``/healthz`` reports); returns the manifest."""
    raw = _properties(client, collection).get(MANIFEST_PROPERTY)
    manifest = {**json.loads(raw), "generation": int(n)} if raw else {}
    props = {GENERATION_OF: name, **({MANIFEST_PROPERTY: json.dumps(manifest, sort_keys=True)} if raw else {})}
    with calling(f"alter_collection_properties {collection!r}"):
        client.alter_collection_properties(collection, props)
    return manifest


def generation_collections(client: Any, name: str) -> dict[int, str]:
    """The generations of catalogue ``name`` present: number -> collection (only collections marked as its)."""
    with calling("list_collections"):
        names = client.list_collections()
    out: dict[int, str] = {}
    for collection in names:
        found = re.fullmatch(re.escape(name) + r"__g(\d+)", collection)
        if found and _properties(client, collection).get(GENERATION_OF) == name:
            out[int(found.group(1))] = collection
    return dict(sorted(out.items()))


def _load(client: Any, collection: str) -> None:
    with calling(f"loading collection {collection!r}"):
        client.load_collection(collection)  # a rename releases it on Milvus Lite (not on a 2.3 server)


def adopt(client: Any, name: str) -> str:
    """Make catalogue ``name`` an alias (a no-op when it is one) and return the collection it names. A plain
    collection becomes ``NAME__g0`` (errors collection first, so a process opening it meanwhile finds its
    errors), alias ``NAME`` created at once and the collection loaded again: searches fail for that moment (the
    time of a load), and a process bound to the plain collection then fails its writes (the guard) until it opens
    the catalogue again. A rename done without its alias (an adoption interrupted) is finished here."""
    g0 = generation_collection(name, 0)
    target = resolve(client, name)
    if target is None:
        if not _missing(client, g0) and _properties(client, g0).get(GENERATION_OF) == name:
            point(client, name, g0)  # an adoption interrupted between the rename and the alias
            _load(client, g0)
            return g0
        raise CatalogNotFoundError(f"no lookalike catalogue {name!r} (no such collection or alias)")
    if target != name:
        return target
    if not _missing(client, g0):
        raise CatalogError(f"cannot turn {name!r} into an alias: a collection {g0!r} exists already")
    with calling(f"renaming {name!r} to {g0!r}"):
        if not _missing(client, name + ERRORS_SUFFIX) and _missing(client, g0 + ERRORS_SUFFIX):
            client.rename_collection(name + ERRORS_SUFFIX, g0 + ERRORS_SUFFIX)
        client.alter_collection_properties(name, {GENERATION_OF: name})  # before the rename: found if cut short
        client.rename_collection(name, g0)
    point(client, name, g0)
    _load(client, g0)
    with contextlib.suppress(CatalogError):
        _load(client, g0 + ERRORS_SUFFIX)
    return g0


class GuardedMilvusBackend(MilvusBackend):
    """A :class:`MilvusBackend` opened through catalogue name ``name``: every write first checks that ``name``
    still names this backend's collection, so a write cannot reach a generation that no longer serves."""

    def __init__(self, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name or self.collection

    def check_serving(self) -> None:
        """Raise :class:`CatalogSwitchedError` unless the catalogue's name still names this collection."""
        now = resolve(self.client, self.name)
        if now != self.collection:
            raise CatalogSwitchedError(
                f"the Milvus catalogue {self.name!r} switched from collection {self.collection!r} to {now!r} "
                "(lookalike reindex); nothing was written: open it again and retry"
            )

    def upsert(self, items: Sequence[UpsertItem], errors: Sequence[tuple[str, str | None, str]] = ()) -> None:
        self.check_serving()
        super().upsert(items, errors)

    def delete(self, product_ids: Sequence[str]) -> tuple[int, list[str]]:
        self.check_serving()
        return super().delete(product_ids)
