"""The feedback fields of a search request ("more like these, less like those"), shared by the JSON body and the
multipart form (repeat ``positive`` / ``negative`` there, one id each): :mod:`lookalike.catalog.feedback`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from lookalike.service.patterns import WORDS_PATTERN

__all__ = ["FEEDBACK_FIELDS", "MAX_IDS", "FeedbackFields"]

#: At most this many ids per list (and together: the catalogue's MAX_JUDGED; more: 422).
MAX_IDS = 100
_MAX_ID = 200
FEEDBACK_FIELDS = ("positive", "negative", "ignore_missing")


def _ids_schema(schema: dict[str, Any]) -> None:
    """The ids as the server takes them (:func:`lookalike.product.validate_product_id`: something besides
    whitespace, no control characters, not ``.`` or ``..``), at most :data:`MAX_IDS`."""
    schema["maxItems"] = MAX_IDS
    schema["items"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": _MAX_ID,
        "pattern": WORDS_PATTERN,
        "not": {"enum": [".", ".."]},
    }


class FeedbackFields(BaseModel):
    """Products the shopper liked and disliked, by id."""

    positive: list[str] = Field(
        default_factory=list,
        description="Ids of liked products: more like these (their kind and agreed colour too); they come back "
        "first. With no url, product_id or text: 'more like these' alone.",
        examples=[["10006"]],
        json_schema_extra=_ids_schema,
    )
    negative: list[str] = Field(
        default_factory=list,
        description="Ids of disliked products: less like these (their kind and colour go down). At most "
        f"{MAX_IDS} ids in both lists together; an id in both: 422; empty lists: a plain search.",
        json_schema_extra=_ids_schema,
    )
    ignore_missing: bool = Field(
        default=False,
        description="Leave out judged ids that no product has now (deleted since the page was shown), listing them "
        "in the response's 'ignored'; otherwise such ids are a 404 naming them.",
    )

    @field_validator("positive", "negative", mode="before")
    @classmethod
    def _feedback_list(cls, value: Any) -> Any:  # a name of its own: the filter fields have a _listify
        if value is None:
            return []
        if isinstance(value, str):  # one multipart field: blank is not given
            return [value] if value.strip() else []
        return list(value) if isinstance(value, tuple) else value

    @field_validator("positive", "negative")
    @classmethod
    def _feedback_bounded(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_IDS or any(not 0 < len(v) <= _MAX_ID for v in value):
            raise ValueError(f"at most {MAX_IDS} product ids of 1 to {_MAX_ID} characters")
        return value

    @field_validator("ignore_missing", mode="before")
    @classmethod
    def _feedback_blank(cls, value: Any) -> Any:
        return False if value is None or (isinstance(value, str) and not value.strip()) else value
