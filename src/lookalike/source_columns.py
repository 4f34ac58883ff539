"""Which column of a product export holds what: fields, pictures, variants, and what stays in ``extra``.

Names are compared case-insensitively, ignoring spaces, ``_``, ``-`` and ``.`` (``brand.name`` is
``brand_name``). A dotted or ``/``-separated name whose whole matches nothing is tried by its last part
(``priceInfo.finalPrice`` -> ``final_price``; ``Google Shopping / Gender`` -> ``gender``), except for
generic last parts such as ``name`` or ``id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lookalike.errors import SourceError

__all__ = ["DEFAULT_COLUMNS", "PICTURE_FIELD", "ColumnPlan", "plan_columns", "resolve_columns"]

# field -> candidate column names, compared by their normalised form (see the module docstring).
# fmt: off
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "product_id", "productid", "handle", "sku", "item_id", "style_id"),
    "title": (
        "title", "name", "product_name", "productdisplayname", "display_name", "short_description", "description",
    ),
    "brand": ("brand", "brand_name", "vendor", "manufacturer"),
    "category": ("category", "mastercategory", "master_category", "department"),
    "subcategory": ("subcategory", "sub_category"),
    "article_type": ("article_type", "articletype", "type"),
    "colour": ("colour", "color", "basecolour", "base_colour", "basecolor"),
    "gender": ("gender", "sex"),
    "price": ("price", "sale_price", "list_price", "final_price", "current_price"),
    "image": (
        "image", "image_path", "image_url", "img", "imageurl", "path", "filename", "file", "link_image",
        "image_link", "image_src", "main_image", "main_image_url",
    ),
    "url": ("url", "product_url", "link", "page_url"),
    "currency": ("currency", "currency_code"),
    "in_stock": (
        "in_stock", "instock", "availability", "stock_total", "stock", "stock_status", "stock_level",
        "quantity", "qty", "stock_quantity", "inventory", "inventory_quantity", "available",
    ),
    # a path "Apparel > Topwear > Tshirts": article_type, category and subcategory where not given
    "product_type": ("product_type", "product_category", "category_path"),
}
# fmt: on
#: ``--map images=COL[,COL...]``: extra picture columns, after the main one.
PICTURE_FIELD = "images"

_GENERIC = {"name", "id", "value", "code", "type", "url", "text", "link", "key"}
_CUTOUT = {"imagescutout", "imagecutout", "cutout"}
_NUMBERED = re.compile(r"(?:image|img|picture|photo|imageurl|imagelink|imagepath)s?(\d+)")
_LISTS = {
    "additionalimagelink", "additionalimagelinks", "additionalimages", "additionalimageurls", "images",
    "imageurls", "imagelinks", "imagepaths", "otherimages", "gallery", "galleryimages", "pictures", "photos",
}  # fmt: skip
_OPTION = re.compile(r"option(\d+)(name|value)")
_VARIANT_ROLES = {
    "variantsku": "sku", "variantprice": "price", "variantinventoryqty": "inventory",
    "variantinventoryquantity": "inventory", "variantinventorypolicy": "policy", "variantinventorytracker": "tracker",
    "variantimage": "image",
}  # fmt: skip
_HTML = {"body(html)", "bodyhtml", "descriptionhtml", "htmldescription"}


def norm(name: str) -> str:
    """A column name as compared: lower case, without spaces, ``_``, ``-`` and ``.``."""
    return re.sub(r"[\s_\-.]", "", name.strip().lower())


def _last_part(name: str) -> str | None:
    parts = [p for p in re.split(r"[./]", name) if p.strip()]
    return norm(parts[-1]) if len(parts) > 1 and norm(parts[-1]) not in _GENERIC else None


def resolve_columns(header: list[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map product fields to columns: explicit ``overrides`` first, then the defaults by whole name, then
    dotted names by their last part. (``overrides`` may also name :data:`PICTURE_FIELD`; see
    :func:`plan_columns`.)"""
    mapping: dict[str, str] = {}
    for fld, column in (overrides or {}).items():
        if fld == PICTURE_FIELD:
            continue
        if fld not in DEFAULT_COLUMNS:
            known = ", ".join([*DEFAULT_COLUMNS, PICTURE_FIELD])
            raise SourceError(f"unknown field {fld!r} in column mapping (fields: {known})")
        if column not in header:
            raise SourceError(f"column {column!r} (mapped to {fld}) is not in the CSV header")
        mapping[fld] = column
    used = set(mapping.values())
    for by_name in ({norm(h): h for h in header}, {_last_part(h): h for h in reversed(header) if _last_part(h)}):
        for fld, candidates in DEFAULT_COLUMNS.items():
            if fld in mapping:
                continue
            for cand in candidates:
                col = by_name.get(norm(cand))
                if col is not None and col not in used and not _is_variant(norm(col)):
                    mapping[fld] = col
                    used.add(col)
                    break
    return mapping


