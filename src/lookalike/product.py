"""Products and search filters: the plain data that flows between the layers."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lookalike.errors import InvalidProductError

__all__ = [
    "FILTER_FIELDS",
    "PREDICTED_COLOUR",
    "Filters",
    "Hit",
    "Product",
    "validate_in_stock",
    "validate_price",
    "validate_product_id",
]

#: Key of :attr:`Product.extra` where the ingest keeps the colour family it predicted from the picture,
#: for a product whose own colour field names no known colour. Not part of the metadata hash: it comes
#: from the picture, not from the catalogue's row.
PREDICTED_COLOUR = "predicted_colour"


#: Control characters (Unicode category Cc: C0, DEL, C1) and lone surrogates (Cs): never in a product id.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def validate_product_id(value: Any) -> str:
    """``value`` if it can be a product id, the one rule for every way in (API, CSV, folder, Python): a string
    with something besides whitespace (Unicode whitespace too: no-break and ideographic spaces, NEL), without
    control characters (NUL, tab, newline, DEL, C1) or lone surrogates, and not ``.`` or ``..`` (which browsers
    resolve as path steps even when written ``%2E``). ``/`` and any other character are fine: the API reaches
    every stored id as one percent-encoded path segment. Raises :class:`InvalidProductError`."""
    if value is None:
        raise InvalidProductError("product id is missing (or empty, or only whitespace)")
    if not isinstance(value, str):
        raise InvalidProductError(f"product id must be a string, not {type(value).__name__}")
    if not value.strip():
        what = "empty" if not value else f"only whitespace ({value!r})"
        raise InvalidProductError(f"product id is {what}")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidProductError(f"product id {value!r} has a control character ({bad.group()!r})")
    if value in (".", ".."):
        raise InvalidProductError(f"product id cannot be {value!r} (browsers read it as a path step)")
    return value


def validate_price(value: Any) -> float | None:
    """``value`` as a float price, or ``None``; a price must be a finite number (no NaN or infinity).
    Raises :class:`InvalidProductError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidProductError(f"price must be a number, not {type(value).__name__}")
    price = float(value)
    if not math.isfinite(price):
        raise InvalidProductError(f"price must be a finite number, not {price}")
    return price


def validate_in_stock(value: Any) -> bool | None:
    """``value`` as a stock flag: True, False or None (unknown). Raises :class:`InvalidProductError`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise InvalidProductError(f"in_stock must be true, false or null, not {value!r}")


# Metadata fields that filters can test for equality (and facets count).
FILTER_FIELDS = ("category", "subcategory", "article_type", "gender", "colour", "brand")


@dataclass
class Product:
    """One catalogue product. ``images``: where its pictures came from (paths or URLs), in order, the first
    being its main picture; ``image`` is the main picture (kept equal to ``images[0]``). ``in_stock``: True,
    False, or None when the catalogue does not say."""

    id: str
    title: str | None = None
    brand: str | None = None
    category: str | None = None
    subcategory: str | None = None
    article_type: str | None = None
    colour: str | None = None
    gender: str | None = None
    price: float | None = None
    image: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    in_stock: bool | None = None

    def __post_init__(self) -> None:
        # every way in (API, CLI, CSV, folder, Python) builds a Product: ids and prices are checked here
        self.id = validate_product_id(self.id)
        self.price = validate_price(self.price)
        self.in_stock = validate_in_stock(self.in_stock)
        images = [str(i) for i in dict.fromkeys(self.images or []) if i]
        if self.image and self.image not in images:
            images.insert(0, self.image)
        self.images = images
        self.image = images[0] if images else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Product:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        extra = dict(known.pop("extra", None) or {})
        extra.update({k: v for k, v in data.items() if k not in names})
        return cls(**known, extra=extra)

    def metadata_hash(self) -> str:
        """A fingerprint of everything but the picture (to skip unchanged rows on re-ingest)."""
        d = self.to_dict()
        d.pop("image", None)
        d.pop("images", None)
        if PREDICTED_COLOUR in (d.get("extra") or {}):
            d["extra"] = {k: v for k, v in d["extra"].items() if k != PREDICTED_COLOUR}
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Filters:
    """Equality on metadata fields (case-insensitive; a tuple means any of) and a price range."""

    category: str | tuple[str, ...] | None = None
    subcategory: str | tuple[str, ...] | None = None
    article_type: str | tuple[str, ...] | None = None
    gender: str | tuple[str, ...] | None = None
    colour: str | tuple[str, ...] | None = None
    brand: str | tuple[str, ...] | None = None
    min_price: float | None = None
    max_price: float | None = None
    #: True: leave out the products known to be out of stock (unknown stock stays); False: only those.
    in_stock: bool | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, (), "") for f in fields(self))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Filters:
        """Build from keyword arguments, ignoring ``None`` and empty values; lists become tuples."""
        clean: dict[str, Any] = {}
        for key, value in kwargs.items():
            if value is None or value == "" or value == [] or value == ():
                continue
            clean[key] = tuple(value) if isinstance(value, list | tuple | set) else value
        return cls(**clean)


@dataclass
class Hit:
    """One search result. ``score``: the similarity to the query; ``colour_match``: how well the product's
    colour fits the query's colour (0..1, None when no colour stage ran); hits are ordered by
    ``rank_score`` (the similarity plus the weighted colour match and kind vote; the similarity when no stage
    re-ranked); ``duplicates``: the ids of the products with the very same picture that this hit stands for
    (ranked below it, collapsed into it); ``matched_image``: which of the product's pictures matched best (an
    index into :attr:`Product.images`; 0, the main picture, for a query without a picture)."""

    id: str
    score: float
    product: Product
    colour_match: float | None = None
    rank_score: float | None = None
    duplicates: list[str] = field(default_factory=list)
    matched_image: int = 0

    @property
    def order_key(self) -> float:
        """What the hits are sorted by, best first."""
        return self.score if self.rank_score is None else self.rank_score

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.colour_match is None else {"colour_match": self.colour_match, "rank_score": self.rank_score}
        if self.duplicates:
            extra["duplicates"] = list(self.duplicates)
        return {
            "id": self.id,
            "score": self.score,
            **extra,
            "matched_image": self.matched_image,
            **{k: v for k, v in self.product.to_dict().items() if k != "id"},
        }
