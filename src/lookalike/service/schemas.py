"""Pydantic schemas of the REST API: errors, filters, search and products as shown (the product forms, pages,
facets and health are in :mod:`lookalike.service.product_schemas`)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from lookalike.product import Filters, Hit, Product
from lookalike.service.feedback_schemas import FEEDBACK_FIELDS, FeedbackFields
from lookalike.service.kind_schemas import KindFields, QueryKind
from lookalike.service.patterns import WORDS_PATTERN, colour_pattern
from lookalike.service.region_fields import RegionForm, RegionJSON

__all__ = [
    "FILTER_NAMES",
    "ErrorOut",
    "FiltersIn",
    "HitOut",
    "ProductOut",
    "QueryInfo",
    "SearchRequest",
    "SearchResponse",
    "SearchUpload",
    "id_segment",
    "image_url",
    "picture_url",
]

FILTER_NAMES = ("category", "subcategory", "article_type", "gender", "colour", "brand")
_MAX_TEXT = 200
_HTTP_URL = "^[Hh][Tt][Tt][Pp][Ss]?://"  # an http(s) URL, as sent (no leading space)
_MAX_ID = 200


def filter_list_schema(schema: dict[str, Any]) -> None:
    """A filter field's values as the schema states them, on its array branch: at most 50 of at most
    ``_MAX_TEXT`` characters (the validator below enforces it: 422)."""
    for branch in schema.get("anyOf", [schema]):
        if isinstance(branch, dict) and branch.get("type") == "array":
            branch["maxItems"] = 50
            branch["items"] = {"type": "string", "maxLength": _MAX_TEXT}


_COLLAPSE = (
    "Show products with the very same picture once: the best-ranked, listing the others in its duplicates "
    "(default: the service's setting, on)."
)


def id_segment(product_id: str) -> str:
    """``product_id`` as one URL path segment: percent-encoded, and ``.``/``..`` (which clients would
    resolve as "this"/"parent" segments) written ``%2E``/``%2E%2E``."""
    if product_id in (".", ".."):
        return "%2E" * len(product_id)
    return quote(product_id, safe="")


def image_url(product_id: str) -> str:
    """Where the API serves a product's stored picture."""
    return f"/api/products/{id_segment(product_id)}/image"


def picture_url(product_id: str, position: int) -> str:
    """Where the API serves a product's picture at ``position``."""
    return f"/api/products/{id_segment(product_id)}/images/{int(position)}"