def _is_variant(n: str) -> bool:
    return n.startswith("variant") or _OPTION.fullmatch(n) is not None


@dataclass
class ColumnPlan:
    """Where everything is in one export's header."""

    fields: dict[str, str]  # field -> column (id, title, ..., price, currency, in_stock, product_type)
    pictures: list[str] = field(default_factory=list)  # picture columns, the main picture's first
    main_picture: str | None = None  # the column whose pictures come first (ordered by ``position``)
    position: str | None = None  # Shopify's Image Position
    variant: dict[str, str] = field(default_factory=dict)  # role (sku, price, inventory, ...) -> column
    options: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # n -> (name column, value column)
    variant_other: list[str] = field(default_factory=list)  # other per-variant columns, kept by name
    html: list[str] = field(default_factory=list)  # HTML bodies, as text in extra["description"]
    tags: str | None = None  # comma-separated tags, a list in extra["tags"]
    extra: list[str] = field(default_factory=list)  # the rest, kept in extra by their own names

    @property
    def has_variants(self) -> bool:
        return bool(self.options) or any(r in self.variant for r in ("sku", "price", "inventory"))


def _picture_rank(column: str, main: str | None, chosen: list[str]) -> tuple[int, int] | None:
    """Where a picture column goes among a product's pictures (None: not a picture column)."""
    n = norm(column)
    if column == main:
        return (0, 0)
    if n in _CUTOUT:
        return (1, 0)
    m = _NUMBERED.fullmatch(n)
    if m:
        return (2, int(m.group(1)))
    if re.match(r"images?\s*[./]", column.strip(), re.I):
        return (3, 0)  # images.model, images.flat, ...
    if column in chosen:
        return (4, chosen.index(column))
    if n in _LISTS:
        return (5, 0)
    if n == "variantimage":
        return (6, 0)
    return None


def _chosen_pictures(header: list[str], overrides: Mapping[str, str] | None) -> list[str]:
    value = (overrides or {}).get(PICTURE_FIELD)
    if not value:
        return []
    cols = [value] if value in header else [c.strip() for c in value.split(",") if c.strip()]
    for col in cols:
        if col not in header:
            raise SourceError(f"column {col!r} (mapped to {PICTURE_FIELD}) is not in the CSV header")
    return cols


def plan_columns(header: list[str], overrides: Mapping[str, str] | None = None) -> ColumnPlan:
    """Sort a header's columns into fields, pictures, variant columns and extras."""
    fields = resolve_columns(header, overrides)
    chosen = _chosen_pictures(header, overrides)
    main = fields.pop("image", None)
    mapped = set(fields.values())
    ranked: list[tuple[tuple[int, int], int, str]] = []
    plan = ColumnPlan(fields)
    for i, col in enumerate(header):
        if not col or not col.strip() or col in mapped:
            continue
        n = norm(col)
        rank = _picture_rank(col, main, chosen)
        if rank is not None:
            ranked.append((rank, i, col))
            if n == "variantimage":
                plan.variant["image"] = col
        elif n == "imageposition":
            plan.position = col
        elif n in _VARIANT_ROLES:
            plan.variant[_VARIANT_ROLES[n]] = col
        elif (m := _OPTION.fullmatch(n)) is not None:
            name_col, value_col = plan.options.get(int(m.group(1)), (None, ""))
            plan.options[int(m.group(1))] = (col, value_col) if m.group(2) == "name" else (name_col, col)
        elif n.startswith("variant"):
            plan.variant_other.append(col)
        elif n in _HTML:
            plan.html.append(col)
        elif n == "tags":
            plan.tags = col
        else:
            plan.extra.append(col)
    plan.pictures = [col for _, _, col in sorted(ranked)]
    plan.main_picture = plan.pictures[0] if plan.pictures else None
    plan.options = {k: v for k, v in sorted(plan.options.items()) if v[1]}
    return plan
