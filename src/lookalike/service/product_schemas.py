"""Pydantic schemas of the catalogue's pages, product forms, facets and health."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lookalike.errors import InvalidProductError
from lookalike.product import Product, validate_product_id
from lookalike.service.patterns import WORDS_PATTERN
from lookalike.service.schemas import _HTTP_URL, _MAX_ID, _MAX_TEXT, ProductOut

__all__ = [
    "ID_PATTERN",
    "DeleteOut",
    "FacetValue",
    "FacetsOut",
    "HealthOut",
    "PriceRange",
    "ProductForm",
    "ProductPage",
    "UpsertOut",
]


#: A product id as JSON Schema says it (ECMA regex): something besides whitespace, no control characters.
ID_PATTERN = WORDS_PATTERN


def _a_file(schema: dict[str, Any]) -> None:
    """An optional upload is a file part or nothing: the schema says ``binary``, not ``binary or null`` (clients
    write a null as the text field "null", which the server takes as "not given", and a text field as an image
    is refused: 422)."""
    schema.pop("anyOf", None)
    schema.update(type="string", format="binary")


# --- products -----------------------------------------------------------------------------------
class ProductPage(BaseModel):
    """A page of the catalogue, in insertion order."""

    total: int = Field(description="Products matching the filters.")
    offset: int
    limit: int
    items: list[ProductOut]


class ProductForm(BaseModel):
    """Add or update a product (multipart). On update, fields left out keep their value; send an empty
    field to clear it. A new product needs ``image`` (a file) or ``image_url``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=_MAX_ID,
        description="The product id: something besides whitespace, no control characters, not '.' or '..' (the "
        "rule of every way in; '/' is fine: the API writes an id as one percent-encoded path segment).",
        json_schema_extra={"pattern": ID_PATTERN, "not": {"enum": [".", ".."]}},  # enforced by validate_product_id
    )
    title: str | None = Field(default=None, max_length=1000)
    brand: str | None = Field(default=None, max_length=_MAX_TEXT)
    category: str | None = Field(default=None, max_length=_MAX_TEXT)
    subcategory: str | None = Field(default=None, max_length=_MAX_TEXT)
    article_type: str | None = Field(default=None, max_length=_MAX_TEXT)
    colour: str | None = Field(default=None, max_length=_MAX_TEXT)
    gender: str | None = Field(default=None, max_length=_MAX_TEXT)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="A finite price.")
    url: str | None = Field(default=None, max_length=2048)
    image: bytes | None = Field(default=None, description="The product picture (a file).", json_schema_extra=_a_file)
    image_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Or an http(s) URL to fetch it from: it must start with http:// or https:// (no leading "
        "space; never a server-side file path).",
        json_schema_extra={"pattern": _HTTP_URL},
    )

    @field_validator("id")
    @classmethod
    def _product_id(cls, value: str) -> str:
        try:  # the one rule for ids (lookalike.product), so the API takes what a CSV takes
            return validate_product_id(value)
        except InvalidProductError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("price", mode="before")
    @classmethod
    def _blank_price(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("image_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        # Exactly as sent, never trimmed: the library reads any other string as a local file path.
        if value is not None and not re.match(_HTTP_URL, value):
            raise ValueError("image_url must start with http:// or https:// (a URL, not a file path)")
        return value

    @model_validator(mode="after")
    def _one_image(self) -> ProductForm:
        if self.image is not None and self.image_url is not None:
            raise ValueError("give image or image_url, not both")
        return self

    def merged_into(self, existing: Product | None) -> Product:
        """The product to store: these fields over ``existing`` (blank strings clear a field)."""
        base = existing.to_dict() if existing is not None else {"id": self.id}
        for name in self.model_fields_set - {"image", "image_url"}:
            value = getattr(self, name)
            base[name] = None if isinstance(value, str) and not value.strip() else value
        if self.image_url is not None:
            base["image"] = self.image_url
        elif self.image is not None:
            base["image"] = "upload"
        return Product.from_dict(base)


class UpsertOut(BaseModel):
    status: Literal["added", "updated"]
    product: ProductOut


class DeleteOut(BaseModel):
    id: str
    deleted: bool


# --- facets & health ----------------------------------------------------------------------------
class FacetValue(BaseModel):
    value: str
    count: int


class PriceRange(BaseModel):
    min: float
    max: float


class FacetsOut(BaseModel):
    """Distinct values (most common first) and counts of each filter field, and the price range."""

    total: int = Field(description="Products matching the filters (all of them: the catalogue's size).")
    fields: dict[str, list[FacetValue]] = Field(
        description="Each field's values and counts over the products matching every filter but the field's own."
    )
    price: PriceRange | None = Field(default=None, description="The price range of the products matching the filters.")
    in_stock: list[tuple[bool, int]] = Field(
        default_factory=list,
        description="How many products are known in stock (true) and out of stock (false), over those matching every "
        "filter but in_stock; empty when the catalogue says nothing of stock (no 'in stock only' switch then).",
    )


class HealthOut(BaseModel):
    status: Literal["ok"]
    products: int
    extractor: str
    model_sha256: str | None = Field(default=None, description="The SHA-256 of the serving model's weights.")
    generation: int = Field(default=0, description="The catalogue generation serving (lookalike reindex).")
