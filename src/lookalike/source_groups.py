"""The rows of one product in an export, merged into one product.

An export may give a product in several rows, not always next to each other: Shopify has one row per
variant and per picture, the later ones carrying only the ``Handle``, the variant's fields and the next
``Image Src``. Rules: the first non-blank value of a field wins (a blank cell never overwrites, a later row
only fills what is still blank); every row adds its pictures (each picture once); each row with variant
fields adds a variant. A value that cannot be read (a price, a stock count) makes the product an error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from typing import Any

from lookalike.errors import InvalidProductError
from lookalike.product import Product
from lookalike.source_columns import ColumnPlan
from lookalike.source_values import (
    category_path,
    clean,
    parse_price,
    parse_quantity,
    parse_stock,
    split_list,
    split_pictures,
    strip_html,
)

__all__ = ["ProductGroup"]

Row = Mapping[str | None, Any]
_FIELDS = ("title", "brand", "category", "subcategory", "article_type", "colour", "gender", "url")


class ProductGroup:
    """The merged rows of one product id."""

    def __init__(self, pid: str) -> None:
        self.pid = pid
        self.fields: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.price_currency: str | None = None
        self.pictures: list[tuple[tuple[float, ...], str]] = []  # (order, cell value)
        self.variants: list[dict[str, Any]] = []
        self.option_names: dict[int, str] = {}
        self.error: str | None = None
        self.rows = 0

    def fail(self, line: int, message: str) -> None:
        """Keep the first error of the product."""
        if self.error is None:
            self.error = f"line {line}: {message}"

    def add(self, row: Row, line: int, plan: ColumnPlan) -> None:
        """Merge one row of the product."""
        index, self.rows = self.rows, self.rows + 1
        for fld, col in plan.fields.items():
            value = clean(row.get(col))
            if fld == "id" or not value or fld in self.fields:
                continue
            try:
                if fld == "price":
                    self.fields[fld], self.price_currency = parse_price(value)
                elif fld == "in_stock":
                    self.fields[fld] = parse_stock(value)
                else:
                    self.fields[fld] = value
            except ValueError as exc:
                self.fail(line, str(exc))
        for col in plan.extra:
            value = clean(row.get(col))
            if value and col not in self.extra:
                self.extra[col] = value
        for col in plan.html:
            value = strip_html(clean(row.get(col)))
            if value and "description" not in self.extra:
                self.extra["description"] = value
        if plan.tags and "tags" not in self.extra and (tags := split_list(clean(row.get(plan.tags)))):
            self.extra["tags"] = tags
        self._add_pictures(row, index, plan)
        if plan.has_variants:
            self._add_variant(row, line, plan)

    def _add_pictures(self, row: Row, index: int, plan: ColumnPlan) -> None:
        position = math.inf
        if plan.position:
            with contextlib.suppress(ValueError):
                position = float(clean(row.get(plan.position)) or "inf")
        for rank, col in enumerate(plan.pictures):
            for i, value in enumerate(split_pictures(clean(row.get(col)))):
                if plan.position and col == plan.main_picture:  # Shopify: Image Src by Image Position
                    order: tuple[float, ...] = (0, position, index, i)
                else:
                    order = (1 if plan.position else 0, index, rank, i)
                self.pictures.append((order, value))

    def _add_variant(self, row: Row, line: int, plan: ColumnPlan) -> None:
        cells = {role: clean(row.get(col)) for role, col in plan.variant.items()}
        options: dict[str, str] = {}
        for n, (name_col, value_col) in plan.options.items():
            name = clean(row.get(name_col)) if name_col else ""
            if name:
                self.option_names.setdefault(n, name)
            value = clean(row.get(value_col))
            if value:
                options[self.option_names.get(n) or name or f"Option{n}"] = value
        if not options and not any(cells.get(r) for r in ("sku", "price", "inventory")):
            return  # a picture row, not a variant
        if options == {"Title": "Default Title"}:
            options = {}  # Shopify's placeholder for a product without options
        try:
            price, _ = parse_price(cells.get("price", ""))
            inventory = parse_quantity(cells.get("inventory", ""), "inventory")
        except ValueError as exc:
            self.fail(line, str(exc))
            return
        variant: dict[str, Any] = {"sku": cells.get("sku") or None, "options": options, "price": price}
        variant["inventory"] = inventory
        for key in ("policy", "tracker"):
            if key in plan.variant:
                variant[key] = cells[key] or None
        if cells.get("image"):
            variant["image"] = cells["image"]
        for col in plan.variant_other:
            if value := clean(row.get(col)):
                variant[col] = value
        self.variants.append(variant)

    def _stock_from_variants(self) -> bool | None:
        """Sellable when a variant has stock, is not tracked, or sells on when out (policy "continue");
        not when every variant has a count and none is above 0; else unknown."""
        counts = []
        for v in self.variants:
            if (v.get("policy") or "").lower() == "continue" or ("tracker" in v and not v["tracker"]):
                return True
            counts.append(v.get("inventory"))
        if any(c is not None and c > 0 for c in counts):
            return True
        return False if counts and all(c is not None for c in counts) else None

    def build(self, resolve: Callable[[str], str | None]) -> tuple[Product, list[str], str | None]:
        """``(product, picture sources, error)``; ``resolve`` turns a cell's picture into a path or URL
        (and ``''`` into a picture found by the product's id, or None)."""
        if self.error is not None:
            return Product(id=self.pid), [], self.error
        fields = {k: v for k, v in self.fields.items() if k in _FIELDS or k in ("price", "in_stock")}
        extra = dict(self.extra)
        currency = self.fields.get("currency") or self.price_currency
        if path := self.fields.get("product_type"):
            extra["product_type"] = path
            parts = category_path(path)
            fields.setdefault("article_type", parts[-1])
            if len(parts) > 1:
                fields.setdefault("category", parts[0])
            if len(parts) > 2:
                fields.setdefault("subcategory", parts[-2])
        if self.variants:
            if "in_stock" not in fields:
                fields["in_stock"] = self._stock_from_variants()
            for v in self.variants:
                v.pop("tracker", None)
                if "image" in v:
                    v["image"] = resolve(v["image"]) or v["image"]
            extra["variants"] = self.variants
            prices = [v["price"] for v in self.variants if v["price"] is not None]
            if "price" not in fields and prices:
                fields["price"] = min(prices)
        if currency:
            extra["currency"] = currency
        sources = [s for _, value in sorted(self.pictures, key=lambda p: p[0]) if (s := resolve(value))]
        if not sources and (found := resolve("")):
            sources = [found]
        sources = list(dict.fromkeys(sources))
        try:
            product = Product(id=self.pid, extra=extra, images=sources, **fields)
        except InvalidProductError as exc:
            return Product(id=self.pid), [], str(exc)
        return product, sources, None
