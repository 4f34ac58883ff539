"""Shopper's phrases built from catalogue labels ("navy blue shirt for men", "white sneakers").

Training the text tower and scoring it (EVALUATION.md task 4) both need the words a shopper types for a
product's type, colour, gender and usage, in varied wording. Every function here is pure and seeded: the
same labels and seed give the same phrases.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lookalike.colour.families import family_of

__all__ = [
    "GENDER_WORDS",
    "TYPE_WORDS",
    "Labels",
    "attribute_phrase",
    "fashion_vocabulary",
    "product_phrases",
    "type_words",
]

#: The words a shopper uses for an articleType; the first is the plain name. Unlisted types use their
#: own name in lower case.
TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "Tshirts": ("t-shirt", "tshirt", "tee", "t shirt", "polo t-shirt"),
    "Shirts": ("shirt", "button-down shirt", "formal shirt", "casual shirt"),
    "Casual Shoes": ("casual shoes", "sneakers", "canvas shoes", "loafers"),
    "Sports Shoes": ("sports shoes", "running shoes", "trainers", "training shoes"),
    "Formal Shoes": ("formal shoes", "leather shoes", "oxford shoes", "derby shoes"),
    "Tops": ("top", "blouse", "casual top"),
    "Kurtas": ("kurta", "ethnic kurta"),
    "Kurtis": ("kurti", "short kurta"),
    "Watches": ("watch", "wrist watch", "analog watch"),
    "Handbags": ("handbag", "bag", "tote bag", "shoulder bag", "purse"),
    "Heels": ("heels", "high heels", "heeled sandals", "pumps", "stilettos"),
    "Sunglasses": ("sunglasses", "shades", "sun glasses"),
    "Sweaters": ("sweater", "pullover", "jumper", "cardigan"),
    "Sandals": ("sandals", "open sandals", "floaters"),
    "Sports Sandals": ("sports sandals", "floaters"),
    "Wallets": ("wallet", "leather wallet", "purse"),
    "Flip Flops": ("flip flops", "slippers", "thongs", "flip-flops"),
    "Sweatshirts": ("sweatshirt", "hoodie", "hooded sweatshirt"),
    "Belts": ("belt", "leather belt"),
    "Trousers": ("trousers", "pants", "chinos", "formal trousers"),
    "Jeans": ("jeans", "denim jeans", "denims"),
    "Socks": ("socks", "ankle socks"),
    "Jackets": ("jacket", "coat", "bomber jacket", "windcheater"),
    "Flats": ("flats", "ballerinas", "flat shoes", "ballet flats"),
    "Backpacks": ("backpack", "rucksack", "school bag"),
    "Briefs": ("briefs", "underwear", "panties"),
    "Shorts": ("shorts", "bermuda shorts"),
    "Innerwear Vests": ("vest", "innerwear vest", "undershirt"),
    "Caps": ("cap", "baseball cap", "hat"),
    "Track Pants": ("track pants", "joggers", "sweatpants", "trackpants"),
    "Ties": ("tie", "necktie"),
    "Clutches": ("clutch", "clutch bag", "evening bag"),
    "Dresses": ("dress", "frock", "gown"),
    "Mufflers": ("muffler", "scarf"),
    "Skirts": ("skirt", "mini skirt"),
    "Trunk": ("trunks", "boxer briefs"),
    "Scarves": ("scarf", "stole"),
    "Perfume and Body Mist": ("perfume", "body mist", "fragrance"),
    "Cufflinks": ("cufflinks", "cuff links"),
    "Capris": ("capris", "three-quarter pants"),
    "Laptop Bag": ("laptop bag", "laptop backpack"),
    "Tunics": ("tunic",),
    "Stockings": ("stockings", "tights"),
    "Leggings": ("leggings",),
    "Duffel Bag": ("duffel bag", "gym bag", "travel bag"),
    "Mobile Pouch": ("mobile pouch", "phone case"),
    "Deodorant": ("deodorant", "deo"),
    "Tracksuits": ("tracksuit",),
    "Bra": ("bra",),
    "Gloves": ("gloves",),
    "Accessory Gift Set": ("gift set", "accessory gift set"),
    "Boxers": ("boxers", "boxer shorts"),
    "Lounge Pants": ("lounge pants", "pyjamas"),
    "Lounge Shorts": ("lounge shorts", "sleep shorts"),
}

#: The words for a gender in a phrase: (before the type, as an owner, after the type).
GENDER_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Men": (("men", "mens", "men's"), ("men's", "mens"), ("for men", "for him")),
    "Women": (("women", "womens", "women's", "ladies"), ("women's", "ladies'"), ("for women", "for her")),
    "Boys": (("boys", "boys'", "kids"), ("boys'",), ("for boys", "for kids")),
    "Girls": (("girls", "girls'", "kids"), ("girls'",), ("for girls", "for kids")),
    "Unisex": (("unisex",), ("unisex",), ("for men and women", "unisex")),
}

_USAGE_WORDS = {
    "Casual": ("casual", "everyday"),
    "Formal": ("formal", "office"),
    "Sports": ("sports", "gym", "running"),
    "Ethnic": ("ethnic", "traditional"),
    "Smart Casual": ("smart casual",),
    "Party": ("party",),
    "Travel": ("travel",),
}
_SEASON_WORDS = {"Summer": "summer", "Winter": "winter", "Fall": "autumn", "Spring": "spring"}


@dataclass(frozen=True)
class Labels:
    """The labels of one product that phrases are built from (catalogue column names)."""

    article_type: str
    colour: str = ""
    gender: str = ""
    usage: str = ""
    season: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> Labels:
        """From a ``labels.csv`` row of the catalogue datasets."""
        return cls(
            row.get("articleType", "") or "",
            row.get("baseColour", "") or "",
            row.get("gender", "") or "",
            row.get("usage", "") or "",
            row.get("season", "") or "",
        )


def type_words(article_type: str) -> tuple[str, ...]:
    """The words for ``article_type``, its plain name first."""
    return TYPE_WORDS.get(article_type, (article_type.lower(),))


def attribute_phrase(
    article_type: str,
    family: str | None,
    gender: str | None,
    rng: random.Random,
    usage: str | None = None,
    colour_name: str | None = None,
) -> str:
    """One phrase for a type in a colour family for a gender, in a wording drawn from ``rng``.

    ``colour_name`` (the catalogue's own colour, "Navy Blue") is used instead of the family word half
    of the time when given; ``usage`` adds "casual", "formal"... a third of the time.
    """
    noun = rng.choice(type_words(article_type))
    colour = ""
    if family:
        colour = family if family != "multi" else rng.choice(("multicolour", "multi-coloured", "printed"))
        if colour_name and colour_name.lower() != family and rng.random() < 0.5:
            colour = colour_name.lower()
    words = _USAGE_WORDS.get(usage or "", ())
    use = rng.choice(words) if words and rng.random() < 1 / 3 and words[0] not in noun else ""
    adjectives = " ".join(w for w in (colour, use) if w)
    if rng.random() < 0.3:
        adjectives = " ".join(w for w in (use, colour) if w)
    g = GENDER_WORDS.get(gender or "")
    if g is None:
        return " ".join(w for w in (adjectives, noun) if w)
    pattern = rng.randrange(3)
    if pattern == 0:
        return " ".join(w for w in (rng.choice(g[1]), adjectives, noun) if w)
    if pattern == 1:
        return " ".join(w for w in (adjectives, noun, rng.choice(g[2])) if w)
    return " ".join(w for w in (rng.choice(g[0]), adjectives, noun) if w)


def product_phrases(labels: Labels, rng: random.Random, n: int = 4) -> list[str]:
    """``n`` varied phrases for one product: with and without gender, colour and usage."""
    family = family_of(labels.colour) if labels.colour else None
    out: list[str] = []
    for i in range(n):
        drop = i % 4  # 0: everything; 1: no gender; 2: no colour; 3: type + colour only
        out.append(
            attribute_phrase(
                labels.article_type,
                None if drop == 2 else family,
                None if drop in (1, 3) else labels.gender,
                rng,
                usage=None if drop == 3 else labels.usage,
                colour_name=labels.colour or None,
            )
        )
        if labels.season in _SEASON_WORDS and rng.random() < 0.1:
            out[-1] = f"{out[-1]} for {_SEASON_WORDS[labels.season]}"
    return out


def fashion_vocabulary(extra: Sequence[str] = ()) -> list[str]:
    """Every word the phrases can use (types, colours, genders, usages), plus ``extra``."""
    from lookalike.colour.families import _NAMES  # the catalogue colour names of each family

    words: set[str] = set()
    for forms in TYPE_WORDS.values():
        words.update(forms)
    for g in GENDER_WORDS.values():
        for part in g:
            words.update(part)
    for forms in _USAGE_WORDS.values():
        words.update(forms)
    words.update(_SEASON_WORDS.values())
    for family, names in _NAMES.items():
        words.add(family)
        words.update(n.lower() for n in names)
    words.update(("multicolour", "multi-coloured", "printed", "striped", "checked", "solid", "leather", "cotton"))
    words.update(extra)
    return sorted(words)