def _as_list(value: Any) -> Any:
    """A filter value may be one string or a list of strings; empty strings mean 'no filter'."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        cleaned = [v.strip() if isinstance(v, str) else v for v in items]
        cleaned = [v for v in cleaned if v != ""]
        return cleaned or None
    return value


# --- errors -------------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    """Every error: a human-readable ``detail``; validation errors also list ``errors``."""

    detail: str = Field(examples=["no product with id '123'"])
    errors: list[dict[str, Any]] | None = Field(default=None, description="Per-field problems (422 only).")


# --- filters ------------------------------------------------------------------------------------
class _FilterFields(BaseModel):
    """The filter fields, shared by the JSON ``filters`` object and the flat multipart search form."""

    model_config = ConfigDict(extra="forbid")

    category: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    subcategory: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    article_type: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    gender: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    colour: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    brand: list[str] | None = Field(default=None, json_schema_extra=filter_list_schema)
    min_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_price: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Below min_price, the range is empty: nothing matches."
    )
    in_stock: bool | None = Field(
        default=None,
        description="true: leave out the products known to be out of stock (those whose stock is not known stay); "
        "false: only those out of stock.",
    )

    @field_validator(*FILTER_NAMES, mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) > 50:  # counted as sent (empty values included)
            raise ValueError(f"at most 50 values of at most {_MAX_TEXT} characters")
        return _as_list(value)

    @field_validator(*FILTER_NAMES)
    @classmethod
    def _short(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) > 50 or any(len(v) > _MAX_TEXT for v in value)):
            raise ValueError(f"at most 50 values of at most {_MAX_TEXT} characters")
        return value


class FiltersIn(_FilterFields):
    """Metadata filters: equality (case-insensitive; a list means any of) and a price range (a ``min_price`` above
    ``max_price`` is an empty range: nothing matches)."""

    # the same fields, with examples for the JSON schema (an overridden field keeps its place)
    category: list[str] | None = Field(default=None, examples=[["Apparel"]], json_schema_extra=filter_list_schema)
    article_type: list[str] | None = Field(
        default=None, examples=[["Tshirts", "Shirts"]], json_schema_extra=filter_list_schema
    )

    def to_filters(self) -> Filters:
        return Filters.from_kwargs(**self.model_dump())


# --- search -------------------------------------------------------------------------------------
def _check_words(value: str | None) -> str | None:
    """Query words as the catalogue takes them (not blank, no control characters, at most 500 characters)."""
    from lookalike.catalog.text_query import check_text
    from lookalike.errors import InvalidQueryError

    try:
        return None if value is None else check_text(value)
    except InvalidQueryError as exc:
        raise ValueError(str(exc)) from None


_WORDS_DESCRIPTION = (
    "Words: alone ('navy blue shirt for men') or moving an image, url or product_id search ('in red'). A colour "
    "named is the colour preference (unless 'colour' is given); a gender or article type named, a small bonus."
)
_MAX_WORDS = 500


class SearchRequest(FeedbackFields, KindFields):
    """JSON search: by image URL, by catalogue product ("more like this") or by words: exactly one of ``url``
    and ``product_id``, or ``text`` alone, or ``text`` with one of them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://example.com/photo.jpg", "k": 12},
                {"product_id": "10006", "k": 12, "filters": {"gender": "Men", "max_price": 50}},
                {"text": "navy blue shirt for men", "k": 12},
                {"product_id": "10006", "text": "in red"},
                {"url": "https://example.com/photo.jpg", "positive": ["10006"], "negative": ["10007"]},
            ],
            # exactly one of url and product_id (the other absent or null), text optional with either;
            # or text alone (url and product_id absent or null)
            "oneOf": [
                {"required": ["url"], "properties": {"url": {"type": "string"}, "product_id": {"type": "null"}}},
                {
                    "required": ["product_id"],
                    "properties": {
                        "product_id": {"type": "string"},
                        **{n: {"type": "null"} for n in ("url", "region")},
                    },
                },
                {
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string"},
                        **{name: {"type": "null"} for name in ("url", "product_id", "region")},
                    },
                },
                {  # liked products alone: "more like these"
                    "required": ["positive"],
                    "properties": {
                        "positive": {"type": "array", "minItems": 1},
                        **{name: {"type": "null"} for name in ("url", "product_id", "text", "region")},
                    },
                },
            ],
        },
    )

    url: str | None = Field(
        default=None,
        max_length=2048,
        description="An http(s) image URL to fetch (leading spaces are ignored).",
        json_schema_extra={"pattern": "^\\s*[Hh][Tt][Tt][Pp][Ss]?://"},
    )
    product_id: str | None = Field(default=None, min_length=1, max_length=_MAX_ID)
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_WORDS,
        description=_WORDS_DESCRIPTION,
        examples=["in red"],
        json_schema_extra={"pattern": WORDS_PATTERN},
    )
    k: int | None = Field(default=None, ge=1, description="How many results (default and maximum: settings).")
    filters: FiltersIn = Field(default_factory=FiltersIn)
    colour: str | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_TEXT,
        description="Colour preference ('this, but in red'): a colour name or family ranked first, in any case "
        "(others: 422). Not a filter (other colours still follow); the exact filter is filters.colour.",
        examples=["red"],
        json_schema_extra={"pattern": colour_pattern()},
    )
    colour_rank: bool | None = Field(
        default=None, description="Re-rank by the query's colour (default: the service's setting, on)."
    )
    collapse: bool | None = Field(default=None, description=_COLLAPSE)
    region: RegionJSON = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value.strip() if value is not None else None

    @field_validator("text")
    @classmethod
    def _words(cls, value: str | None) -> str | None:
        return _check_words(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> SearchRequest:
        if self.url is not None and self.product_id is not None:
            raise ValueError("give at most one of url or product_id (upload a file with multipart/form-data)")
        if self.url is None and self.product_id is None and self.text is None and not self.positive:
            raise ValueError("give url, product_id, text or positive (upload a file with multipart/form-data)")
        return self


class _Upload(FeedbackFields, KindFields):
    image: bytes = Field(description="The photo: JPEG, PNG, WebP, GIF, BMP, TIFF (HEIC/AVIF when supported).")
    k: int | None = Field(default=None, ge=1)
    prefer_colour: str | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_TEXT,
        description="Colour preference ('this, but in red'), ranked first: a colour name or family, in any case "
        "(others: 422); not a filter (the flat 'colour' field is the exact filter).",
        json_schema_extra={"pattern": colour_pattern()},
    )
    colour_rank: bool | None = Field(default=None, description="Re-rank by the photo's colour (default: on).")
    collapse: bool | None = Field(default=None, description=_COLLAPSE)
    region: RegionForm = None
    text: str | None = Field(
        default=None,
        max_length=_MAX_WORDS,
        description="Words that move the photo's search ('in red'); a blank field counts as not given (as a "
        "browser's form sends an empty box).",
        json_schema_extra={"pattern": f"^\\s*$|{WORDS_PATTERN}"},
    )


