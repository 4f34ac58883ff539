"""What differs between the Milvus versions lookalike supports, and whether a collection is a whole catalogue.

Supported: Milvus Lite (the ``milvus-lite`` package) and Milvus servers (standalone or distributed) **2.3 and
newer**. Older servers lack ``upsert`` and ``count(*)``, which the backend is built on, and are refused with a
message saying so. What depends on the version, read once per connection with ``get_server_version``:

======================  ==============================  ==================================================
server                  scalar indexes                  a missing value (a product without a brand, price)
======================  ==============================  ==================================================
2.3                     ``Trie`` (VARCHAR)              fields cannot be null: :data:`NULL_TEXT` for text,
                                                        NaN for the price (NaN fails every comparison, as
                                                        NULL does in SQL, so price filters leave it out)
                                                        no partition key: 2.3's upsert puts a row in the
                                                        wrong partition (milvus-io/milvus#30607), so
                                                        filters on the key miss it
2.4                     ``INVERTED``                    as on 2.3
2.5 and newer, Lite     ``INVERTED``                    nullable fields
======================  ==============================  ==================================================

Which way a collection stores missing values is read from its schema (nullable fields or not), so a
collection keeps working after the server is upgraded. Every row read goes through :func:`decode_row`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.backends.milvus_client import calling, is_lite_uri, redact
from lookalike.backends.milvus_schema import MAX_VARCHAR, STATE_FIELDS, TEXT_FIELDS, VECTOR
from lookalike.errors import CatalogError
from lookalike.product import FILTER_FIELDS

__all__ = [
    "MIN_SERVER",
    "NULLABLE_FIELDS",
    "NULL_TEXT",
    "ServerFeatures",
    "check_complete",
    "create_errors_collection",
    "decode_row",
    "drop_quietly",
    "encode_nulls",
    "fields_nullable",
    "parse_version",
    "server_features",
]

MIN_SERVER = (2, 3)
#: A missing text value in a collection whose fields cannot be null (Milvus 2.3, 2.4): a private-use character.
NULL_TEXT = "\ue001"
#: The fields of a product row that may hold no value.
NULLABLE_FIELDS = (*TEXT_FIELDS, *STATE_FIELDS, "price", *(f"{f}_lc" for f in FILTER_FIELDS), "images")
_REQUIRED = ("id", VECTOR, "meta_hash", "image_sha")


@dataclass(frozen=True)
class ServerFeatures:
    """What the Milvus at a URI offers: its version string, nullable fields, the scalar index type."""

    version: str
    nullable: bool
    scalar_index: str
    partition_key: bool = True  # upserts place rows in their key's partition (not before 2.4: milvus#30607)


def parse_version(raw: str) -> tuple[int, int, int] | None:
    """``"v2.3.5-lite"`` -> ``(2, 3, 5)``; None when no version number is found."""
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", raw)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def server_features(client: Any, uri: str) -> ServerFeatures:
    """The features of the Milvus behind ``client``; a server older than :data:`MIN_SERVER` is refused."""
    with calling("get_server_version"):
        raw = str(client.get_server_version())
    if is_lite_uri(uri) or raw.startswith("milvus_lite"):
        return ServerFeatures(raw, True, "INVERTED")
    version = parse_version(raw)
    if version is None:  # an unknown version string: assume a current server
        return ServerFeatures(raw, True, "INVERTED")
    if version[:2] < MIN_SERVER:
        raise CatalogError(
            f"the Milvus server at {redact(uri)} is version {raw}; lookalike needs Milvus "
            f"{MIN_SERVER[0]}.{MIN_SERVER[1]} or newer (upgrade the server, or migrate to a newer one)"
        )
    newer = version[:2] >= (2, 4)
    return ServerFeatures(raw, version[:2] >= (2, 5), "INVERTED" if newer else "Trie", partition_key=newer)


def fields_nullable(description: dict[str, Any]) -> bool:
    """Whether a collection (``describe_collection``) stores missing values as nulls (its ``title`` field)."""
    for f in description.get("fields", []):
        if f.get("name") in ("title", "image"):
            return bool(f.get("nullable"))
    return True


def encode_nulls(rows: Iterable[dict[str, Any]], fields: Sequence[str] = NULLABLE_FIELDS) -> list[dict[str, Any]]:
    """Rows for a collection whose fields cannot be null: a missing text is :data:`NULL_TEXT`, a missing price NaN."""
    out = []
    for row in rows:
        row = dict(row)
        for name in fields:
            if row.get(name) is None:
                row[name] = math.nan if name == "price" else NULL_TEXT
        out.append(row)
    return out


def decode_row(row: Any) -> dict[str, Any]:
    """A row as read, with :data:`NULL_TEXT` and a NaN price back to None (a no-op on nullable collections)."""
    out = dict(row)
    for name, value in out.items():
        if (isinstance(value, str) and value == NULL_TEXT) or (
            name == "price" and isinstance(value, float) and math.isnan(value)
        ):
            out[name] = None
    return out


def check_complete(client: Any, collection: str, where: str) -> None:
    """Refuse a collection that is not a whole lookalike catalogue: fields missing, or indexes missing (a
    creation that did not finish, under an older lookalike). The ``product`` index is made last."""
    with calling(f"describe_collection {collection!r}"):
        names = {f.get("name") for f in client.describe_collection(collection).get("fields", [])}
        indexed = set(client.list_indexes(collection))
    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        raise CatalogError(f"{where} is not a lookalike catalogue (no field {', '.join(missing)})")
    wanted = [VECTOR, *(["product"] if "position" in names else [])]
    if any(n not in indexed for n in wanted):
        raise CatalogError(
            f"{where} is not a complete lookalike catalogue (indexes missing: its creation did not finish); "
            "drop the collection and ingest again"
        )


def drop_quietly(client: Any, names: Sequence[str]) -> None:
    """Drop collections, ignoring errors (clearing up after a creation that failed)."""
    for name in names:
        with contextlib.suppress(Exception):
            if client.has_collection(name):
                client.drop_collection(name)


def create_errors_collection(client: Any, name: str, consistency_level: str, nullable: bool) -> None:
    """The small collection of a catalogue's ingest errors (made when missing)."""
    from pymilvus import DataType

    with calling(f"creating collection {name!r}"):
        if client.has_collection(name):
            return
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="lookalike ingest errors")
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        schema.add_field("image", DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=nullable)
        schema.add_field("error", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("at", DataType.VARCHAR, max_length=32)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
        params = client.prepare_index_params()
        params.add_index(field_name=VECTOR, index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=schema, consistency_level=consistency_level)
        client.create_index(name, params, sync=False)
        client.load_collection(name)
