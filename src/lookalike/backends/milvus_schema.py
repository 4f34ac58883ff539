"""What a lookalike catalogue looks like in Milvus: field names, row values, filter expressions.

Every string literal of an expression goes through :func:`milvus_string` (backslashes and double
quotes escaped, control characters refused) and every number through :func:`milvus_number`; see
:mod:`lookalike.backends.milvus` for the whole layout.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from lookalike.errors import CatalogError, InvalidQueryError
from lookalike.product import FILTER_FIELDS, Filters, Product

__all__ = [
    "ERRORS_SUFFIX",
    "MANIFEST_PROPERTY",
    "MAX_VARCHAR",
    "NAME_RE",
    "PICTURE_FIELDS",
    "PICTURE_SEP",
    "PRODUCT_FIELDS",
    "STATE_FIELDS",
    "TEXT_FIELDS",
    "VECTOR",
    "filter_expression",
    "fold",
    "milvus_number",
    "milvus_string",
    "picture_key",
]

MANIFEST_PROPERTY = "lookalike.manifest"
ERRORS_SUFFIX = "__lookalike_errors"
VECTOR = "vector"
TEXT_FIELDS = ("title", "brand", "category", "subcategory", "article_type", "colour", "gender", "image", "url")
STATE_FIELDS = ("image_sha", "image_file", "meta_hash")
PRODUCT_FIELDS = ("id", *TEXT_FIELDS, "price", "extra")
#: The fields of a collection made for several pictures per product (a row per picture).
PICTURE_FIELDS = ("product", "position", "images", "stock")
PICTURE_SEP = "\ue000"  # a private-use character: joins a product id and a picture position in a row key
MAX_VARCHAR = 65535
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# --- expressions -----------------------------------------------------------------------------------
def milvus_string(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal; control characters are refused."""
    if not isinstance(value, str):
        raise InvalidQueryError(f"expected a string, got {type(value).__name__}")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InvalidQueryError(f"{value!r} contains a control character ({ord(ch):#04x})")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def milvus_number(value: float) -> str:
    """A finite number as a Milvus float literal."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidQueryError(f"{value!r} is not a number") from exc
    if not math.isfinite(number):
        raise InvalidQueryError(f"{value!r} is not a finite number")
    return repr(number)


def fold(value: str) -> str:
    """Lower-case ASCII letters only, like SQLite's ``NOCASE`` (the embedded backend's filters)."""
    return value.translate(_ASCII_LOWER)


def filter_expression(filters: Filters | None) -> str:
    """The Milvus boolean expression for ``filters`` (``""`` when there is no filter)."""
    if filters is None or filters.is_empty():
        return ""
    clauses: list[str] = []
    for name in FILTER_FIELDS:
        value = getattr(filters, name)
        if value in (None, "", ()):
            continue
        values = [value] if isinstance(value, str) else list(value)
        literals = ", ".join(milvus_string(fold(str(v))) for v in values)
        clauses.append(f"{name}_lc in [{literals}]")
    if filters.min_price is not None:
        clauses.append(f"price >= {milvus_number(filters.min_price)}")
    if filters.max_price is not None:
        clauses.append(f"price <= {milvus_number(filters.max_price)}")
    if filters.in_stock is not None:
        clauses.append("stock != 0" if filters.in_stock else "stock == 0")
    return " and ".join(clauses)


def _ids_expression(ids: Sequence[str]) -> str:
    return f"id in [{', '.join(milvus_string(i) for i in ids)}]"


def _expressible(ids: Iterable[str]) -> list[str]:
    """The ids that can be written in an expression (others cannot be stored, so are absent)."""
    out: list[str] = []
    for pid in dict.fromkeys(ids):
        with contextlib.suppress(InvalidQueryError):
            milvus_string(pid)
            out.append(pid)
    return out


# --- row values ------------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_VARCHAR:
        raise CatalogError(f"value too long for Milvus ({len(text)} characters): {text[:40]!r}...")
    return text


def _check_id(product_id: str) -> str:
    try:
        milvus_string(product_id)
    except InvalidQueryError as exc:
        raise CatalogError(f"product id {product_id!r} has a control character; Milvus catalogues refuse it") from exc
    if PICTURE_SEP in product_id:
        raise CatalogError(f"product id {product_id!r} holds U+E000, which Milvus catalogues keep for picture keys")
    return str(_text(product_id))


def _product(row: dict[str, Any]) -> Product:
    extra = row.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    images: list[str] = []
    with contextlib.suppress(ValueError, TypeError):
        images = [str(i) for i in json.loads(row.get("images") or "[]")]
    stock = row.get("stock")
    return Product(
        id=str(row.get("product") or row["id"]),
        **{name: row.get(name) for name in TEXT_FIELDS},
        price=row.get("price"),
        extra=dict(extra),
        images=images,
        in_stock=None if stock is None or stock < 0 else bool(stock),
    )


def picture_key(product_id: str, position: int) -> str:
    """The primary key of a product's picture row: the product id for its main picture, else the id and the
    position joined by :data:`PICTURE_SEP` (a character product ids cannot hold in a Milvus catalogue)."""
    return product_id if position == 0 else f"{product_id}{PICTURE_SEP}{position}"