#: Multipart fields where a blank value counts as not given (a browser's form sends its empty boxes).
_BLANK_IS_NONE = ("k", "min_price", "max_price", "prefer_colour", "colour_rank", "collapse", "text", "kind")


def _blank_allowed(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    """The schema of ``names`` also takes a blank string (the server reads it as "not given")."""
    for name in names:
        prop = schema.get("properties", {}).get(name)
        if prop is None:
            continue
        options = prop.pop("anyOf", None) or [{k: prop.pop(k) for k in ("type",) if k in prop}]
        options.append({"type": "string", "pattern": "^\\s*$", "maxLength": 64})
        prop["anyOf"] = options


class SearchUpload(_FilterFields, _Upload):
    """Multipart search: an uploaded photo, ``k`` and flat filter fields (repeat a field for 'any of')."""

    # fields in the order image, k, then the filters: pydantic collects the bases' fields right to left
    model_config = ConfigDict(json_schema_extra=lambda schema: _blank_allowed(schema, _BLANK_IS_NONE))

    @field_validator(*_BLANK_IS_NONE, mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("text")
    @classmethod
    def _words(cls, value: str | None) -> str | None:
        return _check_words(value)

    def filters_in(self) -> FiltersIn:
        skip = {"image", "k", "prefer_colour", "colour_rank", "collapse", "text", "region", "kind", *FEEDBACK_FIELDS}
        return FiltersIn.model_validate(self.model_dump(exclude=skip))


class ProductOut(BaseModel):
    """A catalogue product as the API shows it (never the server-side image path)."""

    id: str
    title: str | None = None
    brand: str | None = None
    category: str | None = None
    subcategory: str | None = None
    article_type: str | None = None
    colour: str | None = None
    gender: str | None = None
    price: float | None = None
    url: str | None = Field(default=None, description="The product page, when the catalogue has one.")
    in_stock: bool | None = Field(default=None, description="In stock (true), out of stock (false), or not known.")
    image_url: str = Field(description="The main picture, served by this API.")
    images: list[str] = Field(
        default_factory=list,
        description="Every picture of the product, in order (the first is the main one), served by this API.",
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_product(cls, product: Product) -> ProductOut:
        data = product.to_dict()
        data.pop("image", None)
        count = max(1, len(data.pop("images", None) or []))
        urls = [image_url(product.id)] + [picture_url(product.id, i) for i in range(1, count)]
        return cls(**data, image_url=urls[0], images=urls)


class HitOut(BaseModel):
    """One ranked result."""

    rank: int = Field(ge=1)
    id: str
    score: float = Field(
        description="Cosine similarity, higher is closer (1 = identical picture). A picture query scores each "
        "product by the better of the picture and its mirror image."
    )
    colour_match: float | None = Field(
        default=None,
        description="How well the product's colour fits the colour the search ranked by (0..1); absent when no "
        "colour ranking ran. Hits are ordered by rank_score: score + weight x colour_match + a small vote for the "
        "kind most of the nearest products share.",
    )
    rank_score: float | None = Field(default=None, description="What the hits are ordered by (with colour_match).")
    duplicates: list[str] = Field(
        default_factory=list,
        description="Ids of other products with the very same picture, shown once as this hit (ranked below it); "
        "empty when none or when the search ran with collapse=false.",
    )
    matched_image: int = Field(
        default=0, ge=0, description="Which of the product's pictures matched best (an index into product.images)."
    )
    matched_image_url: str | None = Field(default=None, description="That picture, served by this API.")
    product: ProductOut

    @classmethod
    def from_hit(cls, rank: int, hit: Hit) -> HitOut:
        return cls(
            rank=rank,
            id=hit.id,
            score=round(hit.score, 6),
            colour_match=None if hit.colour_match is None else round(hit.colour_match, 6),
            rank_score=None if hit.rank_score is None else round(hit.rank_score, 6),
            duplicates=list(hit.duplicates),
            matched_image=hit.matched_image,
            matched_image_url=image_url(hit.id) if not hit.matched_image else picture_url(hit.id, hit.matched_image),
            product=ProductOut.from_product(hit.product),
        )


class QueryColour(BaseModel):
    """The colour a search ranked by, and the colour seen in the query picture."""

    ranked_by: str | None = Field(
        default=None, description="The colour family the results were re-ranked by; null: no colour ranking."
    )
    source: Literal["detected", "preference", "product", "words", "liked"] | None = Field(
        default=None,
        description="Where ranked_by came from: seen in the picture, asked for, the product's own, named in the "
        "query's words, or the family the liked products agree on.",
    )
    detected: str | None = Field(default=None, description="The garment's colour family seen in the query picture.")
    detected_top: list[tuple[str, float]] = Field(
        default_factory=list, description="The likeliest families seen in the picture, with probabilities."
    )
    families: list[str] = Field(description="Every colour family a preference may name (colour names work too).")


class QueryInfo(BaseModel):
    """What was searched for."""

    type: Literal["image", "url", "product", "text", "feedback"]
    value: str | None = Field(
        default=None, description="The URL, the product id, the upload's file name, or the words (type text)."
    )
    text: str | None = Field(default=None, description="Words that moved an image, url or product search.")

    @model_serializer(mode="wrap")
    def _no_null_text(self, handler: Any) -> Any:
        out = handler(self)
        return {k: v for k, v in out.items() if k != "text" or v is not None} if isinstance(out, dict) else out


class SearchResponse(BaseModel):
    """Ranked hits for a query."""

    query: QueryInfo
    k: int
    count: int
    took_ms: float
    colour: QueryColour
    kind: QueryKind = Field(default_factory=QueryKind, description="The kinds the picture looks like; the one used.")
    understood: str | None = Field(
        default=None,
        description='The words as searched when a misspelt word was corrected ("blak jeans" → "black jeans"); '
        "null when the words were searched as typed.",
    )
    ignored: list[str] = Field(
        default_factory=list, description="Judged ids left out: no product has them now (with ignore_missing)."
    )
    hits: list[HitOut]
