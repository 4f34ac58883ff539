"""The kind of a search: the field that chooses one (a chip) and what the response says was seen and used
(:mod:`lookalike.catalog.kinds`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from lookalike.catalog.kinds import KindSeen
from lookalike.service.patterns import WORDS_PATTERN

__all__ = ["KindFields", "KindOut", "QueryKind"]


class KindFields(BaseModel):
    """The kind a search ranks by, when the shopper chose one."""

    kind: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Rank by this kind of the catalogue's (an article type, any case, singular or plural: 'dress' "
        "finds 'Dresses') instead of the kind the picture looks like; one the catalogue lacks: 422. Not a filter "
        "(the exact filter is filters.article_type).",
        examples=["Dresses"],
        json_schema_extra={"pattern": WORDS_PATTERN},
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_blank(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class KindOut(BaseModel):
    kind: str = Field(description="One of the catalogue's kinds (article types).")
    probability: float = Field(description="How likely the query picture shows this kind (the kind head).")


class QueryKind(BaseModel):
    """The kinds the query picture looks like, and the kind the results were ranked by."""

    seen: list[KindOut] = Field(
        default_factory=list, description="The likeliest kinds seen in the query picture, likeliest first."
    )
    used: str | None = Field(
        default=None, description="The kind the results were ranked by; null: no kind ranking (no picture, say)."
    )
    source: Literal["detected", "chosen"] | None = Field(
        default=None, description="Where used came from: seen in the picture, or chosen ('kind' in the request)."
    )

    @classmethod
    def from_seen(cls, seen: KindSeen | None) -> QueryKind:
        if seen is None:
            return cls()
        return cls(
            seen=[KindOut(kind=k, probability=round(p, 4)) for k, p in seen.seen],
            used=seen.used,
            source=seen.source,  # type: ignore[arg-type]
        )
